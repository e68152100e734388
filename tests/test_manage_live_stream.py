"""The live store's Server-Sent Events: a new snapshot reaches an open page within a second of
a commit by another connection, and streams follow the feed's thread rules.

Streams are read in a thread with deadlines (``tests.feed_helpers.StreamReader``), never by
sleeping; a real socket pair stands for the browser, so a test hangs up as a browser does.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlite_utils
from flask.testing import FlaskClient

from instore import members
from instore.clock import utcnow
from offers.notifications import create_notification
from portal.manage import live, live_stream
from tests.conftest import ConsoleActions
from tests.feed_helpers import SseMessage, StreamReader
from tests.live_store_helpers import decide, live_offer, place, seed_zones, shopper

# The goal for a change on the floor to reach the open page.
LIVE_DEADLINE_SECONDS = 1.0


@pytest.fixture(autouse=True)
def quick_disconnect_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams look at their socket often here, so a hung-up test stream ends at once."""
    monkeypatch.setattr(live_stream.feed, "DISCONNECT_CHECK_SECONDS", 0.05)


@pytest.fixture
def zones(db: sqlite_utils.Database) -> dict[str, int]:
    return seed_zones(db)


@pytest.fixture
def open_live_stream(client: FlaskClient) -> Iterator[Callable[[], StreamReader]]:
    """Open the stream through the test client with a real socket standing for the browser."""
    readers: list[StreamReader] = []
    servers: list[socket.socket] = []

    def open_() -> StreamReader:
        browser, server = socket.socketpair()
        servers.append(server)
        response = client.get(
            "/manage/live/stream", environ_base={"gunicorn.socket": server}, buffered=False
        )
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/event-stream"
        reader = StreamReader(response.iter_encoded(), browser.close)
        readers.append(reader)
        return reader

    yield open_
    for reader in readers:
        reader.hang_up()
        assert not reader.thread.is_alive(), "a stream did not end after the browser hung up"
    for server in servers:
        server.close()


def next_snapshot(reader: StreamReader, timeout: float) -> tuple[float, dict[str, Any]]:
    """The next snapshot event, skipping the retry hint and heartbeats."""
    deadline = time.monotonic() + timeout
    while True:
        arrived, message = reader.next(max(0.0, deadline - time.monotonic()))
        if message.event == "snapshot":
            return arrived, message.json()


def zone_count(snapshot: dict[str, Any], zone_id: int) -> int:
    return next(int(z["count"]) for z in snapshot["zones"] if z["id"] == zone_id)


def test_stream_sends_a_new_snapshot_within_a_second_of_a_commit(
    open_live_stream: Callable[[], StreamReader],
    console: ConsoleActions,
    db: sqlite_utils.Database,
    zones: dict[str, int],
) -> None:
    console.signin("staff")
    ana = shopper(db, "Ana", location=True)
    reader = open_live_stream()
    _, hint = reader.next()
    assert hint.retry == live_stream.feed.RETRY_MILLISECONDS
    _, first = next_snapshot(reader, LIVE_DEADLINE_SECONDS)
    assert zone_count(first, zones["Shoes"]) == 0 and first["members"] == []

    committed = time.monotonic()
    place(db, f"m:{ana.id}", zones["Shoes"], member_id=ana.id)
    arrived, second = next_snapshot(reader, LIVE_DEADLINE_SECONDS)

    assert arrived - committed < LIVE_DEADLINE_SECONDS
    assert zone_count(second, zones["Shoes"]) == 1 and second["in_store"] == 1
    assert [m["name"] for m in second["members"]] == ["Ana"]

    # A move is one more snapshot; a withdrawn consent takes the name off at once.
    place(db, f"m:{ana.id}", zones["Checkout"], member_id=ana.id)
    _, third = next_snapshot(reader, LIVE_DEADLINE_SECONDS)
    assert zone_count(third, zones["Shoes"]) == 0 and zone_count(third, zones["Checkout"]) == 1
    members.record_consents(db, ana.id, {"location": False}, "v1")
    _, fourth = next_snapshot(reader, LIVE_DEADLINE_SECONDS)
    assert fourth["members"] == [] and fourth["members_more"] == 0 and fourth["in_store"] == 1


def test_stream_carries_new_notifications_and_refusals(
    open_live_stream: Callable[[], StreamReader],
    console: ConsoleActions,
    db: sqlite_utils.Database,
) -> None:
    console.signin("staff")
    ana = shopper(db, "Ana", marketing=True)
    offer_id = live_offer(db)
    reader = open_live_stream()
    next_snapshot(reader, LIVE_DEADLINE_SECONDS)

    decide(db, ana.id, "cooldown", "one push per 10 min", offer_id=offer_id)
    _, snapshot = next_snapshot(reader, LIVE_DEADLINE_SECONDS)
    assert [(r["outcome"], r["outcome_label"], r["reason"]) for r in snapshot["refusals"]] == [
        ("cooldown", "Cooldown", "one push per 10 min")
    ]
    assert snapshot["refusal_counts"] == [{"outcome": "cooldown", "label": "Cooldown", "count": 1}]

    with db.conn:
        create_notification(db, member_id=ana.id, kind="offer", title="Hi", body="", now=utcnow())
    _, snapshot = next_snapshot(reader, LIVE_DEADLINE_SECONDS)
    assert [(n["member"], n["title"], n["opened"]) for n in snapshot["notifications"]] == [
        ("Ana", "Hi", False)
    ]


def test_stream_ends_when_the_browser_hangs_up(
    open_live_stream: Callable[[], StreamReader], console: ConsoleActions
) -> None:
    console.signin("staff")
    reader = open_live_stream()
    next_snapshot(reader, LIVE_DEADLINE_SECONDS)
    assert live_stream.open_streams() == 1
    reader.hang_up()
    assert reader.ends_within(LIVE_DEADLINE_SECONDS)
    reader.thread.join(LIVE_DEADLINE_SECONDS)
    assert live_stream.open_streams() == 0


def test_a_busy_process_sends_one_snapshot_and_a_long_retry(
    open_live_stream: Callable[[], StreamReader],
    console: ConsoleActions,
    app_no_csrf: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Console streams share the reserved-thread rule of the shoppers' feed."""
    console.signin("staff")
    threads = app_no_csrf.config["INSTORE"]["portal"]["threads"]
    monkeypatch.setattr(live.feed, "RESERVED_THREADS", threads - 1)  # room for one stream
    first = open_live_stream()
    assert first.next()[1].retry == live_stream.feed.RETRY_MILLISECONDS
    second = open_live_stream()
    message: SseMessage = second.next()[1]
    assert message.retry == live_stream.feed.BUSY_RETRY_MILLISECONDS
    assert second.next()[1].event == "snapshot"
    assert second.ends_within(LIVE_DEADLINE_SECONDS)
