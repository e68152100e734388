"""``instore demo`` on a fresh directory: seeds a store, prints accounts, serves the portal."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from hardware.gatekeeper import status as gatekeeper_status
from instore import events, members
from instore.db import open_database
from offers.worker import CONSUMER
from tests.live_portal import free_port

START_TIMEOUT_SECONDS = 30


def sign_in_and_consent(base: str, email: str, password: str) -> None:
    """The phone's flow over real HTTP, CSRF tokens and all."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def token(path: str) -> str:
        with opener.open(base + path, timeout=5) as reply:
            match = re.search(
                r'name="csrf_token" type="hidden" value="([^"]+)"', reply.read().decode()
            )
        assert match
        return match.group(1)

    form = {"identifier": email, "password": password, "csrf_token": token("/signin")}
    with opener.open(base + "/signin", urllib.parse.urlencode(form).encode(), timeout=10) as reply:
        assert reply.url.endswith("/consents")
    form = {"wifi_terms": "y", "csrf_token": token("/consents")}
    with opener.open(
        base + "/consents", urllib.parse.urlencode(form).encode(), timeout=10
    ) as reply:
        assert reply.url.endswith("/online")


def start_demo(directory: Path, port: int) -> subprocess.Popen[str]:
    """``instore demo`` in ``directory``, once its portal answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSTORE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "instore", "demo", "--bind", f"127.0.0.1:{port}"],
        cwd=directory,
        env={**env, "INSTORE_PORTAL_WORKERS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    status = None
    while time.monotonic() < deadline and status is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/signin", timeout=2) as reply:
                status = reply.status
        except OSError:
            if process.poll() is not None:
                raise AssertionError(f"demo exited early: {process.communicate()[0]}") from None
            time.sleep(0.2)
    if status != 200:
        process.kill()
        raise AssertionError(f"demo did not answer: {process.communicate()[0]}")
    return process


def stop_demo(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    return output


def test_demo_runs_and_printed_passwords_work(tmp_path: Path) -> None:
    port = free_port()
    process = start_demo(tmp_path, port)
    try:
        sign_in_and_consent(f"http://127.0.0.1:{port}", "ana@demo.store", "ana-loves-shoes")
        # The demo's gatekeeper (memory backend) picks the new session up.
        db = open_database(tmp_path / "var" / "demo" / "instore.db")
        deadline = time.monotonic() + 10
        state = None
        while time.monotonic() < deadline:
            state = gatekeeper_status(db)
            if state and state["authorized"] == 1:
                break
            time.sleep(0.1)
        assert state is not None and state["authorized"] == 1 and state["backend"] == "memory"
    finally:
        output = stop_demo(process)
    assert "instore demo: Demo Store" in output
    assert re.search(r"^seeded 14 days of history \([\d,]+ visits\)", output, re.M), output
    accounts = re.findall(r"^\s+(manager|shopper)\s+(\S+)\s+(\S+)\s+(\d{12})$", output, re.M)
    assert {role for role, *_ in accounts} == {"manager", "shopper"}
    db = open_database(tmp_path / "var" / "demo" / "instore.db")
    for role, email, password, loyalty in accounts:
        member = members.authenticate(db, email, password)
        assert member is not None and member.role == role and member.loyalty_number == loyalty


def test_a_new_demo_comes_with_history_and_a_restart_keeps_it(tmp_path: Path) -> None:
    """The history is seeded once; the running worker starts after it, not at its beginning."""
    output = stop_demo(start_demo(tmp_path, free_port()))
    assert "seeded 14 days of history" in output
    db = open_database(tmp_path / "var" / "demo" / "instore.db")
    last_history_event = db.conn.execute(
        "SELECT MAX(id) FROM events WHERE kind = 'store_exit' AND ts < ?",
        (db.conn.execute("SELECT MIN(created_at) FROM tills").fetchone()[0],),
    ).fetchone()[0]
    assert last_history_event and events.cursor_position(db, CONSUMER) >= last_history_event
    footfall_hours = db.conn.execute("SELECT COUNT(*) FROM footfall").fetchone()[0]
    assert footfall_hours > 24  # hours of two weeks
    db.conn.close()

    output = stop_demo(start_demo(tmp_path, free_port()))
    assert "seeded" not in output and "instore demo: Demo Store" in output
    db = open_database(tmp_path / "var" / "demo" / "instore.db")
    assert db.conn.execute("SELECT COUNT(*) FROM footfall").fetchone()[0] <= footfall_hours + 1
