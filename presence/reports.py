"""Read models for the console's analytics: footfall per hour and day, dwell time per zone.

Footfall comes from the ``footfall`` table the presence daemon writes once an hour: distinct
*devices* heard, estimated from probe-request fingerprints so a phone rotating its MAC counts once,
with the raw address count beside it to show the difference.

Dwell comes from zone_enter/zone_exit pairs in the events outbox. Months of those are millions of
rows, so they are rolled up once into ``zone_dwell_hourly`` (visits per zone, dwell bucket and UTC
hour of the exit) by ``catch_up_dwell``, an outbox consumer with its own cursor. Past events never
change, so the rollup only ever adds the events after its cursor; the analytics page runs it before
reading, which costs milliseconds when someone looked recently.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import sqlite_utils

from instore import events
from instore.clock import from_iso, to_iso
from instore.db import transaction
from instore.periods import LocalPeriod
from presence.track import ZONE_ENTER, ZONE_EXIT

# Dwell histogram edges in seconds: under 1 min is walking through, 1-3 a glance, 3-10 browsing,
# 10-30 trying things on, 30+ a long stay (or a member of staff). Changing them needs the rollup
# rebuilt (empty zone_dwell_hourly and zone_dwell_open, drop the cursor row DWELL_CONSUMER).
DWELL_BUCKET_EDGES_S: tuple[int, ...] = (60, 180, 600, 1800)
DWELL_BUCKET_LABELS: tuple[str, ...] = ("<1 min", "1–3 min", "3–10 min", "10–30 min", "30+ min")
# zone_dwell_hourly has one column per bucket (five rows in one, five times fewer to sum).
_BUCKET_COLUMNS = tuple(f"bucket_{n}" for n in range(len(DWELL_BUCKET_LABELS)))
assert len(DWELL_BUCKET_EDGES_S) + 1 == len(DWELL_BUCKET_LABELS) == 5, "see presence migration 6"
# The outbox consumer name of the rollup, in the `cursors` table.
DWELL_CONSUMER = "presence.reports.dwell"
# Events read per rollup transaction: bounds memory and how long the write lock is held
# (~50 ms of JSON parsing); a quarter's backlog then takes a few hundred short transactions.
CATCH_UP_BATCH = 20_000
# A zone_enter still unanswered this long after the newest event is a lost exit (the daemon was
# killed), not a shopper still in the zone: forgotten, so the open table stays small.
OPEN_ENTER_MAX_AGE = timedelta(hours=12)


@dataclass(frozen=True)
class HourFootfall:
    """One hour's footfall: ``start`` is its local start, e.g. ``2024-05-03 14:00``."""

    start: str
    devices: int
    addresses: int


@dataclass(frozen=True)
class DayFootfall:
    day: date
    devices: int  # the day's hourly device counts summed: someone there across an hour counts twice
    addresses: int


@dataclass(frozen=True)
class ZoneDwell:
    """How many visits to a zone fell in each dwell bucket (``DWELL_BUCKET_LABELS`` order)."""

    zone_id: int
    zone_name: str | None  # None when the zone has been deleted since
    visits: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.visits)


def footfall_hours(db: sqlite_utils.Database, period: LocalPeriod) -> list[HourFootfall]:
    """Every recorded hour of the period, oldest first, labelled in store-local time."""
    zone = period.zone
    rows = db.conn.execute(
        "SELECT hour, devices, addresses FROM footfall WHERE hour >= ? AND hour < ? ORDER BY hour",
        period.bounds(),
    ).fetchall()
    hours = []
    for hour, devices, addresses in rows:
        local = zone.fromutc(from_iso(hour).replace(tzinfo=zone)).replace(tzinfo=None)
        hours.append(HourFootfall(local.isoformat(" ", "minutes"), devices, addresses))
    return hours


def footfall_by_day(hours: Sequence[HourFootfall], period: LocalPeriod) -> list[DayFootfall]:
    """Each day of the period (days without data as 0) from ``footfall_hours``.

    Footfall is counted per hour; distinct devices per day cannot be rebuilt from hourly counts,
    so a day is the sum of its hours, which counts a shopper who stays across an hour mark in both.
    """
    devices: Counter[str] = Counter()
    addresses: Counter[str] = Counter()
    for hour in hours:
        devices[hour.start[:10]] += hour.devices
        addresses[hour.start[:10]] += hour.addresses
    return [
        DayFootfall(day, devices[day.isoformat()], addresses[day.isoformat()])
        for day in period.days
    ]


def footfall_by_hour_of_day(
    hours: Sequence[HourFootfall], period: LocalPeriod
) -> list[tuple[int, float]]:
    """(local hour 0-23, average devices in that hour over every day of the period)."""
    totals: Counter[int] = Counter()
    for hour in hours:
        totals[int(hour.start[11:13])] += hour.devices
    days = len(period.days)
    return [(hour, totals[hour] / days) for hour in range(24)]


def dwell_bucket(seconds: float) -> int:
    """The index of the dwell bucket ``seconds`` falls in."""
    for index, edge in enumerate(DWELL_BUCKET_EDGES_S):
        if seconds < edge:
            return index
    return len(DWELL_BUCKET_EDGES_S)


def dwell_by_zone(db: sqlite_utils.Database, period: LocalPeriod) -> list[ZoneDwell]:
    """Visits per dwell bucket for each zone, counting the visits that ended in the period.

    Every current zone is listed (with zeros if nobody went there), then deleted zones that still
    have visits. Rollup hours are UTC hours, so in a time zone with a half-hour offset the period
    starts and ends on the UTC hour that holds local midnight. Run ``catch_up_dwell`` first.
    """
    counts: dict[int, list[int]] = {}
    zones = db.conn.execute("SELECT id, name FROM zones ORDER BY name COLLATE NOCASE").fetchall()
    names = {zone_id: name for zone_id, name in zones}
    for zone_id, _ in zones:
        counts[zone_id] = [0] * len(DWELL_BUCKET_LABELS)
    sums = ", ".join(f"SUM({column})" for column in _BUCKET_COLUMNS)
    rows = db.conn.execute(
        f"""SELECT zone_id, {sums} FROM zone_dwell_hourly
            WHERE hour >= ? AND hour < ? GROUP BY zone_id ORDER BY zone_id""",  # noqa: S608
        period.bounds(),
    ).fetchall()
    for zone_id, *visits in rows:
        row = counts.setdefault(zone_id, [0] * len(DWELL_BUCKET_LABELS))
        for bucket, count in enumerate(visits):
            row[bucket] += int(count)
    return [ZoneDwell(zone_id, names.get(zone_id), tuple(row)) for zone_id, row in counts.items()]


def catch_up_dwell(
    db: sqlite_utils.Database, batch: int = CATCH_UP_BATCH, max_batches: int | None = None
) -> int:
    """Roll the zone events after the cursor into ``zone_dwell_hourly``; returns how many.

    Each batch, its open enters and its cursor advance are one write transaction (BEGIN
    IMMEDIATE), and the cursor is read inside it, so two page views catching up at once take
    turns instead of counting the same events twice. ``max_batches`` bounds one call, for the
    presence daemon, which keeps the rollup current in the background and must not stall.
    """
    handled = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        with transaction(db):
            rows = db.conn.execute(
                "SELECT id, kind, payload FROM events WHERE id > ? AND kind IN (?, ?)"
                " ORDER BY id LIMIT ?",
                (events.cursor_position(db, DWELL_CONSUMER), ZONE_ENTER, ZONE_EXIT, batch),
            ).fetchall()
            if not rows:
                return handled
            _roll_up(db, rows)
            events.advance(db, DWELL_CONSUMER, rows[-1][0])
        handled += len(rows)
        if len(rows) < batch:
            return handled
    return handled


def _roll_up(db: sqlite_utils.Database, rows: list[tuple[int, str, str]]) -> None:
    """Pair each zone_exit with its device's zone_enter and count the dwell by exit hour."""
    conn = db.conn
    open_enters: dict[tuple[str, int], str] = {
        (device, zone_id): entered
        for device, zone_id, entered in conn.execute(
            "SELECT device, zone_id, entered_at FROM zone_dwell_open"
        )
    }
    counts: dict[tuple[str, int], list[int]] = {}
    newest = ""
    for _, kind, payload in rows:
        try:
            data = json.loads(payload)
            device, zone_id, ts = str(data["device"]), int(data["zone_id"]), str(data["ts"])
            moment = from_iso(ts)
        except (ValueError, KeyError, TypeError):
            continue  # not an event presence.track wrote: nothing to pair
        newest = max(newest, ts)
        if kind == ZONE_ENTER:
            open_enters[(device, zone_id)] = ts
            continue
        entered = open_enters.pop((device, zone_id), None)
        if entered is None:
            continue  # its enter came before the rollup started, or was lost
        seconds = (moment - from_iso(entered)).total_seconds()
        if seconds >= 0:
            row = counts.setdefault((ts[:13] + ":00:00Z", zone_id), [0] * len(_BUCKET_COLUMNS))
            row[dwell_bucket(seconds)] += 1
    if newest:
        oldest_kept = to_iso(from_iso(newest) - OPEN_ENTER_MAX_AGE)
        open_enters = {key: ts for key, ts in open_enters.items() if ts >= oldest_kept}
    conn.execute("DELETE FROM zone_dwell_open")
    conn.executemany(
        "INSERT INTO zone_dwell_open (device, zone_id, entered_at) VALUES (?, ?, ?)",
        [(device, zone_id, ts) for (device, zone_id), ts in open_enters.items()],
    )
    columns = ", ".join(_BUCKET_COLUMNS)
    marks = ", ".join("?" for _ in _BUCKET_COLUMNS)
    adds = ", ".join(f"{column} = {column} + excluded.{column}" for column in _BUCKET_COLUMNS)
    conn.executemany(
        f"""INSERT INTO zone_dwell_hourly (hour, zone_id, {columns}) VALUES (?, ?, {marks})
            ON CONFLICT (hour, zone_id) DO UPDATE SET {adds}""",  # noqa: S608
        [(hour, zone_id, *row) for (hour, zone_id), row in counts.items()],
    )
