"""Run several services as child processes and stop them together: what ``instore demo`` needs.

On a box systemd does this job (one unit per service); the demo needs the same processes with no
systemd, so a Ctrl-C or one child dying stops the others instead of leaving orphans on a port.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how quickly a dead child is noticed
STOP_TIMEOUT_SECONDS = 15.0  # gunicorn's graceful timeout is 10 s


# Besides Ctrl-C: `kill`, a closed terminal. Without a handler Python dies at once on these and
# the children are left running, holding the demo's port.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_children(commands: dict[str, Sequence[str]]) -> int:
    """Start every command; return the exit status of the first to end (0 on Ctrl-C or kill)."""
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        return _supervise(commands)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(commands: dict[str, Sequence[str]]) -> int:
    children = {name: subprocess.Popen(list(command)) for name, command in commands.items()}
    status = 0
    try:
        while True:
            for name, child in children.items():
                code = child.poll()
                if code is not None:
                    log.error(
                        "service stopped; stopping the others",
                        extra={"service": name, "code": code},
                    )
                    return code or 1
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        status = 0
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
    return status
