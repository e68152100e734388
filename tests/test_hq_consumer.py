"""deploy/hq/consumer.py: two stores' uplinks → a real Mosquitto → the consumer → PostgreSQL.

A real cluster (tests/postgres.py, initdb into a temp directory), a real broker, the real
``Uplink`` of two stores, and the consumer as the process headquarters runs. The consumer is
killed once and events sent meanwhile must still arrive; a store sending everything again must
not add a row: rows are unique by (store, event id).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from instore import events
from instore.db import open_database
from instore.uplink import CONSUMER
from tests.mosquitto import Broker, mosquitto_available, wait_for
from tests.postgres import Cluster, why_unavailable
from tests.test_uplink import append_events, publish, running_uplink, uplink_config

pytestmark = [
    pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed"),
    pytest.mark.skipif(why_unavailable() is not None, reason=str(why_unavailable())),
]

CONSUMER_SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "hq" / "consumer.py"
DEADLINE = 60.0
STATUSES = "SELECT store, status FROM store_status WHERE store <> 'PROBE' ORDER BY store"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    running = Cluster()
    try:
        running.start()
        yield running
    finally:
        running.remove()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = Broker(tmp_path / "broker")
    running.start()
    yield running
    running.stop()


def start_consumer(tmp_path: Path, broker: Broker, cluster: Cluster) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HQ_DATABASE_URL": cluster.dsn}
    log = (tmp_path / "consumer.log").open("ab")
    return subprocess.Popen(
        [
            *(sys.executable, str(CONSUMER_SCRIPT), "--host", "127.0.0.1", "--port"),
            *(str(broker.port), "--no-tls", "--client-id", "hq-test"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_until_subscribed(broker: Broker, cluster: Cluster) -> None:
    """Publish a probe status until the consumer stores it: only then is it subscribed, and
    only from then does the broker keep events for its session."""

    def probe_stored() -> bool:
        publish(broker, "instore/PROBE/status", b"probe")
        return bool(query(cluster, "SELECT 1 FROM store_status WHERE store = 'PROBE'"))

    wait_for(probe_stored, DEADLINE, "the consumer's subscription", step=0.2)


def query(cluster: Cluster, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(cluster.dsn) as conn:
        try:
            return conn.execute(sql).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def stored_ids(cluster: Cluster, store: str) -> set[int]:
    with psycopg.connect(cluster.dsn) as conn:
        rows = conn.execute("SELECT event_id FROM store_events WHERE store = %s", (store,))
        return {row[0] for row in rows}


def count(cluster: Cluster) -> int:
    rows = query(cluster, "SELECT COUNT(*) FROM store_events")
    return int(rows[0][0]) if rows else 0


def test_two_stores_events_land_once_each_through_a_consumer_crash(
    tmp_path: Path, broker: Broker, cluster: Cluster
) -> None:
    stores = {}
    for store in ("S001", "S002"):
        (tmp_path / store).mkdir()
        stores[store] = uplink_config(tmp_path / store, broker, store_id=store)
    s001 = open_database(stores["S001"].database_path)
    s002 = open_database(stores["S002"].database_path)
    append_events(s001, 300)
    append_events(s002, 300)
    consumer = start_consumer(tmp_path, broker, cluster)
    try:
        wait_until_subscribed(broker, cluster)
        with running_uplink(stores["S001"]), running_uplink(stores["S002"]):
            wait_for(lambda: count(cluster) == 600, DEADLINE, "600 rows in PostgreSQL")
            # Not events: kept for a person, acknowledged, and the consumer goes on.
            publish(broker, "instore/S009/events/zone_enter", b"{ not json")
            mismatch = {"store": "S001", "id": 1, "ts": "2026-01-01T00:00:00Z", "kind": "x"}
            publish(broker, "instore/S009/events/x", json.dumps(mismatch))

            consumer.send_signal(signal.SIGKILL)
            consumer.wait()
            last = append_events(s001, 200)[-1]  # sent while headquarters' consumer is down
            wait_for(lambda: events.cursor_position(s001, CONSUMER) >= last, DEADLINE, "acks")
            consumer = start_consumer(tmp_path, broker, cluster)
            wait_for(lambda: count(cluster) == 800, DEADLINE, "the events sent meanwhile")

            # Every event of S001 sent again (as after a lost cursor): no new rows.
            s001.conn.execute("UPDATE cursors SET last_id = 0 WHERE consumer = ?", (CONSUMER,))
            sentinel = append_events(s001, 1)[0]
            wait_for(
                lambda: sentinel in stored_ids(cluster, "S001"),
                DEADLINE,
                "the event after the repeats",
            )
            assert count(cluster) == 801
            wait_for(
                lambda: query(cluster, STATUSES) == [("S001", "online"), ("S002", "online")],
                DEADLINE,
                "both stores online",
            )
        wait_for(
            lambda: [row[1] for row in query(cluster, STATUSES)] == ["offline"] * 2,
            DEADLINE,
            "both stores offline after their uplinks stop",
        )
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(timeout=30) == 0
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()

    per_store = query(cluster, "SELECT store, COUNT(*) FROM store_events GROUP BY 1 ORDER BY 1")
    assert per_store == [("S001", 501), ("S002", 300)]
    row = query(
        cluster,
        "SELECT kind, payload->>'n', payload->>'member_id' FROM store_events"
        " WHERE store = 'S002' AND event_id = 1",
    )
    assert row == [("zone_enter", "0", "7")]
    reasons = [r[0] for r in query(cluster, "SELECT reason FROM rejected_messages ORDER BY id")]
    assert len(reasons) == 2 and reasons[0].startswith("not JSON")
    assert reasons[1] == "store 'S001' does not match the topic's 'S009'"
    log = (tmp_path / "consumer.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def test_a_wrong_database_is_one_line_and_exit_2(tmp_path: Path, broker: Broker) -> None:
    env = {**os.environ, "HQ_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = subprocess.run(
        [sys.executable, str(CONSUMER_SCRIPT), "--host", "127.0.0.1", "--port", str(broker.port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("instore-hq: ") and "Traceback" not in result.stderr
