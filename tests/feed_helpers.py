"""Helpers for the tests of the portal's live streams: an SSE reader with deadlines, streams
opened through the test client, and notification factories.

``StreamReader`` reads a stream in a thread and stamps each message's arrival, so a test waits
for a message with a deadline instead of blocking (or sleeping). ``ClientStreams`` (the
``client_streams`` fixture, imported as ``client_streams_fixture``) opens the shopper's feed or the
console's live store through a Flask test client with a real socket pair standing for the phone or
browser; ``ana`` is a member signed in on the test client. ``offer`` and ``friend_note`` commit
notifications the way the offers worker does.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import sqlite_utils
from flask.testing import FlaskClient

from instore import members
from instore.clock import utcnow
from offers.codes import new_code
from offers.notifications import create_notification
from tests.conftest import AuthActions

DEADLINE_SECONDS = 2.0  # the feed's promise: a committed notification is on the phone by then


@dataclass
class SseMessage:
    """One Server-Sent Events message as a browser's EventSource parses it."""

    event: str = "message"
    id: str | None = None
    data: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


def parse_block(block: str) -> SseMessage:
    """Fields of one message (lines up to a blank line), per the HTML living standard."""
    message, data = SseMessage(), []
    for line in block.split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            message.comments.append(value)
        elif name == "data":
            data.append(value)
        elif name == "event":
            message.event = value
        elif name == "id":
            message.id = value
        elif name == "retry":
            message.retry = int(value)
    message.data = "\n".join(data)
    return message


def parse_sse(chunks: Iterable[bytes]) -> Iterator[SseMessage]:
    """Messages from a byte stream cut anywhere (HTTP chunks do not follow message bounds)."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            yield parse_block(block.decode())


class StreamReader:
    """Reads a stream in a thread and stamps each message's arrival, so a test can wait for one
    with a deadline instead of blocking for ever."""

    def __init__(self, chunks: Iterable[bytes], hang_up: Callable[[], None]) -> None:
        self._messages: queue.Queue[tuple[float, SseMessage | None]] = queue.Queue()
        self._hang_up = hang_up
        self.thread = threading.Thread(target=self._read, args=(chunks,), daemon=True)
        self.thread.start()

    def _read(self, chunks: Iterable[bytes]) -> None:
        try:
            for message in parse_sse(chunks):
                self._messages.put((time.monotonic(), message))
        except (OSError, ValueError, http.client.HTTPException):
            pass  # we hung up mid-read
        finally:
            self._messages.put((time.monotonic(), None))

    def next(self, timeout: float = DEADLINE_SECONDS) -> tuple[float, SseMessage]:
        """The next message and when it arrived; fails if none comes in time or the stream ended."""
        try:
            arrived, message = self._messages.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no message on the stream within {timeout} s")
        assert message is not None, "the stream ended"
        return arrived, message

    def next_event(self, event: str, timeout: float = DEADLINE_SECONDS) -> tuple[float, SseMessage]:
        """The next message of kind ``event``, skipping the retry hint, heartbeats and others."""
        deadline = time.monotonic() + timeout
        while True:
            arrived, message = self.next(max(0.0, deadline - time.monotonic()))
            if message.event == event:
                return arrived, message

    def next_notification(self, timeout: float = DEADLINE_SECONDS) -> tuple[float, SseMessage]:
        """The next notification event of the shopper's feed."""
        return self.next_event("notification", timeout)

    def ends_within(self, timeout: float) -> bool:
        """True if the server ends the stream within ``timeout`` (messages before that are fine)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                _, message = self._messages.get(timeout=left)
            except queue.Empty:
                return False
            if message is None:
                return True
        return False

    def hang_up(self) -> None:
        """Close the connection from the phone's side and wait for the reader to stop."""
        if self.thread.is_alive():
            self._hang_up()
            self.thread.join(timeout=5)


class ClientStreams:
    """SSE routes opened through Flask test clients, each with a real socket pair standing for the
    phone or browser (``gunicorn.socket``), so a test hangs up as they do."""

    def __init__(self) -> None:
        self.readers: list[StreamReader] = []
        self._server_sockets: list[socket.socket] = []

    def open(self, client: FlaskClient, path: str, **headers: str) -> StreamReader:
        """Start streaming ``path``; fails unless the answer is an event stream."""
        far_end, server = socket.socketpair()
        self._server_sockets.append(server)
        response = client.get(
            path, headers=headers, environ_base={"gunicorn.socket": server}, buffered=False
        )
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/event-stream"
        reader = StreamReader(response.iter_encoded(), far_end.close)
        self.readers.append(reader)
        return reader

    def close(self) -> None:
        """Hang every stream up; each must end (its thread is free again for the next page)."""
        for reader in self.readers:
            reader.hang_up()
            assert not reader.thread.is_alive(), "a stream did not end after its client hung up"
        for server in self._server_sockets:
            server.close()


@pytest.fixture(name="client_streams")
def client_streams_fixture() -> Iterator[ClientStreams]:
    """Streams opened by the test, all hung up (and checked to have ended) after it."""
    streams = ClientStreams()
    yield streams
    streams.close()


@pytest.fixture(name="ana")
def ana_fixture(auth: AuthActions) -> members.Member:
    """A member signed in on the test client, whose feed the test reads."""
    member = auth.create()
    auth.login()
    return member


def offer(db: sqlite_utils.Database, member_id: int, title: str = "Boots", **changes: Any) -> int:
    """Commit an offer notification the way the offers worker does (one autocommit insert)."""
    values: dict[str, Any] = {
        "member_id": member_id,
        "kind": "offer",
        "title": title,
        "body": "Half price today",
        "now": utcnow(),
        "price_cents": 5550,
        "code": new_code("S001"),
        "expires_at": utcnow() + timedelta(hours=2),
        "data": {"base_price_cents": 11100, "zone": "Shoes", "product": "boots"},
    }
    values.update(changes)
    return create_notification(db, **values)


def friend_note(db: sqlite_utils.Database, member_id: int, name: str = "Bea") -> int:
    return create_notification(
        db,
        member_id=member_id,
        kind="friend",
        title=f"{name} is here",
        body="in Shoes",
        now=utcnow(),
        data={"friend_name": name, "zone": "Shoes"},
    )
