"""The demo's "walk my phone to zone…": requests from the portal, taken by the simulator.

The portal and the presence daemon share nothing but the database, so the control is a table,
``sim_walks``: the portal appends (member, zone); the ``sim`` source looks for pending rows about
once a second, marks them taken, and walks every phone linked to that member to the zone. The
tracker then sees the phone arrive like any other, so the member's zone_enter and zone_dwell —
and whatever offers and friend notes they trigger — are the real pipeline's, not a shortcut.

Only the demo writes here (``[portal] demo_controls``); a box with real radios never has rows.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from instore.clock import from_iso, to_iso, utcnow
from instore.db import transaction
from presence.zones import get_zone

log = logging.getLogger(__name__)

# -- constants, each with its reason -----------------------------------------------------------
# How often the sim looks for requests: a walk across the shop takes tens of seconds, so a second
# more is unnoticeable, and an idle poll is one indexed read.
POLL_INTERVAL_S = 1.0
# A request not taken this long was made while no simulator ran; walking the phone when one
# starts, minutes later, would surprise whoever clicked. It is marked taken and skipped.
REQUEST_TTL_S = 300.0
# Taken requests are kept this long, so "what did the demo ask for" can be read back today.
KEEP_TAKEN_S = 86_400.0

# Outcomes recorded on taken rows.
TAKEN = "taken"
EXPIRED = "expired"
SUPERSEDED = "superseded"  # the same member asked again before the sim looked: the last wins


@dataclass(frozen=True, slots=True)
class WalkRequest:
    """One taken request: whose phones go where."""

    id: int
    member_id: int
    zone_id: int
    macs: tuple[str, ...]  # the member's linked MACs, the most recently seen first


def linked_macs(db: sqlite_utils.Database, member_id: int) -> tuple[str, ...]:
    """Every MAC linked to the member at portal sign-in, the most recently seen first."""
    rows = db.conn.execute(
        "SELECT mac FROM devices WHERE member_id = ? ORDER BY last_seen DESC, mac",
        (member_id,),
    )
    return tuple(mac for (mac,) in rows)


def request_walk(
    db: sqlite_utils.Database, member_id: int, zone_id: int, now: datetime | None = None
) -> int:
    """Ask the simulator to walk the member's phone to the zone; returns the request id.

    Raises ``presence.zones.InvalidZone`` when there is no such zone.
    """
    get_zone(db, zone_id)
    cursor = db.conn.execute(
        "INSERT INTO sim_walks (member_id, zone_id, requested_at) VALUES (?, ?, ?)",
        (member_id, zone_id, to_iso(now or utcnow())),
    )
    return int(cursor.lastrowid or 0)


def take_pending(db: sqlite_utils.Database, now: datetime | None = None) -> list[WalkRequest]:
    """Mark every pending request taken and return those still worth walking, oldest first.

    An idle call is one read on a partial index; the write transaction only happens when there is
    something to take, so polling every second does not contend with the tracker's writes.
    """
    if db.conn.execute("SELECT 1 FROM sim_walks WHERE taken_at IS NULL LIMIT 1").fetchone() is None:
        return []
    now = now or utcnow()
    oldest_fresh = now - timedelta(seconds=REQUEST_TTL_S)
    latest: dict[int, tuple[int, int]] = {}  # member → (request id, zone id)
    outcomes: list[tuple[str, str, int]] = []
    with transaction(db):
        rows = db.conn.execute(
            "SELECT id, member_id, zone_id, requested_at FROM sim_walks"
            " WHERE taken_at IS NULL ORDER BY id"
        ).fetchall()
        for request_id, member_id, zone_id, requested_at in rows:
            if from_iso(requested_at) < oldest_fresh:
                outcomes.append((EXPIRED, to_iso(now), request_id))
                continue
            if member_id in latest:
                outcomes.append((SUPERSEDED, to_iso(now), latest[member_id][0]))
            latest[member_id] = (request_id, zone_id)
        outcomes += [(TAKEN, to_iso(now), request_id) for request_id, _ in latest.values()]
        db.conn.executemany("UPDATE sim_walks SET outcome = ?, taken_at = ? WHERE id = ?", outcomes)
        db.conn.execute(
            "DELETE FROM sim_walks WHERE taken_at < ?",
            (to_iso(now - timedelta(seconds=KEEP_TAKEN_S)),),
        )
        taken = [
            WalkRequest(request_id, member_id, zone_id, linked_macs(db, member_id))
            for member_id, (request_id, zone_id) in latest.items()
        ]
    return sorted(taken, key=lambda request: request.id)


class WalkPoller:
    """``take_pending`` at most once per ``interval`` on a monotonic clock; never raises on a
    busy database (the next poll tries again), so the simulation keeps running regardless."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        interval: float = POLL_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.interval = interval
        self.clock = clock
        self._last_poll = float("-inf")

    def poll(self) -> list[WalkRequest]:
        """Requests taken now, or none if the last look was less than ``interval`` ago."""
        now = self.clock()
        if now - self._last_poll < self.interval:
            return []
        self._last_poll = now
        try:
            return take_pending(self.db)
        except sqlite3.OperationalError as exc:
            log.warning("demo walk requests not read, will retry", extra={"error": str(exc)})
            return []
