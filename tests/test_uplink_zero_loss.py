"""Zero loss: 10,000 events through a killed uplink and a broker down for 30 seconds.

Everything is real: Mosquitto on loopback with persistence (tests/mosquitto.py), the uplink as
the ``instore uplink run`` process a box runs, SIGKILL for the crash, SIGTERM and a restart for
the broker, and headquarters as a persistent MQTT session (fixed client id, clean_session=False)
that counts what it receives. Events keep being written throughout, the outage included, as a
store goes on while its link is down. At the end every event id must have reached headquarters
at least once; duplicates (the price of at-least-once) are counted and reported.

About 45 s, most of it the outage the issue asks for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlite_utils

from instore import events
from instore.db import open_database
from instore.uplink import CONSUMER
from tests.live_portal import instore_command
from tests.mosquitto import Broker, Subscriber, mosquitto_available, wait_for

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed")

TOTAL_EVENTS = 10_000
BEFORE_START = 4_000  # in the outbox when the uplink first starts
BEFORE_OUTAGE = 2_000  # appended after the kill, before the broker goes down
DURING_OUTAGE = TOTAL_EVENTS - BEFORE_START - BEFORE_OUTAGE
KILL_AFTER = 1_000  # unique events at headquarters when the uplink is killed
STOP_BROKER_AFTER = 5_000  # … when the broker is stopped
OUTAGE_SECONDS = 30.0  # as the issue asks: long enough for many reconnection attempts
OUTAGE_BATCHES = 20  # events arrive in bursts during the outage, as a store makes them
DEADLINE = 120.0
RESULTS = Path(__file__).parent / "artifacts" / "uplink_zero_loss.json"


def append(db: sqlite_utils.Database, count: int, start: int) -> None:
    db.conn.execute("BEGIN")
    for n in range(start, start + count):
        events.append(db, "zone_enter", {"n": n, "device": f"d{n % 97}", "zone_id": n % 6})
    db.conn.execute("COMMIT")


def start_uplink(tmp_path: Path, broker: Broker, log_name: str) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("INSTORE_")}
    env.update(
        INSTORE_CONFIG="",
        INSTORE_DATABASE_PATH=str(tmp_path / "instore.db"),
        INSTORE_UPLINK_ENABLED="true",
        INSTORE_UPLINK_HOST="127.0.0.1",
        INSTORE_UPLINK_PORT=str(broker.port),
        INSTORE_UPLINK_TLS="false",
        # Back within a second of the broker: the test measures loss, not the backoff ceiling.
        INSTORE_UPLINK_RECONNECT_MAX_SECONDS="1",
    )
    log = (tmp_path / log_name).open("wb")
    return subprocess.Popen(
        [*instore_command(), "uplink", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def test_ten_thousand_events_survive_a_killed_uplink_and_a_broker_outage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    broker = Broker(tmp_path / "broker")
    broker.start()
    hq = Subscriber(broker, "instore/+/events/#", client_id="hq-zero-loss")
    status = Subscriber(broker, "instore/+/status", client_id="hq-status")
    db = open_database(tmp_path / "instore.db")
    uplink: subprocess.Popen[bytes] | None = None

    try:
        wait_for(hq.client.is_connected, 30, "the HQ subscriber to connect")
        append(db, BEFORE_START, 0)

        # 1. The uplink is killed mid-stream and started again.
        uplink = start_uplink(tmp_path, broker, "uplink-1.log")
        wait_for(lambda: hq.unique_events() >= KILL_AFTER, 60, f"{KILL_AFTER} events at HQ")
        uplink.send_signal(signal.SIGKILL)
        uplink.wait()
        killed_at = hq.unique_events()
        # The broker tells headquarters the store went away: the Last Will.
        wait_for(lambda: status.payloads("/status")[-1:] == [b"offline"], 30, "the Last Will")
        uplink = start_uplink(tmp_path, broker, "uplink-2.log")
        append(db, BEFORE_OUTAGE, BEFORE_START)

        # 2. The broker goes down mid-stream for 30 s while the store keeps making events.
        wait_for(
            lambda: hq.unique_events() >= STOP_BROKER_AFTER, 60, f"{STOP_BROKER_AFTER} events at HQ"
        )
        broker.stop()
        stopped_at = hq.unique_events()
        acknowledged_at_outage = events.cursor_position(db, CONSUMER)
        outage_started = time.monotonic()
        per_batch = DURING_OUTAGE // OUTAGE_BATCHES
        for batch in range(OUTAGE_BATCHES):
            append(db, per_batch, BEFORE_START + BEFORE_OUTAGE + batch * per_batch)
            time.sleep(OUTAGE_SECONDS / OUTAGE_BATCHES)  # the outage's length, not a sync wait
        assert uplink.poll() is None, "the uplink must keep running while the broker is away"
        broker.start()
        outage = time.monotonic() - outage_started

        # 3. Everything arrives.
        wait_for(lambda: hq.unique_events() >= TOTAL_EVENTS, DEADLINE, "every event at HQ")
        last_id = db.conn.execute("SELECT MAX(id) FROM events").fetchone()[0]
        wait_for(
            lambda: events.cursor_position(db, CONSUMER) >= last_id,
            30,
            "the uplink's cursor to reach the last event",
        )
        uplink.send_signal(signal.SIGTERM)
        assert uplink.wait(timeout=30) == 0
        uplink = None
    finally:
        if uplink is not None and uplink.poll() is None:
            uplink.kill()
            uplink.wait()
        hq.close()
        status.close()
        broker.stop()

    received = list(hq.event_ids)
    expected = [row[0] for row in db.conn.execute("SELECT id FROM events ORDER BY id")]
    lost = sorted(set(expected) - set(received))
    assert len(expected) == TOTAL_EVENTS
    assert lost == [], f"{len(lost)} events lost, e.g. {lost[:10]}"
    assert {event["payload"]["n"] for event in hq.events()} == set(range(TOTAL_EVENTS))
    logs = (tmp_path / "uplink-2.log").read_text()
    assert "uplink offline" in logs and "uplink reconnected" in logs, logs[-2000:]
    figures = {
        "events": TOTAL_EVENTS,
        "received": len(received),
        "unique": len(set(received)),
        "lost": len(lost),
        "duplicates": len(received) - len(set(received)),
        "unique_at_kill": killed_at,
        "unique_at_broker_stop": stopped_at,
        "acknowledged_at_broker_stop": acknowledged_at_outage,
        "outage_seconds": round(outage, 1),
        "total_seconds": round(time.monotonic() - started, 1),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    with capsys.disabled():
        print(f"\nuplink zero-loss: {json.dumps(figures)}")
