"""The live store's Server-Sent Events: a new snapshot reaches an open page within a second of
a commit by another connection, and streams follow the feed's thread rules.

Streams are read in a thread with deadlines (``tests.feed_helpers.StreamReader``), never by
sleeping; a real socket pair stands for the browser, so a test hangs up as a browser does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from instore import members
from instore.clock import utcnow
from offers.notifications import create_notification
from portal import feed, watch
from tests.conftest import AuthActions, ConsoleActions
from tests.feed_helpers import (
    ClientStreams,
    SseMessage,
    StreamReader,
    client_streams_fixture,  # noqa: F401 - a fixture
    offer,
)
from tests.live_store_helpers import decide, live_offer, place, seed_zones, shopper

# The goal for a change on the floor to reach the open page.
LIVE_DEADLINE_SECONDS = 1.0
LIVE_STREAM = "/manage/live/stream"


@pytest.fixture(autouse=True)
def quick_disconnect_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams look at their socket often here, so a hung-up test stream ends at once."""
    monkeypatch.setattr(feed, "DISCONNECT_CHECK_SECONDS", 0.05)


@pytest.fixture
def zones(db: sqlite_utils.Database) -> dict[str, int]:
    return seed_zones(db)


@pytest.fixture
def open_live_stream(
    client: FlaskClient, client_streams: ClientStreams
) -> Callable[[], StreamReader]:
    """Open the stream through the test client with a real socket standing for the browser."""
    return lambda: client_streams.open(client, LIVE_STREAM)


def next_snapshot(reader: StreamReader, timeout: float) -> tuple[float, dict[str, Any]]:
    """The next snapshot event, skipping the retry hint and heartbeats."""
    arrived, message = reader.next_event("snapshot", timeout)
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
    assert hint.retry == feed.RETRY_MILLISECONDS
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
    assert watch.open_streams() == 1
    reader.hang_up()
    assert reader.ends_within(LIVE_DEADLINE_SECONDS)
    reader.thread.join(LIVE_DEADLINE_SECONDS)
    assert watch.open_streams() == 0


def test_a_busy_process_sends_one_snapshot_and_a_long_retry(
    open_live_stream: Callable[[], StreamReader],
    console: ConsoleActions,
    app_no_csrf: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Console streams share the reserved-thread rule of the shoppers' feed."""
    console.signin("staff")
    threads = app_no_csrf.config["INSTORE"]["portal"]["threads"]
    monkeypatch.setattr(feed, "RESERVED_THREADS", threads - 1)  # room for one stream
    first = open_live_stream()
    assert first.next()[1].retry == feed.RETRY_MILLISECONDS
    next_snapshot(first, LIVE_DEADLINE_SECONDS)  # sent once the stream is counted
    second = open_live_stream()
    message: SseMessage = second.next()[1]
    assert message.retry == feed.BUSY_RETRY_MILLISECONDS
    assert second.next()[1].event == "snapshot"
    assert second.ends_within(LIVE_DEADLINE_SECONDS)


@pytest.mark.parametrize("first", ["console", "shopper"])
def test_console_and_shopper_streams_share_one_limit(
    first: str,
    client: FlaskClient,
    client_streams: ClientStreams,
    console: ConsoleActions,
    app_no_csrf: Flask,
    db: sqlite_utils.Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every stream holds a thread of the same gthread pool, whatever it streams: with room for
    one and the other kind's stream in it, a page gets what it missed and a long retry."""
    threads = app_no_csrf.config["INSTORE"]["portal"]["threads"]
    monkeypatch.setattr(feed, "RESERVED_THREADS", threads - 1)  # room for one stream
    console.signin("staff")
    phone = app_no_csrf.test_client()
    shopper_auth = AuthActions(phone, db)
    offer(db, shopper_auth.create().id, "Missed while polling")
    shopper_auth.login()
    streams = {
        "console": (lambda: client_streams.open(client, LIVE_STREAM), "snapshot"),
        "shopper": (lambda: client_streams.open(phone, "/feed"), "notification"),
    }
    second = "shopper" if first == "console" else "console"

    open_first, first_event = streams[first]
    streaming = open_first()
    assert streaming.next()[1].retry == feed.RETRY_MILLISECONDS
    streaming.next_event(first_event)  # sent once the stream is counted
    assert watch.open_streams() == 1

    open_second, second_event = streams[second]
    busy = open_second()
    assert busy.next()[1].retry == feed.BUSY_RETRY_MILLISECONDS
    busy.next_event(second_event)
    assert busy.ends_within(LIVE_DEADLINE_SECONDS)
