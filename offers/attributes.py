"""What the engine knows about a member when it decides: the attributes audiences are written in.

Visits are the member's ``store_enter`` events, one ``visits`` row each, recorded by the worker
before it decides anything else for that event. "New" means this is the member's first visit;
``days_since_last_visit`` is measured from the visit before the current one, so on arrival it says
how long they were away (null for a first visit, which is what ``is_new`` tests).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from instore.clock import from_iso, to_iso
from instore.members import current_consents
from offers.audience import AUDIENCE_CONSENTS

# A member counts as "in a visit" this long after their store_enter: the presence daemon ends a
# visit after store_exit_seconds of silence, and few shopping trips last longer than this. Only
# used to tell "the current visit" from "the previous one" for days_since_last_visit.
CURRENT_VISIT_HOURS = 12

_SECONDS_PER_DAY = 86_400


def record_visit(db: sqlite_utils.Database, member_id: int, event_id: int, ts: datetime) -> bool:
    """Record a member's arrival (a store_enter event) once; False when it was recorded before."""
    cursor = db.conn.execute(
        """INSERT INTO visits (member_id, event_id, ts)
           SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM members WHERE id = ?)
           ON CONFLICT(event_id) DO NOTHING""",
        (member_id, event_id, to_iso(ts), member_id),
    )
    return cursor.rowcount > 0


def visit_times(
    db: sqlite_utils.Database, member_id: int, since: datetime, until: datetime
) -> list[datetime]:
    """The member's arrivals in ``(since, until]``, oldest first (revisit triggers count them)."""
    rows = db.conn.execute(
        "SELECT ts FROM visits WHERE member_id = ? AND ts > ? AND ts <= ? ORDER BY ts",
        (member_id, to_iso(since), to_iso(until)),
    ).fetchall()
    return [from_iso(row[0]) for row in rows]


def member_attributes(db: sqlite_utils.Database, member_id: int, now: datetime) -> dict[str, Any]:
    """The member as an audience expression sees them (see ``offers.audience``).

    Unknown members get the attributes of a brand-new member with no consents, which no consent-
    needing offer reaches.
    """
    conn = db.conn
    row = conn.execute("SELECT tier FROM members WHERE id = ?", (member_id,)).fetchone()
    tier = row[0] if row else "member"
    interests = member_interests(db, member_id)
    visits, last = conn.execute(
        "SELECT COUNT(*), MAX(ts) FROM visits WHERE member_id = ? AND ts <= ?",
        (member_id, to_iso(now)),
    ).fetchone()
    previous: datetime | None = None
    if last is not None:
        last_at = from_iso(last)
        if now - last_at < timedelta(hours=CURRENT_VISIT_HOURS):
            # That is the visit in progress: the one before it says how long they were away.
            before = conn.execute(
                "SELECT MAX(ts) FROM visits WHERE member_id = ? AND ts < ?",
                (member_id, last),
            ).fetchone()[0]
            previous = None if before is None else from_iso(before)
        else:
            previous = last_at
    latest = current_consents(db, member_id)
    consents = {kind: bool(latest.get(kind, {}).get("granted")) for kind in AUDIENCE_CONSENTS}
    return {
        "tier": tier,
        "interests": interests,
        "visits": float(visits),
        "is_new": visits <= 1,
        "consents": consents,
        "days_since_last_visit": None
        if previous is None
        else round((now - previous).total_seconds() / _SECONDS_PER_DAY, 2),
    }


def member_interests(db: sqlite_utils.Database, member_id: int) -> tuple[str, ...]:
    """The member's stated interests (the personal price reads them)."""
    return tuple(
        r[0]
        for r in db.conn.execute(
            "SELECT interest FROM member_interests WHERE member_id = ? ORDER BY interest",
            (member_id,),
        )
    )


def preview_members(db: sqlite_utils.Database, limit: int) -> list[tuple[int, str, str]]:
    """(id, display name, tier) of shoppers to preview an offer for: those with interests first.

    The console's offer preview shows the personal price a real member would see; members who
    stated interests show the interest discount too, so they come first, newest first. Two
    index-ordered queries, not a sort of every member: a store has tens of thousands.
    """
    conn = db.conn
    chosen = [
        int(row[0])
        for row in conn.execute(
            """SELECT DISTINCT i.member_id FROM member_interests i
               JOIN members m ON m.id = i.member_id AND m.role = 'shopper'
               ORDER BY i.member_id DESC LIMIT ?""",
            (limit,),
        )
    ]
    if len(chosen) < limit:
        marks = ", ".join("?" for _ in chosen)
        chosen += [
            int(row[0])
            for row in conn.execute(
                f"""SELECT id FROM members WHERE role = 'shopper' AND id NOT IN ({marks})
                    ORDER BY id DESC LIMIT ?""",  # noqa: S608 - placeholders only
                (*chosen, limit - len(chosen)),
            )
        ]
    found = []
    for member_id in chosen:
        name, tier = conn.execute(
            "SELECT display_name, tier FROM members WHERE id = ?", (member_id,)
        ).fetchone()
        found.append((member_id, str(name), str(tier)))
    return found
