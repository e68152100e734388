"""The example plug-in (examples/instore-channel-webhook) built, installed into a fresh venv
beside instore, and exercised: ``instore offers run`` loads it from its entry point, and a real
HTTP server on loopback receives each notification as signed JSON."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from instore import events, flags, members
from instore.db import open_database
from offers.notifications import create_notification

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "instore-channel-webhook"
SECRET = "webhook-test-secret"
WAIT_SECONDS = 20.0  # a cold `python -m instore` imports a lot; a warm delivery takes ~0.1 s
POLL_SECONDS = 0.05
CODES = itertools.count(1)  # redemption codes are unique per store


def build_requirements_missing() -> str | None:
    """Building offline (no build isolation) needs what instore's own build needs."""
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools"
    import setuptools

    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return "wheel (or setuptools>=70.1)"
    return None


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv that sees this one's packages (instore) and has the example installed."""
    missing = build_requirements_missing()
    if missing and os.environ.get("CI"):
        pytest.fail(f"{missing} is needed to build the example offline ([test] extras)")
    if missing:
        pytest.skip(reason=f"{missing} is needed to build the example offline")
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    shutil.copytree(EXAMPLE, source)  # pip builds in the tree: keep the checkout clean
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # A venv made from a venv does not see the parent's packages (--system-site-packages means
    # the base interpreter's): point it at ours, .pth files included (instore is editable).
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "_instore_under_test.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    installed = subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
            "--no-deps", "--no-build-isolation", "--no-index", str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: queues each POST; answers with the status the test sets."""

    received: queue.Queue[tuple[dict[str, str], bytes]]
    status = 204

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("TestReceiver", (Receiver,), {"received": queue.Queue(), "status": 204})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/instore", handler
    finally:
        server.shutdown()
        server.server_close()


def wait_for(condition: Any, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if process.poll() is not None:
            pytest.fail(
                f"the worker exited ({process.returncode}) before {what}:\n{log.read_text()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {WAIT_SECONDS:g} s:\n{log.read_text()}")
        time.sleep(POLL_SECONDS)


def notify(db: sqlite_utils.Database, member_id: int, title: str) -> int:
    return create_notification(
        db, member_id=member_id, kind="offer", title=title, body="Today only",
        now=datetime.now(UTC), code=f"S001-T{next(CODES)}",
    )  # fmt: skip


def test_the_webhook_plugin_delivers_through_the_worker(
    plugin_venv: Path, receiver: tuple[str, type[Receiver]], tmp_path: Path
) -> None:
    url, handler = receiver
    db_path = tmp_path / "instore.db"
    db = open_database(db_path)
    ana = members.create_member(db, display_name="Ana", password="long enough", email="a@x.es")
    ben = members.create_member(db, display_name="Ben", password="long enough", email="b@x.es")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INSTORE_", "WEBHOOK_"))}
    env.update(
        INSTORE_DATABASE_PATH=str(db_path),
        INSTORE_CONFIG="",
        INSTORE_OFFERS_POLL_MS="20",
        WEBHOOK_CHANNEL_URL=url,
        WEBHOOK_CHANNEL_SECRET=SECRET,
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [str(plugin_venv), "-m", "instore", "offers", "run"],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        # Loaded from the entry point, and the channel's cursor set: it is following.
        wait_for(lambda: "webhook" in log.read_text(), "channel list", worker, log)
        assert "delivery channels:" in log.read_text()
        wait_for(
            lambda: db.conn.execute(
                "SELECT 1 FROM cursors WHERE consumer = 'offers.channel.webhook'"
            ).fetchone(),
            "webhook cursor",
            worker,
            log,
        )

        first = notify(db, ana.id, "Trainers -20%")
        headers, body = handler.received.get(timeout=WAIT_SECONDS)
        sent = json.loads(body)
        assert sent["member"] == ana.id and sent["store"] == "S001"
        assert sent["notification"]["id"] == first
        assert sent["notification"]["title"] == "Trainers -20%"
        assert "a@x.es" not in body.decode() and "Ana" not in body.decode()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-instore-signature"], expected)
        assert headers["content-type"] == "application/json"

        def delivery(notification_id: int) -> tuple[str, str, str] | None:
            row = db.conn.execute(
                "SELECT status, detail, target FROM deliveries"
                " WHERE notification_id = ? AND channel = 'webhook'",
                (notification_id,),
            ).fetchone()
            return tuple(row) if row else None

        wait_for(lambda: delivery(first), "delivery row", worker, log)
        assert delivery(first) == ("sent", "HTTP 204", url.split("/")[2])

        # The store turns the channel off: the next notification passes it by.
        flags.set_flag(db, "channel.webhook", 0)
        skipped = notify(db, ben.id, "Jackets -10%")
        wait_for(
            lambda: events.cursor_position(db, "offers.channel.webhook") >= skipped,
            "skip",
            worker,
            log,
        )
        assert handler.received.empty() and delivery(skipped) is None

        # On again, and the receiver fails: recorded as failed, the worker carries on.
        flags.unset_flag(db, "channel.webhook")
        handler.status = 503
        failed = notify(db, ben.id, "Socks 3 for 2")
        handler.received.get(timeout=WAIT_SECONDS)
        wait_for(lambda: delivery(failed), "failed delivery row", worker, log)
        assert delivery(failed)[:2] == ("failed", "HTTP 503")  # type: ignore[index]
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        db.conn.close()
    assert worker.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_without_a_url_the_plugin_offers_no_channel(plugin_venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INSTORE_", "WEBHOOK_"))}
    env.update(INSTORE_DATABASE_PATH=str(tmp_path / "instore.db"), INSTORE_CONFIG="")
    code = (
        "from instore.config import load_config; from instore.plugins import pm; "
        "found = [c.name for cs in pm.hook.delivery_channels(config=load_config()) for c in cs]; "
        "print(sorted(found), 'webhook' in dict(pm.list_name_plugin()))"
    )
    out = subprocess.run(
        [str(plugin_venv), "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['webpush'] True"  # registered, but quiet until configured
