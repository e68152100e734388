"""Per device: store and zone enter / dwell / exit events, and live occupancy per zone.

The tracker is fed identified sightings (``observe``) and the passage of time (``tick``); both
append to the events outbox, in the same transaction as the ``presence_state`` row they change,
so the manager's live view and the events never disagree.

Designed for thousands of devices in one process: one slotted record per device, no thread or
timer per device; ``tick`` walks them once a second for timeouts. All timing uses one monotonic
clock, ``MONOTONIC_TIME`` (a wall clock on a box without an RTC jumps at boot when NTP syncs), which
tests patch instead of sleeping. Wall-clock times in payloads come from the observations.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from instore import events
from instore.clock import from_iso, to_iso
from instore.db import transaction
from presence.estimate import DeviceEstimate, Estimator
from presence.observation import Observation
from presence.zones import FloorPlan

log = logging.getLogger(__name__)

MONOTONIC_TIME: Callable[[], float] = time.monotonic  # the seam tests patch to move time
WALL_TIME: Callable[[], float] = time.time  # only to carry presence_state across a restart

# -- constants, each with its reason -----------------------------------------------------------
# zone_dwell fires once after this long in a zone: longer than walking through an 8 m zone
# (~10 s plus the estimator's hold), short enough for an offer to reach someone still browsing.
DWELL_SECONDS = 30.0
# Unseen this long: zone_exit. Awake phones are heard every few seconds, an idle iPhone can go
# most of a minute between probe bursts.
ZONE_EXIT_TIMEOUT_S = 60.0
# Unseen this long: store_exit. Phones advertise and probe less often when idle (the screen off
# in a pocket), so the store-level timeout is longer than the zone's.
STORE_EXIT_TIMEOUT_S = 180.0
# A device must be seen this many times before it is tracked: a phone carried past the shop
# window is heard once or twice, a shopper who walks in many times.
MIN_SIGHTINGS_TO_TRACK = 3
# Readings closer together than this are one sighting: a WiFi probe burst is several frames
# within ~100 ms on each channel, heard by every sensor at once.
SIGHTING_DEBOUNCE_S = 1.0
# A device not yet tracked and unseen this long is forgotten; if it returns, it counts afresh.
CANDIDATE_FORGET_S = 120.0
# presence_state.last_seen_at is refreshed this often, not per reading: one write per radio frame
# would cost more than everything else here together.
STATE_FLUSH_S = 30.0
# Events kept in memory while the database refuses writes (locked past busy_timeout, disk full),
# retried with the next write; at ~10 events/s in a busy shop this is a quarter of an hour.
MAX_UNSENT_EVENTS = 10_000

ZONE_ENTER, ZONE_DWELL, ZONE_EXIT = "zone_enter", "zone_dwell", "zone_exit"
STORE_ENTER, STORE_EXIT = "store_enter", "store_exit"
EVENT_KINDS = (STORE_ENTER, ZONE_ENTER, ZONE_DWELL, ZONE_EXIT, STORE_EXIT)


@dataclass(frozen=True)
class TrackerSettings:
    """The tunables above, overridable from configuration."""

    dwell_seconds: float = DWELL_SECONDS
    zone_exit_timeout: float = ZONE_EXIT_TIMEOUT_S
    store_exit_timeout: float = STORE_EXIT_TIMEOUT_S
    min_sightings: int = MIN_SIGHTINGS_TO_TRACK
    sighting_debounce: float = SIGHTING_DEBOUNCE_S
    candidate_forget: float = CANDIDATE_FORGET_S
    state_flush: float = STATE_FLUSH_S


@dataclass(slots=True)
class DeviceTrack:
    """Everything remembered about one device: ~2 KB with six sensor filters (see the bench)."""

    device: str
    member_id: int | None
    estimate: DeviceEstimate
    last_seen: float  # monotonic
    last_seen_wall: float  # epoch seconds of the last observation, for payload timestamps
    last_counted: float
    sightings: int = 1
    tracked: bool = False
    zone_id: int | None = None
    zone_since: float = 0.0
    zone_since_wall: float = 0.0
    dwell_sent: bool = False
    seen_since_flush: bool = True


@dataclass(frozen=True)
class Occupancy:
    """How many tracked devices each zone holds now, and in the whole shop."""

    zones: dict[str, int] = field(default_factory=dict)
    in_store: int = 0


_Pending = list[tuple[str, DeviceTrack, int | None, float]]  # kind, track, zone id, epoch ts


class Tracker:
    """Feeds devices' sightings through the estimator and turns changes into outbox events."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        plan: FloorPlan,
        *,
        estimator: Estimator | None = None,
        settings: TrackerSettings | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.db = db
        self.plan = plan
        self.estimator = estimator or Estimator(plan)
        self.settings = settings or TrackerSettings()
        self._clock = clock
        self.devices: dict[str, DeviceTrack] = {}
        self._occupancy: dict[int | None, int] = {}
        self._unsent: _Pending = []
        self._last_flush = self.now()

    def now(self) -> float:
        # Looked up on every call so a test's patch of MONOTONIC_TIME takes effect.
        return self._clock() if self._clock is not None else MONOTONIC_TIME()

    def set_floorplan(self, plan: FloorPlan, estimator: Estimator | None = None) -> None:
        """Use an edited floor plan; filters of sensors that are gone are dropped."""
        self.plan = plan
        self.estimator = estimator or Estimator(plan)
        for track in self.devices.values():
            sensors = track.estimate.sensors
            for sensor_id in [s for s in sensors if s not in plan.sensors]:
                del sensors[sensor_id]

    # -- input -------------------------------------------------------------------------------

    def observe(self, obs: Observation, device: str, member_id: int | None = None) -> list[int]:
        """One identified sighting; returns the ids of the events it caused (usually none)."""
        now = self.now()
        track = self.devices.get(device)
        if track is None:
            track = DeviceTrack(device, member_id, DeviceEstimate(), now, obs.ts, now, sightings=0)
            self.devices[device] = track
        if not self.estimator.update(track.estimate, obs.sensor_id, obs.rssi, now):
            if track.sightings == 0:
                del self.devices[device]  # only ever heard from the street: keep nothing
            return []
        track.last_seen, track.last_seen_wall, track.seen_since_flush = now, obs.ts, True
        pending: _Pending = []
        if not track.tracked:
            if track.sightings == 0 or now - track.last_counted >= self.settings.sighting_debounce:
                track.sightings += 1
                track.last_counted = now
            if track.sightings < self.settings.min_sightings:
                return []
            track.tracked = True
            track.zone_since, track.zone_since_wall = now, obs.ts
            self._count(None, +1)
            pending.append((STORE_ENTER, track, None, obs.ts))
        # Until the estimator has settled, the device is in the shop but in no zone yet.
        zone_id = track.estimate.zone_id if track.estimate.placed else track.zone_id
        if zone_id != track.zone_id:
            if track.zone_id is not None:
                pending.append((ZONE_EXIT, track, track.zone_id, obs.ts))
            self._move(track, zone_id, now, obs.ts)
            if zone_id is not None:
                pending.append((ZONE_ENTER, track, zone_id, obs.ts))
        self._check_dwell(track, pending)
        return self._commit(pending)

    def tick(self, now: float | None = None) -> list[int]:
        """Unseen timeouts (zone and store exits); call about once a second. Returns event ids."""
        now = self.now() if now is None else now
        settings = self.settings
        pending: _Pending = []
        gone: list[str] = []
        for device, track in self.devices.items():
            unseen = now - track.last_seen
            if not track.tracked:
                if unseen >= settings.candidate_forget:
                    gone.append(device)
                continue
            if unseen >= settings.zone_exit_timeout and track.zone_id is not None:
                # Stamped with when it was last heard there, not when the timeout noticed.
                pending.append((ZONE_EXIT, track, track.zone_id, track.last_seen_wall))
                self._move(track, None, now, track.last_seen_wall)
            if unseen >= settings.store_exit_timeout:
                pending.append((STORE_EXIT, track, None, track.last_seen_wall))
                self._count(track.zone_id, -1)
                gone.append(device)
        for device in gone:
            del self.devices[device]
        ids = self._commit(pending, retry=True)
        if now - self._last_flush >= settings.state_flush:
            self.flush(now)
        return ids

    # -- state changes -----------------------------------------------------------------------

    def _count(self, zone_id: int | None, delta: int) -> None:
        self._occupancy[zone_id] = self._occupancy.get(zone_id, 0) + delta

    def _move(self, track: DeviceTrack, zone_id: int | None, now: float, wall: float) -> None:
        if track.tracked:
            self._count(track.zone_id, -1)
            self._count(zone_id, +1)
        track.zone_id, track.zone_since, track.zone_since_wall = zone_id, now, wall
        track.dwell_sent = False

    def _check_dwell(self, track: DeviceTrack, pending: _Pending) -> None:
        if (
            track.tracked
            and track.zone_id is not None
            and not track.dwell_sent
            and track.last_seen - track.zone_since >= self.settings.dwell_seconds
        ):
            # Counted from sightings, not from the clock: a phone that fell silent may have left,
            # so dwell is proven by being heard there after the threshold (stamped then).
            track.dwell_sent = True
            pending.append((ZONE_DWELL, track, track.zone_id, track.last_seen_wall))

    def _commit(self, pending: _Pending, retry: bool = False) -> list[int]:
        """Append the events and mirror each change in presence_state, in one transaction.

        If the database refuses, the events wait in memory (in-memory state has moved on, so
        dropping them would lose an enter or an exit for good) and only ``tick`` retries, so a
        locked database costs one busy timeout a second, not one per sighting.
        """
        if self._unsent and not retry:
            self._unsent = (self._unsent + pending)[-MAX_UNSENT_EVENTS:]
            return []
        pending, self._unsent = self._unsent + pending, []
        if not pending:
            return []
        ids: list[int] = []
        try:
            self._write(pending, ids)
        except sqlite3.OperationalError as exc:
            self._unsent = pending[-MAX_UNSENT_EVENTS:]
            log.warning(
                "presence events not written yet, will retry",
                extra={"error": str(exc), "waiting": len(self._unsent)},
            )
            return []
        return ids

    def _write(self, pending: _Pending, ids: list[int]) -> None:
        with transaction(self.db):
            for kind, track, zone_id, wall in pending:
                zone = self.plan.zones.get(zone_id) if zone_id is not None else None
                payload: dict[str, Any] = {
                    "device": track.device,
                    "member_id": track.member_id,
                    "zone": zone.name if zone else None,
                    "zone_id": zone_id,
                    "ts": to_iso(datetime.fromtimestamp(wall, UTC)),
                }
                ids.append(events.append(self.db, kind, payload))
                self._persist(kind, track)

    def _persist(self, kind: str, track: DeviceTrack) -> None:
        conn = self.db.conn
        if kind == STORE_EXIT:
            conn.execute("DELETE FROM presence_state WHERE device = ?", (track.device,))
            return
        # Sub-selects make a member or zone deleted meanwhile a NULL instead of a failed insert.
        conn.execute(
            """INSERT INTO presence_state
                 (device, member_id, zone_id, entered_at, last_seen_at, dwell_sent)
               VALUES (?, (SELECT id FROM members WHERE id = ?),
                       (SELECT id FROM zones WHERE id = ?), ?, ?, ?)
               ON CONFLICT(device) DO UPDATE SET
                 member_id = excluded.member_id, zone_id = excluded.zone_id,
                 entered_at = excluded.entered_at, last_seen_at = excluded.last_seen_at,
                 dwell_sent = excluded.dwell_sent""",
            (
                track.device,
                track.member_id,
                track.zone_id,
                to_iso(datetime.fromtimestamp(track.zone_since_wall, UTC)),
                to_iso(datetime.fromtimestamp(track.last_seen_wall, UTC)),
                int(track.dwell_sent),
            ),
        )

    def flush(self, now: float | None = None) -> int:
        """Write last_seen_at of devices heard since the last flush; return how many."""
        self._last_flush = self.now() if now is None else now
        heard = [t for t in self.devices.values() if t.tracked and t.seen_since_flush]
        rows = [(to_iso(datetime.fromtimestamp(t.last_seen_wall, UTC)), t.device) for t in heard]
        if not rows:
            return 0
        try:
            with transaction(self.db):
                self.db.conn.executemany(
                    "UPDATE presence_state SET last_seen_at = ? WHERE device = ?", rows
                )
        except sqlite3.OperationalError as exc:
            # Only freshness for the live view is lost; the next flush carries these too.
            log.warning("presence state not refreshed", extra={"error": str(exc)})
            return 0
        for track in heard:
            track.seen_since_flush = False
        return len(rows)

    def restore(self) -> int:
        """Pick up presence_state after a restart, so present shoppers are not entered twice and
        those who left meanwhile get their exits on the next ``tick``. Returns how many."""
        now, wall_now = self.now(), WALL_TIME()
        rows = self.db.conn.execute(
            "SELECT device, member_id, zone_id, entered_at, last_seen_at, dwell_sent"
            " FROM presence_state"
        ).fetchall()
        for device, member_id, zone_id, entered_at, last_seen_at, dwell_sent in rows:
            seen_wall = from_iso(last_seen_at).timestamp()
            entered_wall = from_iso(entered_at).timestamp()
            track = DeviceTrack(
                device,
                member_id,
                DeviceEstimate(),
                last_seen=now - max(0.0, wall_now - seen_wall),
                last_seen_wall=seen_wall,
                last_counted=now,
                sightings=self.settings.min_sightings,
                tracked=True,
                zone_id=zone_id,
                zone_since=now - max(0.0, wall_now - entered_wall),
                zone_since_wall=entered_wall,
                dwell_sent=bool(dwell_sent),
                seen_since_flush=False,
            )
            self.devices[device] = track
            self._count(zone_id, +1)
        return len(rows)

    # -- reading -----------------------------------------------------------------------------

    def occupancy(self) -> Occupancy:
        """Tracked devices per zone name (every zone listed, empty ones as 0) and in the shop."""
        zones = {
            zone.name: self._occupancy.get(zone_id, 0) for zone_id, zone in self.plan.zones.items()
        }
        return Occupancy(zones, sum(self._occupancy.values()))

    @property
    def tracked_count(self) -> int:
        return sum(self._occupancy.values())


def read_occupancy(db: sqlite_utils.Database) -> Occupancy:
    """The same figures from presence_state, for other processes (the manager's live view)."""
    zones = {
        name: count
        for name, count in db.conn.execute(
            """SELECT z.name, COUNT(p.device) FROM zones z
               LEFT JOIN presence_state p ON p.zone_id = z.id GROUP BY z.id ORDER BY z.id"""
        )
    }
    in_store = db.conn.execute("SELECT COUNT(*) FROM presence_state").fetchone()[0]
    return Occupancy(zones, int(in_store))
