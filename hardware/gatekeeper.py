"""The gatekeeper: makes the gateway's authorized set equal the live sessions in the database.

Desired state is the ``sessions`` table; actual state is the gateway (nftables on a box). Two kinds
of pass keep them equal:

- A **quick pass** runs on a nudge from the portal, on any commit to the database, and when a
  session reaches its end. It reads only what changed — the ``session.started`` and
  ``session.revoked`` events after its outbox cursor, and the sessions whose deadline passed — so
  a sign-in costs the same with 10,000 phones online as with one.
- A **full check** every ``reconcile_seconds`` re-reads every live session and the gateway itself:
  it heals drift (a flushed table, a reboot, a crash half-way through a change, a hand-edited
  session) and reads per-client traffic counters so a phone still using the network does not idle
  out. Its slow reads run in a background thread so they never delay a quick pass; only the
  resulting changes are applied from the loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from hardware.gateway import Client, ClientKey, ClientState, Gateway, GatewayError
from instore import sessions
from instore.clock import from_iso, to_iso, utcnow
from instore.nudge import NudgeListener

log = logging.getLogger(__name__)

MONOTONIC_TIME = time.monotonic  # the seam tests patch
POLL_SECONDS = 0.25  # how often to look at the database's change counter between nudges
UNTIL_TOLERANCE_SECONDS = 5  # element timeouts are whole seconds and tick down
FIRST_BACKOFF_SECONDS = 0.25  # after a failed change, retry soon (the next full check may fix it)
MAX_BACKOFF_SECONDS = 5.0  # ...but never hammer a broken nft more than this often
SESSION_EVENTS = ("session.started", "session.revoked")
FULL_CHECK_NICENESS = 10  # the background full check yields the CPU to the loop
GIL_SWITCH_SECONDS = 0.0005  # Python's default 5 ms would add up over a pass's many GIL hand-offs


@dataclass(frozen=True)
class Wanted:
    """One client the database says must be authorized."""

    session_id: int
    client: Client
    idle_deadline: datetime

    @property
    def deadline(self) -> datetime:
        return min(self.client.until, self.idle_deadline)


@dataclass
class ReconcileResult:
    added: list[ClientKey] = field(default_factory=list)
    removed: list[ClientKey] = field(default_factory=list)
    drift_fixed: int = 0
    authorized: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.drift_fixed)


@dataclass
class Snapshot:
    """What a full check read, and the outbox position it is consistent with.

    ``differing`` and ``next_deadline`` are worked out by the reading thread too, so that bringing
    a snapshot into effect costs the loop O(changes), not O(clients).
    """

    event_id: int
    wanted: dict[ClientKey, Wanted]
    healthy: bool
    listing: dict[ClientKey, ClientState] | None
    differing: set[ClientKey] = field(default_factory=set)
    next_deadline: datetime | None = None


def _differing(
    wanted: dict[ClientKey, Wanted], actual: dict[ClientKey, ClientState]
) -> set[ClientKey]:
    """Keys to add, remove or re-time for ``actual`` to match ``wanted``."""
    keys = set(wanted) ^ set(actual)
    for key, w in wanted.items():
        have = actual.get(key)
        if have is not None and abs((have.until - w.client.until).total_seconds()) > (
            UNTIL_TOLERANCE_SECONDS
        ):
            keys.add(key)
    return keys


_WANTED_COLUMNS = "id, mac, ip, expires_at, idle_deadline"
_LIVE_WHERE = "revoked_at IS NULL AND expires_at > :now AND idle_deadline > :now"


def _wanted_from_rows(rows: list[tuple[Any, ...]]) -> dict[ClientKey, Wanted]:
    return {
        (mac, ip): Wanted(session_id, Client(mac, ip, from_iso(expires)), from_iso(idle))
        for session_id, mac, ip, expires, idle in rows
    }


def wanted_clients(db: sqlite_utils.Database) -> dict[ClientKey, Wanted]:
    """Live sessions by (MAC, IP); the newest wins if the table ever holds two."""
    rows = db.conn.execute(
        f"SELECT {_WANTED_COLUMNS} FROM sessions WHERE {_LIVE_WHERE} ORDER BY id",  # noqa: S608
        {"now": to_iso(utcnow())},
    ).fetchall()
    return _wanted_from_rows(rows)


def _last_event_id(db: sqlite_utils.Database) -> int:
    return int(db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])


class Gatekeeper:
    """Reconciles one gateway with one database."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        gateway: Gateway,
        backend: str,
        idle_minutes: int,
        open_reader: Callable[[], sqlite_utils.Database] | None = None,
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.backend = backend
        self.idle_minutes = idle_minutes
        # The background full check reads through its own connection.
        self.open_reader = open_reader
        self.wanted: dict[ClientKey, Wanted] = {}
        self.believed: dict[ClientKey, ClientState] = {}
        self.event_id = 0  # outbox cursor: session events up to here are in ``wanted``
        self.synced = False  # False until the first full check has run
        self.last_bytes: dict[ClientKey, int] = {}
        self.next_deadline: datetime | None = None
        self.touched: set[ClientKey] = set()  # changed by quick passes since a snapshot began

    # -- reading -----------------------------------------------------------------------------
    def snapshot(self, db: sqlite_utils.Database | None = None) -> Snapshot:
        """Everything a full check needs to read; safe to run in a background thread."""
        reader = db or self.db
        reader.conn.execute("BEGIN")  # one read transaction: the sessions match the event id
        try:
            event_id = _last_event_id(reader)
            wanted = wanted_clients(reader)
        finally:
            reader.conn.execute("COMMIT")
        healthy = self.gateway.healthy()
        listing = self.gateway.listing() if healthy else None
        if listing is not None:
            self._note_activity(reader, listing, wanted)
        return Snapshot(
            event_id,
            wanted,
            healthy,
            listing,
            _differing(wanted, listing) if listing is not None else set(),
            min((w.deadline for w in wanted.values()), default=None),
        )

    def _session_changes(self) -> tuple[int, dict[ClientKey, Wanted], set[int]]:
        """Sessions started and revoked since the cursor: (new cursor, started, revoked ids)."""
        rows = self.db.conn.execute(
            "SELECT id, kind, payload FROM events WHERE id > ? AND kind IN (?, ?) ORDER BY id",
            (self.event_id, *SESSION_EVENTS),
        ).fetchall()
        cursor = max([self.event_id, *(row[0] for row in rows)])
        started_ids = [
            int(_payload(row[2])["session_id"]) for row in rows if row[1] == "session.started"
        ]
        revoked = {
            int(_payload(row[2])["session_id"]) for row in rows if row[1] == "session.revoked"
        }
        return cursor, self._live_sessions(started_ids), revoked

    def _live_sessions(self, session_ids: list[int]) -> dict[ClientKey, Wanted]:
        if not session_ids:
            return {}
        params: dict[str, Any] = {f"id{n}": session_id for n, session_id in enumerate(session_ids)}
        params["now"] = to_iso(utcnow())
        marks = ", ".join(f":{name}" for name in params if name != "now")
        rows = self.db.conn.execute(
            f"SELECT {_WANTED_COLUMNS} FROM sessions WHERE id IN ({marks}) "  # noqa: S608
            f"AND {_LIVE_WHERE} ORDER BY id",
            params,
        ).fetchall()
        return _wanted_from_rows(rows)

    # -- passes ------------------------------------------------------------------------------
    def reconcile(self, full: bool = False) -> ReconcileResult:
        """One pass, all in this thread: a full check if asked (or never done), else quick."""
        if full or not self.synced:
            return self.apply_snapshot(self.snapshot())
        return self.quick()

    def quick(self) -> ReconcileResult:
        """Follow the outbox and the deadlines; look at nothing else."""
        changed = self._catch_up()
        return self._converge(ReconcileResult(), full=False, keys=changed)

    def _catch_up(self) -> set[ClientKey]:
        """Apply session events after the cursor and due deadlines to ``wanted``; the keys hit."""
        cursor, started, revoked = self._session_changes()
        changed = set(started)
        if revoked:
            for key, wanted in list(self.wanted.items()):
                if wanted.session_id in revoked:
                    del self.wanted[key]
                    changed.add(key)
        self.wanted.update(started)
        self.event_id = cursor
        return changed | self._expire_due()

    def _expire_due(self) -> set[ClientKey]:
        """Sessions at their deadline: re-read them (the portal may have pushed idle out)."""
        if self.next_deadline is None or utcnow() < self.next_deadline:
            return set()
        now = utcnow()
        due = {w.session_id: key for key, w in self.wanted.items() if w.deadline <= now}
        if not due:
            return set()
        still_live = self._live_sessions(list(due))
        for key in due.values():
            self.wanted.pop(key, None)
        self.wanted.update(still_live)
        return set(due.values())

    def apply_snapshot(self, snap: Snapshot) -> ReconcileResult:
        """Bring a full check's reads into effect, then catch up with what happened since."""
        result = ReconcileResult()
        listing = snap.listing
        differing: set[ClientKey] | None = snap.differing
        if not snap.healthy or listing is None:
            if self.gateway.ensure([w.client for w in snap.wanted.values()]):
                result.drift_fixed += 1
            listing = self.gateway.listing()
            self.touched.clear()
            differing = None  # compare everything against the rebuilt gateway
        if self.synced:
            # Elements that changed behind our back (added or deleted by hand) are drift too;
            # keys the loop itself changed while the snapshot was read are not.
            changed_by_hand = (set(listing) ^ set(self.believed)) - self.touched
            result.drift_fixed += len(changed_by_hand)
        # The loop's own changes since the snapshot began are newer than the listing.
        merged = dict(listing)
        for key in self.touched:
            if key in self.believed:
                merged[key] = self.believed[key]
            else:
                merged.pop(key, None)
        touched = set(self.touched)
        self.touched.clear()
        self.believed = merged
        self.wanted = snap.wanted
        self.event_id = snap.event_id
        self.synced = True
        self.next_deadline = snap.next_deadline
        # Sessions started or revoked after the snapshot's read are in the outbox past its id,
        # and sessions may have reached their end while it was read.
        caught_up = self._catch_up()
        keys = None if differing is None else differing | touched | caught_up
        return self._converge(result, full=True, keys=keys)

    def _converge(
        self, result: ReconcileResult, full: bool, keys: set[ClientKey] | None = None
    ) -> ReconcileResult:
        """Apply the difference between ``wanted`` and ``believed`` in one gateway call.

        ``keys`` limits the comparison to clients a quick pass saw change; None compares all.
        """
        candidates = set(self.wanted) | set(self.believed) if keys is None else keys
        add = []
        remove = []
        for key in candidates:
            w = self.wanted.get(key)
            have = self.believed.get(key)
            if w is None:
                if have is not None:
                    remove.append(key)
            elif (
                have is None
                or abs((have.until - w.client.until).total_seconds()) > UNTIL_TOLERANCE_SECONDS
            ):
                add.append(w.client)
        add.sort()
        remove.sort()
        if add or remove:
            try:
                self.gateway.apply(add, remove)
            except GatewayError:
                self.synced = False  # the gateway is not what we thought: full check next
                raise
        for key in remove:
            self.believed.pop(key, None)
        for client in add:
            old = self.believed.get(client.key)
            self.believed[client.key] = ClientState(client.until, old.bytes if old else 0)
        self.touched.update(remove)
        self.touched.update(client.key for client in add)
        result.added = [client.key for client in add]
        result.removed = remove
        result.authorized = len(self.believed)
        if keys is None or add or remove:
            self.next_deadline = min((w.deadline for w in self.wanted.values()), default=None)
        self._record(result, full)
        if result.changed:
            log.info(
                "reconciled",
                extra={
                    "added": len(result.added),
                    "removed": len(result.removed),
                    "drift_fixed": result.drift_fixed,
                    "authorized": result.authorized,
                },
            )
        return result

    def _note_activity(
        self,
        db: sqlite_utils.Database,
        actual: dict[ClientKey, ClientState],
        wanted: dict[ClientKey, Wanted],
    ) -> None:
        """Clients whose counters moved since the last look are active: push their idle out.

        Only full checks read counters, one at a time, so ``last_bytes`` has a single writer.
        """
        for key, state in actual.items():
            before = self.last_bytes.get(key)
            if before is not None and state.bytes > before and key in wanted:
                w = wanted[key]
                sessions.refresh_idle(db, w.session_id, to_iso(w.idle_deadline), self.idle_minutes)
        self.last_bytes = {key: state.bytes for key, state in actual.items()}

    # -- status for `instore gatekeeper status` -----------------------------------------------
    def start(self) -> None:
        self.db.conn.execute(
            """INSERT INTO gatekeeper_status (id, backend, pid, started_at) VALUES (1, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET backend = excluded.backend, pid = excluded.pid,
                 started_at = excluded.started_at, last_error = NULL, last_error_at = NULL""",
            (self.backend, os.getpid(), to_iso(utcnow())),
        )

    def _record(self, result: ReconcileResult, full: bool) -> None:
        if not (full or result.changed):
            return  # a quick pass that changed nothing is not worth a write
        now = to_iso(utcnow())
        self.db.conn.execute(
            """UPDATE gatekeeper_status SET last_reconcile_at = ?,
                 last_full_check_at = CASE WHEN ? THEN ? ELSE last_full_check_at END,
                 authorized = ?, added_total = added_total + ?,
                 removed_total = removed_total + ?, drift_fixed_total = drift_fixed_total + ?
               WHERE id = 1""",
            (
                now,
                full,
                now,
                result.authorized,
                len(result.added),
                len(result.removed),
                result.drift_fixed,
            ),
        )

    def record_error(self, message: str) -> None:
        self.db.conn.execute(
            "UPDATE gatekeeper_status SET last_error = ?, last_error_at = ? WHERE id = 1",
            (message, to_iso(utcnow())),
        )

    # -- the loop --------------------------------------------------------------------------
    def run(
        self,
        listener: NudgeListener | None,
        full_every: float,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Quick passes on nudges, commits and deadlines; a full check every ``full_every`` s."""
        # While the full-check thread parses a big listing, the loop must get the GIL back fast
        # each time it gives it up (every SQLite step, every subprocess wait).
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        self.start()
        checker = _FullChecker(self)
        last_full = MONOTONIC_TIME()
        last_version = None
        backoff = 0.0
        while not should_stop():
            try:
                snap = checker.take()
                if not self.synced:
                    self.apply_snapshot(self.snapshot())
                    last_full = MONOTONIC_TIME()
                elif snap is not None:
                    self.apply_snapshot(snap)
                version = self.db.conn.execute("PRAGMA data_version").fetchone()[0]
                deadline_passed = self.next_deadline is not None and utcnow() >= self.next_deadline
                if version != last_version or deadline_passed:
                    self.quick()
                    last_version = version
                if MONOTONIC_TIME() - last_full >= full_every and checker.start():
                    last_full = MONOTONIC_TIME()
                backoff = 0.0
            except GatewayError as exc:
                log.error("reconcile failed", extra={"error": str(exc)})
                self.record_error(str(exc))
                self.synced = False
                backoff = min(MAX_BACKOFF_SECONDS, max(FIRST_BACKOFF_SECONDS, backoff * 2))
                time.sleep(backoff)
                continue
            if listener is not None:
                listener.wait(POLL_SECONDS)
            else:
                time.sleep(POLL_SECONDS)
        checker.join()


class _FullChecker:
    """Runs ``Gatekeeper.snapshot`` in a thread and hands the result back to the loop."""

    def __init__(self, keeper: Gatekeeper) -> None:
        self.keeper = keeper
        self.thread: threading.Thread | None = None
        self.result: Snapshot | None = None
        self.error: GatewayError | None = None

    def start(self) -> bool:
        """Begin a full check unless one is running; False if one still is."""
        if self.thread is not None or self.result is not None:
            return False
        self.keeper.touched.clear()
        if self.keeper.open_reader is None:
            # No second connection to read with: do it here (slower for a big store, still right).
            self.result = self.keeper.snapshot()
            return True
        self.thread = threading.Thread(target=self._work, name="full-check", daemon=True)
        self.thread.start()
        return True

    def _work(self) -> None:
        # A full check is bookkeeping; a sign-in waiting on the loop is a person. On Linux a
        # thread has its own nice value, so let the loop win the CPU on a small box.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FULL_CHECK_NICENESS)
        reader = self.keeper.open_reader() if self.keeper.open_reader else None
        try:
            self.result = self.keeper.snapshot(reader)
        except GatewayError as exc:
            self.error = exc
        finally:
            if reader is not None:
                reader.conn.close()

    def take(self) -> Snapshot | None:
        """The finished snapshot, once; raises the thread's GatewayError if it failed."""
        if self.thread is not None:
            if self.thread.is_alive():
                return None
            self.thread.join()
            self.thread = None
        error, self.error = self.error, None
        result, self.result = self.result, None
        if error is not None:
            raise error
        return result

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


def _payload(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def status(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The gatekeeper's last recorded status, or None if it never ran against this database."""
    rows = list(db.query("SELECT * FROM gatekeeper_status WHERE id = 1"))
    return rows[0] if rows else None
