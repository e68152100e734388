"""One thread per process that notices commits by other processes, for the portal's live streams.

The shopper's feed (``portal.feed``) and the console's live store (``portal.manage.live_stream``)
learn of news only through the database: the offers worker and the presence daemon are other
processes. A watcher asks SQLite every ``WATCH_INTERVAL_SECONDS`` whether anything was committed
(``PRAGMA data_version``, which costs no table read); only then does its subclass look at what
changed and wake the waiting streams through a condition. A hundred open streams cost one small
query per interval, not a hundred.

The registry here keeps one running watcher per kind and database file in this process and counts
the streams each serves. Every stream holds one of a gthread worker's few threads whatever it
streams, so ``open_streams`` counts them all: the threads kept for probes and pages are guarded
against shoppers' and managers' streams alike.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, TypeVar

import sqlite_utils

from instore.db import connect

log = logging.getLogger(__name__)

# How often a watcher asks SQLite whether another process committed: the bulk of the delay
# between a commit and the screen (the feed's target is a p95 well under 500 ms).
WATCH_INTERVAL_SECONDS = 0.1
# A watcher stops after this long with no open stream (and starts again with the next one).
WATCHER_IDLE_SECONDS = 60.0

MONOTONIC = time.monotonic  # the one seam tests patch to move the idle clock


class Watcher:
    """Polls one database file for commits in a daemon thread; a subclass says what they mean.

    Subclasses set ``kind`` (it names the thread, so a test or py-spy can tell the watchers of
    one process apart) and implement ``on_commit``; ``take_baseline`` notes what is already
    committed when the first stream opens.
    """

    kind: ClassVar[str] = "watcher"

    def __init__(self, db_path: str, busy_timeout_ms: int) -> None:
        self.db_path = db_path
        self.busy_timeout_ms = busy_timeout_ms
        self.pid = os.getpid()  # a watcher made before a fork has no thread in the child
        self.subscribers = 0
        self.idle_since = MONOTONIC()
        self.running = False
        self._changed = threading.Condition()
        self._data_version = 0
        self._failing = False  # log a broken database once, not ten times a second
        self._db: sqlite_utils.Database | None = None

    def start(self) -> None:
        """Take the baseline in the caller's thread, then watch in a daemon thread.

        The baseline is taken before the first stream's first read, so every commit is either in
        that read or noticed by the watcher: none falls between the two.
        """
        self._db = connect(self.db_path, self.busy_timeout_ms)
        self._data_version = _data_version(self._db)
        self.take_baseline(self._db)
        self.running = True
        name = f"{self.kind} {self.db_path}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def take_baseline(self, db: sqlite_utils.Database) -> None:
        """Note what is committed already; nothing by default."""

    def on_commit(self, db: sqlite_utils.Database) -> None:
        """Someone committed since the last check: find out what and wake the streams it concerns
        (with ``self._changed`` held when changing what they wait on, then ``notify_all``)."""
        raise NotImplementedError

    def _run(self) -> None:
        db = self._db
        assert db is not None
        try:
            while not self._stop_when_idle():
                time.sleep(WATCH_INTERVAL_SECONDS)
                try:
                    self._check(db)
                    self._failing = False
                except Exception:  # a locked or vanished file must not end the streams for good
                    if not self._failing:
                        log.warning("%s could not read the database", self.kind, exc_info=True)
                    self._failing = True
        finally:
            db.conn.close()

    def _check(self, db: sqlite_utils.Database) -> None:
        version = _data_version(db)
        if version != self._data_version:
            self._data_version = version
            self.on_commit(db)

    def _stop_when_idle(self) -> bool:
        """Leave the registry and stop once no stream has needed us for a while."""
        with _registry_lock:
            idle = self.subscribers == 0 and MONOTONIC() - self.idle_since > WATCHER_IDLE_SECONDS
            if idle:
                self.running = False
                if _watchers.get((type(self), self.db_path)) is self:
                    del _watchers[(type(self), self.db_path)]
            return idle

    def _serving(self) -> bool:
        """Running in this very process (a copy inherited through a fork has no thread)."""
        return self.running and self.pid == os.getpid()


def _data_version(db: sqlite_utils.Database) -> int:
    """SQLite's counter of commits by other connections to this file (no table is read)."""
    return int(db.conn.execute("PRAGMA data_version").fetchone()[0])


W = TypeVar("W", bound=Watcher)

_registry_lock = threading.Lock()
_watchers: dict[tuple[type[Watcher], str], Watcher] = {}


@contextmanager
def subscribed(kind: type[W], db_path: str, busy_timeout_ms: int) -> Iterator[W]:
    """The running watcher of ``kind`` for this database in this process, counted in use while
    the ``with`` block (a stream) lasts; it is started if need be, and may stop once idle."""
    with _registry_lock:
        found = _watchers.get((kind, db_path))
        if isinstance(found, kind) and found._serving():
            watcher = found
        else:
            watcher = kind(db_path, busy_timeout_ms)
            _watchers[(kind, db_path)] = watcher
            watcher.start()
        watcher.subscribers += 1
    try:
        yield watcher
    finally:
        with _registry_lock:
            watcher.subscribers -= 1
            if watcher.subscribers == 0:
                watcher.idle_since = MONOTONIC()


def open_streams() -> int:
    """How many live streams of every kind this process is serving now (each holds a thread)."""
    with _registry_lock:
        return sum(watcher.subscribers for watcher in _watchers.values() if watcher._serving())


def at_capacity(max_streams: int | None) -> bool:
    """True when this process already serves ``max_streams`` streams (None: no limit)."""
    return max_streams is not None and open_streams() >= max_streams
