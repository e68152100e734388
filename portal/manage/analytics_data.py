"""The analytics page's date range and figures: each a table of numbers and the chart drawn from it.

The same ``Figure`` feeds the chart, its accessible table and its CSV export, so the three cannot
disagree. The reports themselves are read models of the packages that own the tables
(``presence.reports``, ``offers.reports``, ``offers.attribution``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils
from flask_babel import gettext as _

from instore.clock import utcnow
from instore.periods import LocalPeriod
from offers import reports as offer_reports
from offers.attribution import Lift, all_lifts
from portal.manage.charts import Chart, bar_chart
from presence import reports as presence_reports

# Without a range the page shows the last week: a full cycle of weekdays and weekend.
DEFAULT_DAYS = 7
# The longest range: a quarter (92 days covers any three calendar months). Longer ranges would
# make the page slower than its 200 ms budget and the daily bars thinner than a pixel.
MAX_RANGE_DAYS = 92
# Nothing before this can have been recorded by the box; it also keeps date arithmetic in range.
EARLIEST_DAY = date(2000, 1, 1)
# Holdout lift reads every member of every offer's experiment (hundreds of milliseconds after a
# quarter); over a week-long attribution window it barely moves in minutes, so each process
# reuses its last answer this long.
LIFT_CACHE_SECONDS = 600.0


class RangeError(ValueError):
    """A date range a manager typed that cannot be shown; ``errors`` maps field to sentence."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


def today_in(timezone: str) -> date:
    """The store's date now."""
    return utcnow().astimezone(ZoneInfo(timezone)).date()


def parse_range(args: Mapping[str, str], timezone: str) -> LocalPeriod:
    """The period from ``from``/``to`` (YYYY-MM-DD, store-local); the last week without them.

    Raises ``RangeError`` with a sentence per field for a date that is not one, a range that ends
    before it starts, ends in the future or is longer than ``MAX_RANGE_DAYS``.
    """
    today = today_in(timezone)
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for name in ("from", "to"):
        text = (args.get(name) or "").strip()
        days[name] = None
        if not text:
            continue
        try:
            days[name] = date.fromisoformat(text)
        except ValueError:
            errors[name] = _("“%(text)s” is not a date; use the form YYYY-MM-DD.", text=text[:40])
            continue
        if days[name] < EARLIEST_DAY:  # type: ignore[operator]
            errors[name] = _("Pick a day in %(year)s or later.", year=EARLIEST_DAY.year)
    if errors:
        raise RangeError(errors)
    last = days["to"] or today
    first = days["from"] or last - timedelta(days=DEFAULT_DAYS - 1)
    if last > today:
        errors["to"] = _(
            "The range ends in the future; pick today (%(today)s) or earlier.",
            today=today.isoformat(),
        )
    elif first > last:
        errors["to"] = _("The range ends before it starts; pick an end on or after the start.")
    elif (last - first).days + 1 > MAX_RANGE_DAYS:
        errors["from"] = _(
            "The range is %(days)s days long; pick at most %(max)s days.",
            days=(last - first).days + 1,
            max=MAX_RANGE_DAYS,
        )
    if errors:
        raise RangeError(errors)
    return LocalPeriod(first, last, timezone)


@dataclass(frozen=True)
class Figure:
    """One chart's numbers: ``headers`` and ``rows`` are its table and its CSV."""

    slug: str
    title: str
    hint: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    chart: Chart
    lifts: tuple[Lift, ...] = field(default=())


@dataclass(frozen=True)
class Context:
    """What every figure is built from."""

    db: sqlite_utils.Database
    period: LocalPeriod
    now: datetime
    offers_config: Mapping[str, Any]

    @cached_property
    def footfall_hours(self) -> list[presence_reports.HourFootfall]:
        """Read once for both footfall figures of a page."""
        return presence_reports.footfall_hours(self.db, self.period)


def _footfall_days(ctx: Context) -> Figure:
    hours = ctx.footfall_hours
    days = presence_reports.footfall_by_day(hours, ctx.period)
    rows = tuple((d.day.isoformat(), d.devices, d.addresses) for d in days)
    return Figure(
        "footfall-days",
        _("Footfall per day"),
        _(
            "Phones heard in the store, counted per hour and added up: a phone there across an "
            "hour mark counts in both hours. Addresses are raw MACs, which phones rotate."
        ),
        (_("Day"), _("Devices"), _("MAC addresses")),
        rows,
        bar_chart([r[0][5:] for r in rows], [(_("Devices"), [r[1] for r in rows])]),
    )


def _footfall_hours(ctx: Context) -> Figure:
    hours = ctx.footfall_hours
    profile = presence_reports.footfall_by_hour_of_day(hours, ctx.period)
    rows = tuple((f"{hour:02d}:00", round(average, 1)) for hour, average in profile)
    return Figure(
        "footfall-hours",
        _("Footfall per hour of the day"),
        _("Devices heard in each hour, averaged over the days of the range (store time)."),
        (_("Hour"), _("Devices (average)")),
        rows,
        bar_chart([r[0][:2] for r in rows], [(_("Devices"), [r[1] for r in rows])]),
    )


def _dwell(ctx: Context) -> Figure:
    presence_reports.catch_up_dwell(ctx.db)
    zones = presence_reports.dwell_by_zone(ctx.db, ctx.period)
    labels = dwell_labels()
    rows = tuple(
        (zone.zone_name or _("Deleted zone %(id)s", id=zone.zone_id), *zone.visits, zone.total)
        for zone in zones
    )
    series = [(label, [zone.visits[n] for zone in zones]) for n, label in enumerate(labels)]
    return Figure(
        "dwell",
        _("Time spent per zone"),
        _("Zone visits that ended in the range, by how long the phone stayed in the zone."),
        (_("Zone"), *labels, _("Visits")),
        rows,
        bar_chart([str(row[0]) for row in rows], series, stacked=True),
    )


def dwell_labels() -> tuple[str, ...]:
    """presence.reports.DWELL_BUCKET_LABELS in the manager's language."""
    labels = (_("<1 min"), _("1–3 min"), _("3–10 min"), _("10–30 min"), _("30+ min"))
    assert len(labels) == len(presence_reports.DWELL_BUCKET_LABELS), "a dwell bucket changed"
    return labels


def _funnel(ctx: Context) -> Figure:
    config = ctx.offers_config
    funnels = offer_reports.offer_funnels(
        ctx.db, ctx.period, ctx.now, int(config["code_valid_hours"])
    )
    rows = tuple(
        (
            f.title or _("Deleted offer %(id)s", id=f.offer_id),
            f.eligible,
            f.sent,
            f.opened,
            f.redeemed,
        )
        for f in funnels
    )
    stages = (_("Eligible"), _("Sent"), _("Opened"), _("Redeemed"))
    counts = [(f.eligible, f.sent, f.opened, f.redeemed) for f in funnels]
    series = [(stage, [row[n] for row in counts]) for n, stage in enumerate(stages)]
    lifts = cached_lifts(ctx.db, int(config["attribution_hours"]), ctx.now)
    return Figure(
        "funnel",
        _("Offer funnel"),
        _(
            "Evaluations in the range where the member was eligible (consented, in the offer's "
            "hours and audience), then sent, opened and redeemed."
        ),
        (_("Offer"), *stages),
        rows,
        bar_chart([str(row[0]) for row in rows], series),
        tuple(lift for lift in lifts if lift.offer_id in {f.offer_id for f in funnels}),
    )


def _friends(ctx: Context) -> Figure:
    days = offer_reports.friend_notes_by_day(ctx.db, ctx.period, ctx.now)
    rows = tuple((d.day.isoformat(), d.count) for d in days)
    return Figure(
        "friends",
        _("Friend notes sent"),
        _("“Your friend is in the store” notes sent each day."),
        (_("Day"), _("Notes")),
        rows,
        bar_chart([r[0][5:] for r in rows], [(_("Notes"), [r[1] for r in rows])]),
    )


def _members(ctx: Context) -> Figure:
    days = offer_reports.members_by_day(ctx.db, ctx.period, ctx.now)
    rows = tuple((d.day.isoformat(), d.new, d.returning) for d in days)
    return Figure(
        "members",
        _("New and returning members"),
        _("Members whose phone was seen in the store: new on their first recorded visit."),
        (_("Day"), _("New"), _("Returning")),
        rows,
        bar_chart(
            [r[0][5:] for r in rows],
            [(_("New"), [r[1] for r in rows]), (_("Returning"), [r[2] for r in rows])],
            stacked=True,
        ),
    )


# Page order; the keys are the CSV export names (/manage/analytics/export/<slug>.csv).
FIGURES: dict[str, Callable[[Context], Figure]] = {
    "footfall-days": _footfall_days,
    "footfall-hours": _footfall_hours,
    "dwell": _dwell,
    "funnel": _funnel,
    "friends": _friends,
    "members": _members,
}

_lift_cache: dict[tuple[str, int], tuple[float, list[Lift]]] = {}
_lift_lock = threading.Lock()


def cached_lifts(db: sqlite_utils.Database, window_hours: int, now: datetime) -> list[Lift]:
    """``all_lifts``, reused for ``LIFT_CACHE_SECONDS`` per database file and window."""
    key = (str(db.conn.execute("PRAGMA database_list").fetchone()[2]), window_hours)
    with _lift_lock:
        hit = _lift_cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < LIFT_CACHE_SECONDS:
            return hit[1]
    lifts = all_lifts(db, window_hours, now)
    with _lift_lock:
        _lift_cache[key] = (time.monotonic(), lifts)
    return lifts


def clear_lift_cache() -> None:
    """Forget cached lifts (tests that change the data between page views)."""
    with _lift_lock:
        _lift_cache.clear()
