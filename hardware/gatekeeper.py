"""The gatekeeper: makes the gateway's authorized set equal the live sessions in the database.

Desired state is the ``sessions`` table; actual state is the gateway (nftables on a box). The loop
reconciles on a nudge from the portal, whenever another process commits to the database, when the
next session reaches its end, and with a full check against the gateway every few seconds. The full
check is what heals drift: a flushed table, a reboot, a crash half-way through a change. It also
reads per-client traffic counters, so a phone that is still using the network keeps its session
from idling out.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from hardware.gateway import Client, ClientKey, ClientState, Gateway, GatewayError
from instore import sessions
from instore.clock import from_iso, to_iso, utcnow
from instore.nudge import NudgeListener

log = logging.getLogger(__name__)

MONOTONIC_TIME = time.monotonic  # the seam tests patch
POLL_SECONDS = 0.25  # how often to look at the database's change counter between nudges
UNTIL_TOLERANCE = timedelta(seconds=5)  # element timeouts are whole seconds and tick down
ERROR_BACKOFF_SECONDS = 2.0  # after a failed change, wait before hammering nft again


@dataclass(frozen=True)
class Wanted:
    """One client the database says must be authorized."""

    session_id: int
    client: Client
    idle_deadline: datetime


@dataclass
class ReconcileResult:
    added: list[ClientKey] = field(default_factory=list)
    removed: list[ClientKey] = field(default_factory=list)
    drift_fixed: int = 0
    authorized: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.drift_fixed)


# Timestamps exactly as ``to_iso`` writes them: the only shape ``_from_stored`` parses itself.
_STORED_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", re.ASCII)


def _from_stored(text: str) -> datetime:
    """``from_iso``, about 30x faster for stored timestamps; the same result and the same errors.

    Every pass parses two timestamps per live session. With 10,000 sessions ``strptime`` took
    0.4 s of each pass, the bulk of a nudged sign-in's wait (bench/gatekeeper_reconcile.py).
    For text of exactly the stored shape, C-implemented ``fromisoformat`` returns the identical
    aware UTC datetime; anything else, and any value it rejects, goes through ``from_iso`` so
    results and error messages do not change.
    """
    if _STORED_ISO.fullmatch(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # out-of-range field: let from_iso raise its usual error
    return from_iso(text)


def wanted_clients(db: sqlite_utils.Database) -> dict[ClientKey, Wanted]:
    """Live sessions by (MAC, IP); the newest wins if the table ever holds two."""
    now = to_iso(utcnow())
    rows = db.conn.execute(
        """SELECT id, mac, ip, expires_at, idle_deadline FROM sessions
           WHERE revoked_at IS NULL AND expires_at > ? AND idle_deadline > ? ORDER BY id""",
        (now, now),
    ).fetchall()
    return {
        (mac, ip): Wanted(session_id, Client(mac, ip, _from_stored(expires)), _from_stored(idle))
        for session_id, mac, ip, expires, idle in rows
    }


class Gatekeeper:
    """Reconciles one gateway with one database."""

    def __init__(
        self, db: sqlite_utils.Database, gateway: Gateway, backend: str, idle_minutes: int
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.backend = backend
        self.idle_minutes = idle_minutes
        self.believed: dict[ClientKey, ClientState] | None = None  # None: ask the gateway
        self.last_bytes: dict[ClientKey, int] = {}
        self.next_deadline: datetime | None = None

    def reconcile(self, full: bool = False) -> ReconcileResult:
        """One pass. ``full`` re-reads the gateway itself (drift, counters); else trusts memory."""
        wanted = wanted_clients(self.db)
        result = ReconcileResult()
        clients = [w.client for w in wanted.values()]
        if full or self.believed is None:
            if self.gateway.ensure():
                result.drift_fixed += 1
            actual = self.gateway.listing()
            if self.believed is not None:
                # Elements that changed behind our back (added or deleted by hand) are drift too.
                result.drift_fixed += len(set(actual) ^ set(self.believed))
            self._note_activity(actual, wanted)
        else:
            actual = self.believed
        add = [
            c
            for c in clients
            if c.key not in actual or abs(actual[c.key].until - c.until) > UNTIL_TOLERANCE
        ]
        remove = [key for key in actual if key not in wanted]
        try:
            self.gateway.apply(add, remove)
        except GatewayError:
            self.believed = None  # the gateway is not what we thought: re-read it next time
            raise
        believed = {k: v for k, v in actual.items() if k not in remove}
        believed.update(
            {
                c.key: ClientState(c.until, actual.get(c.key, ClientState(c.until)).bytes)
                for c in add
            }
        )
        self.believed = believed
        result.added = [c.key for c in add]
        result.removed = remove
        result.authorized = len(believed)
        deadlines = [min(w.client.until, w.idle_deadline) for w in wanted.values()]
        self.next_deadline = min(deadlines) if deadlines else None
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
        self, actual: dict[ClientKey, ClientState], wanted: dict[ClientKey, Wanted]
    ) -> None:
        """Clients whose counters moved since the last look are active: push their idle out."""
        for key, state in actual.items():
            before = self.last_bytes.get(key)
            if before is not None and state.bytes > before and key in wanted:
                w = wanted[key]
                sessions.refresh_idle(
                    self.db, w.session_id, to_iso(w.idle_deadline), self.idle_minutes
                )
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
        """Reconcile until ``should_stop()``: on nudges, commits, deadlines and a timer."""
        self.start()
        last_full = -full_every
        last_version = None
        while not should_stop():
            now = MONOTONIC_TIME()
            full = now - last_full >= full_every
            version = self.db.conn.execute("PRAGMA data_version").fetchone()[0]
            deadline_passed = self.next_deadline is not None and utcnow() >= self.next_deadline
            if full or version != last_version or deadline_passed:
                try:
                    self.reconcile(full=full)
                    if full:
                        last_full = now
                except GatewayError as exc:
                    log.error("reconcile failed", extra={"error": str(exc)})
                    self.record_error(str(exc))
                    time.sleep(ERROR_BACKOFF_SECONDS)
                last_version = version
            wait = POLL_SECONDS
            if listener is not None:
                listener.wait(wait)
            else:
                time.sleep(wait)


def status(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The gatekeeper's last recorded status, or None if it never ran against this database."""
    rows = list(db.query("SELECT * FROM gatekeeper_status WHERE id = 1"))
    return rows[0] if rows else None
