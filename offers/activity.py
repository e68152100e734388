"""What the offers engine did lately, for the manager's live store: who was sent what, and why
the others were not.

Read straight from the engine's own records, ``notifications`` (what went to a phone) and
``decisions`` (every evaluation with its outcome and reason sentence), so the console can never
tell a different story from the one the engine acted on. Both lists read newest first by rowid,
which SQLite walks backwards and stops after ``limit`` rows: cheap however long the log is.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

# A live view shows the last few minutes of a busy shop; a longer history is the analytics page's.
RECENT_LIMIT = 20


@dataclass(frozen=True)
class SentNotification:
    """One notification that went out: an offer or a friend note, and whether it was opened."""

    id: int
    ts: str
    kind: str  # "offer" or "friend"
    member_name: str
    title: str
    opened: bool


@dataclass(frozen=True)
class Refusal:
    """One evaluation that sent nothing, with the engine's reason."""

    id: int
    ts: str
    member_name: str
    kind: str  # "offer" or "friend"
    subject: str  # the offer's name, or the friend the note would have been about
    outcome: str  # one of offers.migrations.DECISION_OUTCOMES / FRIEND_OUTCOMES, never "sent"
    reason: str


def recent_notifications_sent(
    db: sqlite_utils.Database, limit: int = RECENT_LIMIT
) -> list[SentNotification]:
    """The latest notifications of any member, newest first."""
    rows = db.conn.execute(
        """SELECT n.id, n.ts, n.kind, m.display_name, n.title, n.opened_at IS NOT NULL
           FROM notifications n JOIN members m ON m.id = n.member_id
           ORDER BY n.id DESC LIMIT ?""",
        (limit,),
    ).fetchall()
    return [
        SentNotification(id_, ts, kind, name, title, bool(opened))
        for id_, ts, kind, name, title, opened in rows
    ]


def recent_refusals(db: sqlite_utils.Database, limit: int = RECENT_LIMIT) -> list[Refusal]:
    """The latest decisions that did not send, newest first, with their outcome and reason.

    An offer deleted since keeps no name (its decisions go with it, ON DELETE CASCADE), so every
    row here names a real offer or member.
    """
    rows = db.conn.execute(
        """SELECT d.id, d.ts, m.display_name,
                  CASE WHEN d.offer_id IS NOT NULL THEN 'offer' ELSE 'friend' END,
                  COALESCE(o.name, f.display_name, ''), d.outcome, d.reason
           FROM decisions d
           JOIN members m ON m.id = d.member_id
           LEFT JOIN offers o ON o.id = d.offer_id
           LEFT JOIN members f ON f.id = d.friend_id
           WHERE d.outcome != 'sent'
           ORDER BY d.id DESC LIMIT ?""",
        (limit,),
    ).fetchall()
    return [Refusal(*row) for row in rows]
