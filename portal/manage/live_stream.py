"""The live store's Server-Sent Events: a fresh snapshot whenever another process commits.

The presence daemon and the offers worker are other processes; only the database tells the
portal that a shopper moved or an offer went out. Like the shopper's feed (``portal.feed``), one
watcher thread per process and database file asks SQLite ``PRAGMA data_version`` (no table read)
every ``feed.WATCH_INTERVAL_SECONDS`` and wakes the console streams through a condition; each
stream then reads one snapshot and sends it only when it differs from the last one it sent, so a
commit to an unrelated table (a probe's session refresh) costs a query, not a message.

The feed's timing and thread rules are reused as they are (heartbeat, stream lifetime, reserved
threads, busy retry, the closed-socket check), read from ``portal.feed`` at call time so there is
one place to tune them. The feed's watcher is not reused: it tracks notification ids per member,
while this one needs only "something changed".
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlite_utils

from instore.db import connect
from portal import feed
from portal.database import thread_db

log = logging.getLogger(__name__)

# Occupancy also changes with no commit at all: a row that stops being refreshed turns stale
# (presence.occupancy). A stream re-reads its snapshot this often so such a zone empties on the
# page within seconds of the staleness limit, for one small query per open console page.
STALE_REFRESH_SECONDS = 5.0

MONOTONIC = time.monotonic  # the one seam tests patch to move a stream's clock

Snapshot = Callable[[sqlite_utils.Database], dict[str, Any]]


class ChangeWatcher:
    """Counts commits to one database file seen by this process: each is one ``generation``."""

    def __init__(self, db_path: str, busy_timeout_ms: int) -> None:
        self.db_path = db_path
        self.busy_timeout_ms = busy_timeout_ms
        self.pid = os.getpid()
        self.subscribers = 0
        self.idle_since = MONOTONIC()
        self.running = False
        self.generation = 0
        self._changed = threading.Condition()
        self._data_version = 0
        self._failing = False  # log a broken database once, not ten times a second
        self._db: sqlite_utils.Database | None = None

    def start(self) -> None:
        """Take the baseline in the caller's thread, then watch in a daemon thread.

        A stream reads its first snapshot after this baseline, so a commit is either in that
        snapshot or counted as a new generation: none falls between the two.
        """
        self._db = connect(self.db_path, self.busy_timeout_ms)
        self._data_version = self._read_data_version(self._db)
        self.running = True
        name = f"live-store-watcher {self.db_path}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def current(self) -> int:
        """The generation now; a stream notes it before reading a snapshot."""
        with self._changed:
            return self.generation

    def wait_for_change(self, seen: int, timeout: float) -> bool:
        """Block until a commit newer than generation ``seen`` is noticed, or the timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.generation > seen, max(0.0, timeout))

    @staticmethod
    def _read_data_version(db: sqlite_utils.Database) -> int:
        return int(db.conn.execute("PRAGMA data_version").fetchone()[0])

    def _run(self) -> None:
        db = self._db
        assert db is not None
        try:
            while not self._stop_when_idle():
                time.sleep(feed.WATCH_INTERVAL_SECONDS)
                try:
                    self._check(db)
                    self._failing = False
                except Exception:  # a locked or vanished file must not end the live view
                    if not self._failing:
                        log.warning("live store watcher could not read the database", exc_info=True)
                    self._failing = True
        finally:
            db.conn.close()

    def _check(self, db: sqlite_utils.Database) -> None:
        version = self._read_data_version(db)
        if version == self._data_version:
            return
        self._data_version = version
        with self._changed:
            self.generation += 1
            self._changed.notify_all()

    def _stop_when_idle(self) -> bool:
        """Leave the registry and stop once no stream has needed us for a while."""
        with _registry_lock:
            idle = (
                self.subscribers == 0 and MONOTONIC() - self.idle_since > feed.WATCHER_IDLE_SECONDS
            )
            if idle:
                self.running = False
                if _watchers.get(self.db_path) is self:
                    del _watchers[self.db_path]
            return idle


_registry_lock = threading.Lock()
_watchers: dict[str, ChangeWatcher] = {}


def subscribe(db_path: str, busy_timeout_ms: int) -> ChangeWatcher:
    """The running watcher for this database in this process (started if need be), counted in use.

    A watcher made before a fork is replaced: its thread did not survive into the child.
    """
    with _registry_lock:
        watcher = _watchers.get(db_path)
        if watcher is None or not watcher.running or watcher.pid != os.getpid():
            watcher = _watchers[db_path] = ChangeWatcher(db_path, busy_timeout_ms)
            watcher.start()
        watcher.subscribers += 1
        return watcher


def unsubscribe(watcher: ChangeWatcher) -> None:
    """A stream ended; the watcher may stop once it has been idle for a while."""
    with _registry_lock:
        watcher.subscribers -= 1
        if watcher.subscribers == 0:
            watcher.idle_since = MONOTONIC()


def open_streams() -> int:
    """How many live-store streams this process is serving now (each holds a gthread thread)."""
    with _registry_lock:
        return sum(watcher.subscribers for watcher in _watchers.values() if watcher.running)


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
    if max_streams is not None and feed.open_streams() + open_streams() >= max_streams:
        yield f"retry: {feed.BUSY_RETRY_MILLISECONDS}\n\n"
        yield format_snapshot(_dumps(snapshot(db)))
        return
    yield f"retry: {feed.RETRY_MILLISECONDS}\n\n"
    watcher = subscribe(db_path, busy_timeout_ms)
    try:
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
    finally:
        unsubscribe(watcher)


def _dumps(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
