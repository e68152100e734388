"""What the community's front page shows a member: new public boards, open polls, answered
suggestions — each already filtered for what that member may see.

Only visible items, and nothing by a member with a block between the two: the front page must not
become the one place a blocked member's boards still show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from instore.clock import to_iso

# How many of each the front page shows; each section links to its full list.
BOARDS_SHOWN = 6
POLLS_SHOWN = 3
SUGGESTIONS_SHOWN = 3

_NOT_BLOCKED = """NOT EXISTS (SELECT 1 FROM blocks
                    WHERE (blocker_id = :viewer AND blocked_id = {author})
                       OR (blocker_id = {author} AND blocked_id = :viewer))"""


@dataclass(frozen=True)
class BoardCard:
    id: int
    title: str
    owner_name: str
    items: int


@dataclass(frozen=True)
class PollCard:
    id: int
    question: str
    voted: bool


@dataclass(frozen=True)
class SuggestionCard:
    id: int
    body: str
    answer: str


def public_boards(db: sqlite_utils.Database, viewer_id: int) -> list[BoardCard]:
    """The newest public boards the viewer may see, their own included."""
    rows = db.conn.execute(
        f"""SELECT b.id, b.title, m.display_name,
                   (SELECT COUNT(*) FROM board_items i WHERE i.board_id = b.id)
            FROM boards b JOIN members m ON m.id = b.owner_id
            WHERE b.audience = 'public' AND b.status = 'visible'
              AND {_NOT_BLOCKED.format(author="b.owner_id")}
            ORDER BY b.id DESC LIMIT :limit""",  # noqa: S608 - fixed SQL
        {"viewer": viewer_id, "limit": BOARDS_SHOWN},
    ).fetchall()
    return [BoardCard(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


def open_polls(db: sqlite_utils.Database, viewer_id: int, now: datetime) -> list[PollCard]:
    """Polls still taking votes, newest first, and whether the viewer has voted."""
    rows = db.conn.execute(
        """SELECT p.id, p.question,
                  EXISTS (SELECT 1 FROM poll_votes v WHERE v.poll_id = p.id AND v.member_id = ?)
           FROM polls p
           WHERE p.closed_at IS NULL AND (p.closes_at IS NULL OR p.closes_at > ?)
           ORDER BY p.id DESC LIMIT ?""",
        (viewer_id, to_iso(now), POLLS_SHOWN),
    ).fetchall()
    return [PollCard(int(r[0]), str(r[1]), bool(r[2])) for r in rows]


def answered_suggestions(db: sqlite_utils.Database, viewer_id: int) -> list[SuggestionCard]:
    """The latest suggestions staff answered, with the latest answer."""
    rows = db.conn.execute(
        f"""SELECT s.id, s.body, a.body
            FROM suggestions s
            JOIN staff_answers a ON a.item_kind = 'suggestion' AND a.item_id = s.id
            WHERE s.status = 'visible'
              AND a.id = (SELECT MAX(id) FROM staff_answers
                          WHERE item_kind = 'suggestion' AND item_id = s.id)
              AND (s.author_id IS NULL OR {_NOT_BLOCKED.format(author="s.author_id")})
            ORDER BY a.id DESC LIMIT :limit""",  # noqa: S608 - fixed SQL
        {"viewer": viewer_id, "limit": SUGGESTIONS_SHOWN},
    ).fetchall()
    return [SuggestionCard(int(r[0]), str(r[1]), str(r[2])) for r in rows]
