"""Read models for the console's analytics: the offer funnel, friend notes, new vs returning.

All three count rows of tables the engine already writes (``decisions``, ``notifications``,
``redemptions``, ``visits``) for each store-local day of a ``LocalPeriod``. A quarter of a busy
store is hundreds of thousands of rows, too many to count on every page view, while a day's
figures stop changing soon after it ends; so each day's figures are kept in ``report_days`` once
they are settled, and a page view only counts the days that are not (today, and for the funnel
the days whose codes can still be opened or redeemed). Whether an offer made people *buy* is a
different question with its own method: ``offers.attribution``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlite_utils

from instore.db import transaction
from instore.periods import LocalPeriod

# Refusals that mean the offer was not for this member at that moment: no consent to be sent
# marketing (or to be located), outside the offer's dates or hours, or outside its audience.
# Every other outcome (sent, holdout, capped, cooldown, budget_spent, lower_priority) is an
# *eligible* evaluation that the offer's own limits, the control group or a better offer stopped.
NOT_ELIGIBLE_OUTCOMES: tuple[str, ...] = (
    "no_consent",
    "out_of_schedule",
    "quiet_hours",
    "not_in_audience",
)
_NOT_ELIGIBLE_SQL = ", ".join("?" for _ in NOT_ELIGIBLE_OUTCOMES)
# A day's rows can still arrive this long after it ends: the offers worker catching up on a
# backlog after a restart stamps its decisions when it makes them.
LATE_WRITES = timedelta(hours=1)
# report_days keys; bump the suffix when a report's figures change meaning, so old rows are unused.
FUNNEL_REPORT = "offer_funnel.v1"
FRIENDS_REPORT = "friend_notes.v1"
MEMBERS_REPORT = "members.v1"


@dataclass(frozen=True)
class OfferFunnel:
    """One offer's evaluations in a period, each stage a subset of the one before.

    - ``eligible``: decisions whose outcome is not in ``NOT_ELIGIBLE_OUTCOMES``.
    - ``sent``: decisions with outcome ``sent`` (each made one notification).
    - ``opened``: of those, notifications the member opened (``opened_at`` set), whenever.
    - ``redeemed``: of those notifications, the ones whose code a till redeemed, whenever.

    Stages count decisions made in the period, so a send on the last day still counts its
    opening the day after. A member's erasure deletes their decisions and notifications, so their
    part of the funnel goes with them unless the day was already settled and kept.
    """

    offer_id: int
    title: str | None  # None when the offer has been deleted since
    eligible: int
    sent: int
    opened: int
    redeemed: int


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int


@dataclass(frozen=True)
class DayMembers:
    """Members who visited on ``day``: ``new`` for their first recorded visit, else returning."""

    day: date
    new: int
    returning: int


def _per_day(
    db: sqlite_utils.Database,
    period: LocalPeriod,
    report: str,
    count_day: Callable[[sqlite_utils.Database, tuple[str, str]], Any],
    settled_before: datetime,
) -> dict[date, Any]:
    """Each day's figures: kept ones from ``report_days``; the rest counted, and kept if settled."""
    kept = {
        day: json.loads(figures)
        for day, figures in db.conn.execute(
            """SELECT day, figures FROM report_days
               WHERE report = ? AND timezone = ? AND day >= ? AND day <= ?""",
            (report, period.timezone, period.first_day.isoformat(), period.last_day.isoformat()),
        )
    }
    figures: dict[date, Any] = {}
    settled: list[tuple[str, str, str, str]] = []
    for one in period.single_days():
        key = one.first_day.isoformat()
        if key in kept:
            figures[one.first_day] = kept[key]
            continue
        figures[one.first_day] = count_day(db, one.bounds())
        if one.stop <= settled_before:
            settled.append((report, period.timezone, key, json.dumps(figures[one.first_day])))
    if settled:
        with transaction(db):
            db.conn.executemany(
                """INSERT INTO report_days (report, timezone, day, figures) VALUES (?, ?, ?, ?)
                   ON CONFLICT DO NOTHING""",
                settled,
            )
    return figures


def _funnel_day(db: sqlite_utils.Database, bounds: tuple[str, str]) -> dict[str, list[int]]:
    """{offer id: [eligible, sent, opened, redeemed]} for decisions in ``bounds``."""
    rows = db.conn.execute(
        f"""SELECT d.offer_id, SUM(d.outcome NOT IN ({_NOT_ELIGIBLE_SQL})),
                   SUM(d.outcome = 'sent'), COUNT(n.opened_at),
                   SUM(n.id IS NOT NULL AND EXISTS (
                       SELECT 1 FROM redemptions r WHERE r.notification_id = n.id))
            FROM decisions d INDEXED BY decisions_ts
            LEFT JOIN notifications n ON n.decision_id = d.id AND d.outcome = 'sent'
            WHERE d.ts >= ? AND d.ts < ? AND d.offer_id IS NOT NULL
            GROUP BY d.offer_id""",  # noqa: S608 - only "?" placeholders are formatted in
        (*NOT_ELIGIBLE_OUTCOMES, *bounds),
    )
    return {str(offer_id): [int(n or 0) for n in stages] for offer_id, *stages in rows}


def offer_funnels(
    db: sqlite_utils.Database, period: LocalPeriod, now: datetime, code_valid_hours: int
) -> list[OfferFunnel]:
    """Each offer evaluated in the period with its funnel (see ``OfferFunnel``), by offer id.

    A day is settled once every code sent that day has expired (``code_valid_hours``): after that
    no notification of it can be redeemed, and opening an expired offer is not a conversion.
    """
    settled_before = now - timedelta(hours=code_valid_hours) - LATE_WRITES
    totals: dict[int, list[int]] = {}
    for day in _per_day(db, period, FUNNEL_REPORT, _funnel_day, settled_before).values():
        for offer_id, stages in day.items():
            row = totals.setdefault(int(offer_id), [0, 0, 0, 0])
            for index, count in enumerate(stages):
                row[index] += count
    titles = dict(db.conn.execute("SELECT id, title FROM offers").fetchall())
    return [
        OfferFunnel(offer_id, titles.get(offer_id), *stages)
        for offer_id, stages in sorted(totals.items())
    ]


def _friend_day(db: sqlite_utils.Database, bounds: tuple[str, str]) -> int:
    row = db.conn.execute(
        "SELECT COUNT(*) FROM notifications WHERE kind = 'friend' AND ts >= ? AND ts < ?", bounds
    ).fetchone()
    return int(row[0])


def friend_notes_by_day(
    db: sqlite_utils.Database, period: LocalPeriod, now: datetime
) -> list[DayCount]:
    """Friend-in-store notes sent on each day of the period."""
    days = _per_day(db, period, FRIENDS_REPORT, _friend_day, now - LATE_WRITES)
    return [DayCount(day, int(count)) for day, count in days.items()]


def _members_day(db: sqlite_utils.Database, bounds: tuple[str, str]) -> list[int]:
    row = db.conn.execute(
        """SELECT COUNT(*), COALESCE(SUM(NOT EXISTS (
               SELECT 1 FROM visits f WHERE f.member_id = v.member_id AND f.ts < ?)), 0)
           FROM (SELECT DISTINCT member_id FROM visits WHERE ts >= ? AND ts < ?) v""",
        (bounds[0], *bounds),
    ).fetchone()
    visitors, new = int(row[0]), int(row[1])
    return [new, visitors - new]


def members_by_day(
    db: sqlite_utils.Database, period: LocalPeriod, now: datetime
) -> list[DayMembers]:
    """New and returning members on each day of the period, from ``visits`` (store arrivals).

    A member is *new* on the day of their first recorded visit and *returning* on every later day
    they visit; several arrivals on one day count once.
    """
    days = _per_day(db, period, MEMBERS_REPORT, _members_day, now - LATE_WRITES)
    return [DayMembers(day, new, returning) for day, (new, returning) in days.items()]
