"""The live store's Server-Sent Events: a fresh snapshot whenever another process commits.

The presence daemon and the offers worker are other processes; only the database tells the
portal that a shopper moved or an offer went out. Like the shopper's feed (``portal.feed``), one
watcher thread per process and database file (``portal.watch``) notices every commit and wakes
the console streams through a condition; each stream then reads one snapshot and sends it only
when it differs from the last one it sent, so a commit to an unrelated table (a probe's session
refresh) costs a query, not a message.

The feed's timing and thread rules are reused as they are (heartbeat, stream lifetime, reserved
threads, busy retry, the closed-socket check), read from ``portal.feed`` at call time so there is
one place to tune them. The watcher here is the feed's kind without its per-member bookkeeping:
the page needs only "something changed".
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlite_utils

from portal import feed
from portal.database import thread_db
from portal.watch import Watcher, at_capacity, subscribed

# Occupancy also changes with no commit at all: a row that stops being refreshed turns stale
# (presence.occupancy). A stream re-reads its snapshot this often so such a zone empties on the
# page within seconds of the staleness limit, for one small query per open console page.
STALE_REFRESH_SECONDS = 5.0

MONOTONIC = time.monotonic  # the one seam tests patch to move a stream's clock

Snapshot = Callable[[sqlite_utils.Database], dict[str, Any]]


class ChangeWatcher(Watcher):
    """Counts commits to one database file seen by this process: each is one ``generation``."""

    kind = "live-store-watcher"

    def __init__(self, db_path: str, busy_timeout_ms: int) -> None:
        super().__init__(db_path, busy_timeout_ms)
        self.generation = 0

    def current(self) -> int:
        """The generation now; a stream notes it before reading a snapshot."""
        with self._changed:
            return self.generation

    def wait_for_change(self, seen: int, timeout: float) -> bool:
        """Block until a commit newer than generation ``seen`` is noticed, or the timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.generation > seen, max(0.0, timeout))

    def on_commit(self, db: sqlite_utils.Database) -> None:
        """Any commit may change the page: every stream re-reads and sends only a difference."""
        with self._changed:
            self.generation += 1
            self._changed.notify_all()


def format_snapshot(data: str) -> str:
    """One SSE message carrying a whole snapshot (already JSON on one line)."""
    return f"event: snapshot\ndata: {data}\n\n"


def stream_snapshots(
    db_path: str,
    busy_timeout_ms: int,
    snapshot: Snapshot,
    sock: socket.socket | None = None,
    max_streams: int | None = None,
) -> Iterator[str]:
    """The SSE body: the snapshot now, then again after every commit that changes it.

    Runs outside the request context (gunicorn iterates it after the view returned), so
    ``snapshot`` must carry everything it needs (labels, time zone) in its closure. Streams of the
    shoppers' feed and of the console share one gthread pool, so both count towards
    ``max_streams``; past it a page gets one snapshot and a long ``retry``.
    """
    started = MONOTONIC()
    ends = started + feed.STREAM_SECONDS
    next_heartbeat = started + feed.HEARTBEAT_SECONDS
    db = thread_db(db_path, busy_timeout_ms)
    if at_capacity(max_streams):
        yield f"retry: {feed.BUSY_RETRY_MILLISECONDS}\n\n"
        yield format_snapshot(_dumps(snapshot(db)))
        return
    yield f"retry: {feed.RETRY_MILLISECONDS}\n\n"
    with subscribed(ChangeWatcher, db_path, busy_timeout_ms) as watcher:
        last_sent, changed = "", True
        next_refresh = started + STALE_REFRESH_SECONDS
        seen = 0
        while True:
            if changed:
                # Noted before the read: a commit during the read wakes us again, never lost.
                seen = watcher.current()
                data = _dumps(snapshot(db))
                if data != last_sent:
                    yield format_snapshot(data)
                    last_sent = data
            now = MONOTONIC()
            if now >= ends:
                return
            if now >= next_heartbeat:
                yield ": hb\n\n"
                next_heartbeat = now + feed.HEARTBEAT_SECONDS
            if now >= next_refresh:
                next_refresh = now + STALE_REFRESH_SECONDS
            wait = min(ends, next_heartbeat, next_refresh, now + feed.DISCONNECT_CHECK_SECONDS)
            changed = watcher.wait_for_change(seen, wait - now)
            if not changed:
                if feed.client_gone(sock):
                    return
                changed = MONOTONIC() >= next_refresh


def _dumps(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
