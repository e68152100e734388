"""Live occupancy read from ``presence_state``, for other processes (the manager's live store).

The presence daemon's tracker owns ``presence_state`` and keeps it honest while it runs: a device
unseen for the zone-exit timeout loses its zone, one unseen for the store-exit timeout loses its
row. If the daemon stops (a crash, a radio unplugged), its last rows stay behind; a live view
that trusted them would show a full shop for ever. So every read here ignores rows older than the
longest a running tracker can leave them, and says "devices" (hashes or member refs), never MACs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from instore.clock import to_iso
from presence.track import STATE_FLUSH_S, STORE_EXIT_TIMEOUT_S, ZONE_EXIT_TIMEOUT_S

# A running tracker writes last_seen_at only every STATE_FLUSH_S, acts on timeouts from a 1 s
# tick and retries a locked database on the next one; a few seconds cover the tick and a retry.
STALE_SLACK_S = 5.0


def zone_stale_after(zone_exit_s: float = ZONE_EXIT_TIMEOUT_S) -> float:
    """Seconds after which a row's zone can no longer be true: the tracker would have moved it
    out of the zone ``zone_exit_s`` after its last sighting, which may be a flush old."""
    return zone_exit_s + STATE_FLUSH_S + STALE_SLACK_S


def store_stale_after(store_exit_s: float = STORE_EXIT_TIMEOUT_S) -> float:
    """Seconds after which a row is left behind by a tracker that is not running."""
    return store_exit_s + STATE_FLUSH_S + STALE_SLACK_S


@dataclass(frozen=True)
class LiveOccupancy:
    """Devices per zone id (zones with nobody are absent) and in the whole shop."""

    zones: dict[int, int]
    in_store: int


@dataclass(frozen=True)
class PresentMember:
    """A member in the shop now who lets the store use where they are."""

    member_id: int
    display_name: str
    zone_id: int | None
    zone_name: str | None
    since: str  # UTC ISO: when they entered their current zone (or the shop)
    last_seen_at: str


def live_occupancy(
    db: sqlite_utils.Database,
    now: datetime,
    zone_exit_s: float = ZONE_EXIT_TIMEOUT_S,
    store_exit_s: float = STORE_EXIT_TIMEOUT_S,
) -> LiveOccupancy:
    """How many devices each zone holds now, leaving out rows a running tracker would not keep.

    Two small aggregate queries over one row per device in the shop (hundreds to a few thousand):
    no index needed, and ISO text compares as time.
    """
    zone_since = to_iso(now - timedelta(seconds=zone_stale_after(zone_exit_s)))
    store_since = to_iso(now - timedelta(seconds=store_stale_after(store_exit_s)))
    zones = {
        int(zone_id): int(count)
        for zone_id, count in db.conn.execute(
            """SELECT zone_id, COUNT(*) FROM presence_state
               WHERE zone_id IS NOT NULL AND last_seen_at >= ? GROUP BY zone_id""",
            (zone_since,),
        )
    }
    in_store = db.conn.execute(
        "SELECT COUNT(*) FROM presence_state WHERE last_seen_at >= ?", (store_since,)
    ).fetchone()[0]
    return LiveOccupancy(zones, int(in_store))


def present_members_with_location_consent(
    db: sqlite_utils.Database,
    now: datetime,
    zone_exit_s: float = ZONE_EXIT_TIMEOUT_S,
    store_exit_s: float = STORE_EXIT_TIMEOUT_S,
) -> list[PresentMember]:
    """Members in the shop whose latest ``location`` consent is a yes, newest arrival first.

    One query: the latest consent row per member comes from the ``consents_member`` index
    (member_id, kind, id), so a withdrawal (a newer "no" row) hides the member at once. A member
    with several devices is shown once, where their most recently heard device is.
    """
    zone_since = to_iso(now - timedelta(seconds=zone_stale_after(zone_exit_s)))
    store_since = to_iso(now - timedelta(seconds=store_stale_after(store_exit_s)))
    rows = db.conn.execute(
        """WITH present AS (
             SELECT p.member_id, p.zone_id, p.entered_at, p.last_seen_at,
                    ROW_NUMBER() OVER (
                      PARTITION BY p.member_id ORDER BY p.last_seen_at DESC, p.device
                    ) AS newest
             FROM presence_state p
             WHERE p.member_id IS NOT NULL AND p.last_seen_at >= :store_since
           )
           SELECT m.id, m.display_name,
                  CASE WHEN p.last_seen_at >= :zone_since THEN z.id END,
                  CASE WHEN p.last_seen_at >= :zone_since THEN z.name END,
                  p.entered_at, p.last_seen_at
           FROM present p
           JOIN members m ON m.id = p.member_id
           JOIN consents c ON c.id = (
             SELECT MAX(id) FROM consents WHERE member_id = p.member_id AND kind = 'location')
           LEFT JOIN zones z ON z.id = p.zone_id
           WHERE p.newest = 1 AND c.granted = 1
           ORDER BY p.entered_at DESC, m.id""",
        {"store_since": store_since, "zone_since": zone_since},
    ).fetchall()
    return [PresentMember(*row) for row in rows]
