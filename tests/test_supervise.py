"""``instore demo``'s supervisor: one signal stops every service, none is left holding a port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import sys
from instore.supervise import run_children
sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
sys.exit(run_children({"a": sleeper, "b": sleeper}))
"""
STARTED_SECONDS = 10.0


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_stops_every_child(sig: signal.Signals) -> None:
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT])
    deadline = time.monotonic() + STARTED_SECONDS
    while len(children := child_pids(parent.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(children) == 2, "the supervisor did not start its two children"
    time.sleep(0.3)  # let the handler be installed before the signal arrives
    parent.send_signal(sig)
    assert parent.wait(timeout=20) == 0
    for pid in children:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        pytest.fail(f"child {pid} outlived the supervisor after {sig.name}")
