"""Did an offer make people buy? Lift per offer, from the decision log, redemptions and purchases.

Method
------
An offer's holdout (``holdout_percent``, ``offers.experiments``) puts a sticky, hash-chosen share of
the members it was meant for into a control group: their decision is logged as ``holdout`` and
they are not sent the offer. The choice is a hash, not a judgment, so the two groups differ only
in the offer, and the difference in how often they buy the product is what the offer did.

- **Treated**: members with a ``sent`` decision for the offer. **Control**: members with a
  ``holdout`` decision and no ``sent`` one (a member in both, which only a changed
  ``holdout_percent`` can cause, saw the offer, so counts as treated).
- Each member's window starts at their first such decision (t0) and lasts ``window_hours``
  (``[offers] attribution_hours``): ``[t0, t0 + window)``. Nothing after ``now`` counts.
- A member **converts** when, within their window, they bought the offer's product: a loyalty
  purchase scanned at a till whose ``product`` is the offer's (ignoring ASCII case), or, for the
  treated, a redemption of the offer's code. A redemption *is* a purchase of the product; the
  control group has no code, so for them only the loyalty scan shows it. This compares like with
  like as long as tills scan the loyalty card with every member's purchase.
- Members whose window is still open are counted with what they did so far. Both groups are
  assigned at the same kind of moments, so both are cut short alike; ``pending`` says how many.
- ``rate`` = conversions / members. Absolute lift = treated rate - control rate (a difference of
  shares; x100 for percentage points). Relative lift = absolute lift / control rate (none when the
  control rate is 0: any buying at all would be "infinitely" better).
- The 95 % interval of the absolute lift is the normal (Wald) approximation for a difference of
  two proportions: ``d ± 1.96 * sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2)``. It is given only when
  both groups have at least ``MIN_GROUP_MEMBERS``; the ``note`` says why when they do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from instore.clock import to_iso

# Below this many members in a group, one member more or less moves its rate by over 3 points and
# the normal approximation behind the interval is unreliable (the textbook n >= 30 rule of thumb):
# the numbers are shown, but said to mean nothing yet.
MIN_GROUP_MEMBERS = 30
# The two-sided 95 % quantile of the normal distribution.
Z_95 = 1.96


class UnknownOffer(LookupError):
    """Lift was asked for an offer that does not exist."""


@dataclass(frozen=True)
class GroupResult:
    """One group of an offer's experiment: how many members, how many bought."""

    members: int
    conversions: int

    @property
    def rate(self) -> float | None:
        """The share that converted, 0 to 1; None for an empty group."""
        return self.conversions / self.members if self.members else None

    def to_json(self) -> dict[str, Any]:
        return {"members": self.members, "conversions": self.conversions, "rate": self.rate}


@dataclass(frozen=True)
class Lift:
    """An offer's treated and control groups over one attribution window, and what they mean."""

    offer_id: int
    offer_title: str
    product: str
    window_hours: int
    treated: GroupResult
    control: GroupResult
    pending: int  # members (both groups) whose window has not closed yet

    @property
    def absolute_lift(self) -> float | None:
        """Treated rate minus control rate; None when either group is empty."""
        if self.treated.rate is None or self.control.rate is None:
            return None
        return self.treated.rate - self.control.rate

    @property
    def relative_lift(self) -> float | None:
        """Absolute lift as a share of the control rate; None when that rate is 0 or unknown."""
        if self.absolute_lift is None or not self.control.rate:
            return None
        return self.absolute_lift / self.control.rate

    @property
    def enough_members(self) -> bool:
        """True when both groups are big enough for the numbers to say something."""
        return min(self.treated.members, self.control.members) >= MIN_GROUP_MEMBERS

    @property
    def interval95(self) -> tuple[float, float] | None:
        """The 95 % interval of the absolute lift (Wald); None with too few members."""
        lift = self.absolute_lift
        p1, p2 = self.treated.rate, self.control.rate
        if lift is None or p1 is None or p2 is None or not self.enough_members:
            return None
        error = math.sqrt(
            p1 * (1 - p1) / self.treated.members + p2 * (1 - p2) / self.control.members
        )
        return lift - Z_95 * error, lift + Z_95 * error

    @property
    def note(self) -> str:
        """Why the numbers cannot be trusted yet; "" when they can."""
        if self.control.members == 0:
            return (
                "no holdout group: with holdout_percent 0 every member gets the offer, so there "
                "is nothing to compare with"
            )
        if not self.enough_members:
            return (
                f"too few members to tell: {self.treated.members} sent, "
                f"{self.control.members} held out; each group needs at least "
                f"{MIN_GROUP_MEMBERS} before a difference in rates means anything"
            )
        return ""

    def to_json(self) -> dict[str, Any]:
        interval = self.interval95
        return {
            "offer": {"id": self.offer_id, "title": self.offer_title, "product": self.product},
            "window_hours": self.window_hours,
            "treated": self.treated.to_json(),
            "control": self.control.to_json(),
            "pending": self.pending,
            "absolute_lift": self.absolute_lift,
            "relative_lift": self.relative_lift,
            "interval95": None if interval is None else list(interval),
            "note": self.note,
        }


# One group's members (first decision t0, window end) and whether each converted. The control
# group leaves out anyone who was also sent the offer. Parameters are named; only the outcome
# and the control filter change between the groups, and both are fixed strings in ``_group``.
_GROUP_SQL = """
WITH firsts AS (
    SELECT member_id, MIN(ts) AS t0 FROM decisions
    WHERE offer_id = :offer AND outcome = '{outcome}' AND ts <= :now
    GROUP BY member_id
), grp AS (
    SELECT member_id, t0, strftime('%Y-%m-%dT%H:%M:%SZ', t0, :shift) AS t_end FROM firsts
    {control_filter}
)
SELECT
    COUNT(*),
    COALESCE(SUM(
        EXISTS (SELECT 1 FROM purchases p
                WHERE p.member_id = grp.member_id AND p.product = :product COLLATE NOCASE
                  AND p.ts >= grp.t0 AND p.ts < grp.t_end AND p.ts <= :now)
        OR (:with_redemptions AND EXISTS (
                SELECT 1 FROM redemptions r
                WHERE r.member_id = grp.member_id AND r.offer_id = :offer
                  AND r.ts >= grp.t0 AND r.ts < grp.t_end AND r.ts <= :now))
    ), 0),
    COALESCE(SUM(grp.t_end > :now), 0)
FROM grp
"""
_NOT_SENT = """WHERE member_id NOT IN (
        SELECT member_id FROM decisions
        WHERE offer_id = :offer AND outcome = 'sent' AND ts <= :now)"""


def _group(
    db: sqlite_utils.Database,
    offer_id: int,
    product: str,
    window_hours: int,
    now: datetime,
    *,
    treated: bool,
) -> tuple[GroupResult, int]:
    """One group's result and how many of its members' windows are still open."""
    # The outcome is written into the SQL (one of two fixed words) so SQLite can use the partial
    # index for that outcome, which a bound parameter would hide from its planner.
    query = _GROUP_SQL.format(
        outcome="sent" if treated else "holdout", control_filter="" if treated else _NOT_SENT
    )
    members, conversions, pending = db.conn.execute(
        query,
        {
            "offer": offer_id,
            "now": to_iso(now),
            "shift": f"+{int(window_hours)} hours",
            "product": product,
            "with_redemptions": int(treated),
        },
    ).fetchone()
    return GroupResult(int(members), int(conversions)), int(pending)


def offer_lift(db: sqlite_utils.Database, offer_id: int, window_hours: int, now: datetime) -> Lift:
    """The offer's treated and control groups as of ``now`` (method in the module docstring)."""
    row = db.conn.execute("SELECT title, product FROM offers WHERE id = ?", (offer_id,)).fetchone()
    if row is None:
        raise UnknownOffer(f"there is no offer with id {offer_id}")
    title, product = row
    treated, treated_pending = _group(db, offer_id, product, window_hours, now, treated=True)
    control, control_pending = _group(db, offer_id, product, window_hours, now, treated=False)
    return Lift(
        offer_id=offer_id,
        offer_title=title,
        product=product,
        window_hours=window_hours,
        treated=treated,
        control=control,
        pending=treated_pending + control_pending,
    )


def all_lifts(db: sqlite_utils.Database, window_hours: int, now: datetime) -> list[Lift]:
    """Lift for every offer that has been sent or held out from anyone by ``now``, by offer id."""
    rows = db.conn.execute(
        """SELECT DISTINCT offer_id FROM decisions
           WHERE offer_id IS NOT NULL AND outcome IN ('sent', 'holdout') AND ts <= ?
           ORDER BY offer_id""",
        (to_iso(now),),
    ).fetchall()
    return [offer_lift(db, int(row[0]), window_hours, now) for row in rows]
