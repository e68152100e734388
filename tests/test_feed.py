"""The shopper's live feed: SSE from the notifications table, opens and redemption QR codes.

Streams are read in a thread with deadlines, never by sleeping. A test-client stream gets a real
socket pair as its "client connection" (``gunicorn.socket``), so a test hangs up on it as a phone
does. The last tests run ``instore portal`` under gunicorn and read the stream over real HTTP
while this process commits notifications, as the offers worker does.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from hardware.clients import DemoLookup
from instore import members, sessions
from instore.db import open_database
from offers.notifications import get_notification
from portal import feed
from tests import live_portal
from tests.conftest import TEST_CLIENT_IP, AuthActions
from tests.feed_helpers import (
    DEADLINE_SECONDS,
    ClientStreams,
    StreamReader,
    ana_fixture,  # noqa: F401 - a fixture
    client_streams_fixture,  # noqa: F401 - a fixture
    friend_note,
    offer,
)

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def quick_disconnect_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams look at their socket often here, so a hung-up test stream ends at once."""
    monkeypatch.setattr(feed, "DISCONNECT_CHECK_SECONDS", 0.05)


@pytest.fixture
def open_stream(client: FlaskClient, client_streams: ClientStreams) -> Callable[..., StreamReader]:
    """Open ``/feed`` through the test client with a real socket standing for the phone."""

    def open_(path: str = "/feed", **headers: str) -> StreamReader:
        return client_streams.open(client, path, **headers)

    return open_


# --- the stream --------------------------------------------------------------------------------


def test_feed_needs_a_member(client: FlaskClient) -> None:
    response = client.get("/feed")
    assert response.status_code == 401
    assert response.mimetype == "text/plain"
    assert "Sign in" in response.get_data(as_text=True)


def test_stream_headers_and_retry_hint(client: FlaskClient, ana: members.Member) -> None:
    response = client.get("/feed", buffered=False)
    try:
        assert response.mimetype == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        first = next(iter(response.response))
        assert first == f"retry: {feed.RETRY_MILLISECONDS}\n\n".encode()
    finally:
        response.close()


def test_head_does_not_hold_a_thread(
    client: FlaskClient, ana: members.Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A HEAD gets the headers only (Werkzeug drops the body), so no stream runs for it."""
    monkeypatch.setattr(feed, "STREAM_SECONDS", 0.5)  # a running stream would end, not hang
    response = client.head("/feed")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.data == b""


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({}, "", [0, 1, 2]),  # a first connection: the latest few
        ({"Last-Event-ID": "{0}"}, "", [1, 2]),
        ({}, "?after={1}", [2]),
        ({"Last-Event-ID": "{1}"}, "?after={0}", [2]),  # a reconnect: the header wins
        ({"Last-Event-ID": "{2}"}, "", []),
    ],
)
def test_backlog_resumes_after_the_last_seen(
    open_stream: Callable[..., StreamReader],
    db: sqlite_utils.Database,
    ana: members.Member,
    auth: AuthActions,
    headers: dict[str, str],
    query: str,
    expected: list[int],
) -> None:
    """Exactly the member's notifications after the resume point, oldest first, in full."""
    bea = auth.create(email="bea@example.com", name="Bea")
    ids = [offer(db, ana.id, "Boots"), friend_note(db, ana.id), offer(db, ana.id, "Scarf")]
    offer(db, bea.id, "Not for Ana")
    ids_text = [str(i) for i in ids]
    reader = open_stream(
        "/feed" + query.format(*ids_text),
        **{name: value.format(*ids_text) for name, value in headers.items()},
    )
    for index in expected:
        _, message = reader.next_notification()
        assert message.id == ids_text[index]
        notification = get_notification(db, ids[index])
        assert notification is not None
        assert message.json() == notification.to_json()
    # Nothing else was due: the next event is one committed now, not an older or foreign one.
    newest = offer(db, ana.id, "Hat")
    _, message = reader.next_notification()
    assert message.id == str(newest)


@pytest.mark.parametrize("bad", ["abc", "-1", "1" * 30, "\u0661", "1.5"])
def test_bad_resume_point_is_400(client: FlaskClient, ana: members.Member, bad: str) -> None:
    assert client.get("/feed", query_string={"after": bad}).status_code == 400
    assert client.get("/feed", headers={"Last-Event-ID": bad}).status_code == 400


def test_committed_notification_reaches_an_open_stream(
    open_stream: Callable[..., StreamReader], db: sqlite_utils.Database, ana: members.Member
) -> None:
    reader = open_stream()
    _, hint = reader.next()
    assert hint.retry == feed.RETRY_MILLISECONDS
    committed = time.monotonic()
    notification_id = offer(db, ana.id, "Socks <3")
    arrived, message = reader.next_notification()
    assert message.id == str(notification_id)
    assert message.json()["title"] == "Socks <3"
    assert arrived - committed < DEADLINE_SECONDS


def test_one_watcher_thread_serves_every_stream(
    open_stream: Callable[..., StreamReader],
    db: sqlite_utils.Database,
    ana: members.Member,
    app_no_csrf: Flask,
) -> None:
    """Streams share one watcher per process and database; each still gets its notification."""
    readers = [open_stream() for _ in range(3)]
    for reader in readers:
        reader.next()  # the retry hint: the stream is running
    notification_id = offer(db, ana.id)
    for reader in readers:
        assert reader.next_notification()[1].id == str(notification_id)
    name = f"feed-watcher {app_no_csrf.config['INSTORE'].database_path}"
    assert [t.name for t in threading.enumerate()].count(name) == 1


def test_heartbeat_keeps_an_idle_stream_open(
    open_stream: Callable[..., StreamReader],
    ana: members.Member,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed, "HEARTBEAT_SECONDS", 0.05)
    reader = open_stream()
    reader.next()  # retry hint
    _, message = reader.next()
    assert message.comments == ["hb"] and message.id is None


def test_stream_ends_after_its_lifetime(
    open_stream: Callable[..., StreamReader],
    ana: members.Member,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """So a gthread thread is not held for ever: EventSource reconnects with Last-Event-ID."""
    monkeypatch.setattr(feed, "STREAM_SECONDS", 0.2)
    assert open_stream().ends_within(DEADLINE_SECONDS)


def test_stream_stops_when_the_phone_hangs_up(
    client: FlaskClient, db: sqlite_utils.Database, ana: members.Member
) -> None:
    """No write is due for 15 s, yet the thread is free again as soon as the phone is gone."""
    phone, server = socket.socketpair()
    response = client.get("/feed", environ_base={"gunicorn.socket": server}, buffered=False)
    reader = StreamReader(response.iter_encoded(), phone.close)
    reader.next()  # the stream is running
    phone.close()
    assert reader.ends_within(DEADLINE_SECONDS)
    server.close()


def test_client_gone_sees_only_a_closed_socket() -> None:
    phone, server = socket.socketpair()
    assert not feed.client_gone(server)
    phone.sendall(b"x")  # a phone that sends something is still there
    assert not feed.client_gone(server)
    assert server.recv(1) == b"x"  # (unread bytes would hide the end until a write fails)
    phone.close()
    assert feed.client_gone(server)
    assert not feed.client_gone(None)
    server.close()


# --- opens -------------------------------------------------------------------------------------


@pytest.fixture
def phone_member(db: sqlite_utils.Database) -> members.Member:
    """A member recognised by their phone's WiFi session, as on the store page, not a cookie."""
    member = members.create_member(db, display_name="Ana", password=PASSWORD, email="a@b.example")
    mac = DemoLookup().mac_for(TEST_CLIENT_IP)
    assert mac is not None
    sessions.authorize_client(
        db, mac=mac, ip=TEST_CLIENT_IP, member_id=member.id, hours=4, idle_minutes=30
    )
    return member


def page_csrf_token(client: FlaskClient) -> str:
    page = client.get("/store").get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert match, "the store page carries the CSRF token for store.js"
    return match.group(1)


def test_opening_needs_the_csrf_header(
    app: Flask, db: sqlite_utils.Database, phone_member: members.Member
) -> None:
    client = app.test_client()
    notification_id = offer(db, phone_member.id)
    url = f"/feed/{notification_id}/opened"

    assert client.post(url).status_code == 400
    assert client.post(url, headers={"X-CSRFToken": "forged"}).status_code == 400
    stored = get_notification(db, notification_id)
    assert stored is not None and stored.opened_at is None

    response = client.post(url, headers={"X-CSRFToken": page_csrf_token(client)})
    assert response.status_code == 204
    stored = get_notification(db, notification_id)
    assert stored is not None and stored.opened_at is not None


def test_cannot_open_someone_elses_notification(
    app: Flask, db: sqlite_utils.Database, phone_member: members.Member
) -> None:
    client = app.test_client()
    token = page_csrf_token(client)
    bea = members.create_member(db, display_name="Bea", password=PASSWORD, email="b@b.example")
    theirs = offer(db, bea.id)
    for notification_id in (theirs, theirs + 100):
        response = client.post(f"/feed/{notification_id}/opened", headers={"X-CSRFToken": token})
        assert response.status_code == 404
    stored = get_notification(db, theirs)
    assert stored is not None and stored.opened_at is None


def test_opening_without_a_member_is_401(client: FlaskClient) -> None:
    assert client.post("/feed/1/opened").status_code == 401


# --- under gunicorn, over real HTTP ------------------------------------------------------------

LATENCY_ROUNDS = 20
STREAMS = 4


@dataclass
class LiveFeeds:
    """A running ``instore portal``, a database connection to it and a member online on it."""

    portal: live_portal.LivePortal
    db: sqlite_utils.Database
    member: members.Member
    readers: list[StreamReader] = field(default_factory=list)

    def open(self, **headers: str) -> StreamReader:
        """A real HTTP connection to ``/feed``, read in a thread."""
        connection = http.client.HTTPConnection("127.0.0.1", self.portal.port, timeout=30)
        connection.connect()
        sock = connection.sock
        connection.request("GET", "/feed", headers={"Accept": "text/event-stream", **headers})
        response = connection.getresponse()
        assert response.status == 200, response.read()

        def chunks() -> Iterator[bytes]:
            try:
                while chunk := response.read1(65536):
                    yield chunk
            finally:
                connection.close()  # in the reading thread, once it has stopped reading

        def hang_up() -> None:
            # Wakes the reader (EOF) and sends the server a FIN, as a phone closing the page does.
            with contextlib.suppress(OSError):  # the server may have ended it already
                sock.shutdown(socket.SHUT_RDWR)

        reader = StreamReader(chunks(), hang_up)
        self.readers.append(reader)
        return reader


@pytest.fixture
def live_feeds(tmp_path: Path, request: Any) -> Iterator[LiveFeeds]:
    """``instore portal`` with the (workers, threads) the test asks for, else 2 workers of 8."""
    workers, threads = getattr(request, "param", (2, 8))
    settings = {"INSTORE_PORTAL_WORKERS": str(workers), "INSTORE_PORTAL_THREADS": str(threads)}
    with live_portal.running_portal(tmp_path / "portal", settings) as portal:
        db = open_database(portal.database_path)
        member = members.create_member(
            db, display_name="Ana", password=PASSWORD, email="a@b.example"
        )
        mac = DemoLookup().mac_for("127.0.0.1")
        assert mac is not None
        sessions.authorize_client(
            db, mac=mac, ip="127.0.0.1", member_id=member.id, hours=4, idle_minutes=30
        )
        feeds = LiveFeeds(portal, db, member)
        try:
            yield feeds
        finally:
            for reader in feeds.readers:
                reader.hang_up()
            db.conn.close()


# Room for every stream of the test on one worker: gunicorn does not spread connections evenly.
@pytest.mark.parametrize("live_feeds", [(2, STREAMS + 1 + feed.RESERVED_THREADS)], indirect=True)
def test_notifications_reach_streams_on_two_workers(
    live_feeds: LiveFeeds, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several streams across gunicorn's workers each get every notification, well within 2 s,
    and a reconnect with Last-Event-ID gets only the newer ones."""
    readers = [live_feeds.open() for _ in range(STREAMS)]
    for reader in readers:
        reader.next()  # the retry hint: each stream is being served
    latencies: list[float] = []
    ids: list[int] = []
    for round_ in range(LATENCY_ROUNDS):
        started = time.monotonic()
        ids.append(offer(live_feeds.db, live_feeds.member.id, f"Offer {round_}"))
        for reader in readers:
            arrived, message = reader.next_notification()
            assert message.id == str(ids[-1])
            latencies.append(arrived - started)

    quantiles = statistics.quantiles(latencies, n=20)
    with capsys.disabled():
        print(
            f"\nfeed latency, commit to stream, {len(latencies)} deliveries on {STREAMS} streams, "
            f"2 gunicorn workers: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {quantiles[18] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
    assert max(latencies) < DEADLINE_SECONDS
    assert quantiles[18] < 0.5

    resumed = live_feeds.open(**{"Last-Event-ID": str(ids[-3])})
    assert [resumed.next_notification()[1].id for _ in range(2)] == [str(i) for i in ids[-2:]]
    newest = offer(live_feeds.db, live_feeds.member.id, "After the reconnect")
    assert resumed.next_notification()[1].id == str(newest)


# Straight to loopback even when the developer's environment sets http_proxy.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers_within(url: str, timeout: float) -> bool:
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, TimeoutError):
        return False


@pytest.mark.parametrize("live_feeds", [(1, feed.RESERVED_THREADS + 1)], indirect=True)
def test_streams_leave_threads_for_probes_and_give_theirs_back(live_feeds: LiveFeeds) -> None:
    """One worker whose threads allow one stream: a second page polls instead of streaming (its
    backlog, then a long retry), pages and probes are still answered at once, and when the
    first phone hangs up the next page streams again."""
    first = live_feeds.open()
    assert first.next()[1].retry == feed.RETRY_MILLISECONDS
    offer(live_feeds.db, live_feeds.member.id, "Missed while polling")
    second = live_feeds.open()
    assert second.next()[1].retry == feed.BUSY_RETRY_MILLISECONDS
    assert second.next_notification()[1].json()["title"] == "Missed while polling"
    assert second.ends_within(3.0)
    assert _answers_within(f"{live_feeds.portal.url}/venue", 1.0), "the reserve should serve it"
    first.hang_up()
    deadline = time.monotonic() + 3.0
    while True:  # the server notices the hang-up within DISCONNECT_CHECK_SECONDS
        again = live_feeds.open()
        retry = again.next()[1].retry
        if retry == feed.RETRY_MILLISECONDS or time.monotonic() > deadline:
            break
        again.hang_up()
    assert retry == feed.RETRY_MILLISECONDS
