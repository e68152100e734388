"""The suggestions box: members tell the store what it could do better, in public.

Anyone may read the visible suggestions (and the store's answers under them), so members see
what was already asked and what the store said. A suggestion is screened like every member
write; its author may edit it (screened again, ``status_after_edit``) or delete it, and always
sees it with its status; a block either way hides it from the other member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from community import feedback
from community.content import ITEM_STATUSES, status_after_edit
from community.feedback import NotFound
from community.screening import Limits, record, screen
from instore.clock import to_iso
from instore.db import atomic

# Suggestions per page of the public list; the console's page.
PAGE_SIZE = 20
STAFF_PAGE_SIZE = 50


@dataclass(frozen=True)
class Suggestion:
    id: int
    author_id: int | None  # None: the author erased their account and kept their words
    author_name: str | None
    body: str
    status: str
    created_at: str
    edited_at: str | None


_COLUMNS = "s.id, s.author_id, m.display_name, s.body, s.status, s.created_at, s.edited_at"
_FROM = "suggestions s LEFT JOIN members m ON m.id = s.author_id"


def _suggestion(row: tuple[Any, ...]) -> Suggestion:
    return Suggestion(
        id=int(row[0]),
        author_id=None if row[1] is None else int(row[1]),
        author_name=None if row[2] is None else str(row[2]),
        body=str(row[3]),
        status=str(row[4]),
        created_at=str(row[5]),
        edited_at=None if row[6] is None else str(row[6]),
    )


def get_suggestion(db: sqlite_utils.Database, suggestion_id: int) -> Suggestion | None:
    """The suggestion whatever its status (the console's read; pages use ``readable``)."""
    row = db.conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE s.id = ?",  # noqa: S608 - fixed SQL
        (suggestion_id,),
    ).fetchone()
    return None if row is None else _suggestion(row)


def readable(db: sqlite_utils.Database, suggestion_id: int, viewer_id: int) -> Suggestion | None:
    """The suggestion if the viewer may read it (see ``feedback.readable_by_viewer``), else None."""
    row = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM {_FROM}
            WHERE s.id = :id AND {feedback.readable_by_viewer("s")}""",  # noqa: S608 - fixed SQL
        {"id": suggestion_id, "viewer": viewer_id},
    ).fetchone()
    return None if row is None else _suggestion(row)


def post_suggestion(
    db: sqlite_utils.Database, member_id: int, body: str, now: datetime, limits: Limits
) -> Suggestion:
    """Drop a suggestion in the box; returns it as stored (its status may be held).

    Raises ``FeedbackError`` for empty or too long text and screening's ``Refused``.
    """
    body = feedback.check_text(body, required=True, what="Your suggestion")
    with atomic(db, "feedback_suggestion"):
        screening = screen(db, member_id, {"body": body}, now, limits)
        cursor = db.conn.execute(
            """INSERT INTO suggestions (author_id, body, status, created_at)
               VALUES (?, ?, ?, ?)""",
            (member_id, screening.texts["body"], screening.status, to_iso(now)),
        )
        suggestion_id = int(cursor.lastrowid or 0)
        record(db, "suggestion", suggestion_id, screening, now)
        saved = get_suggestion(db, suggestion_id)
    assert saved is not None
    return saved


def edit_suggestion(
    db: sqlite_utils.Database,
    suggestion_id: int,
    member_id: int,
    body: str,
    now: datetime,
    limits: Limits,
) -> Suggestion:
    """The author rewrites their suggestion; ``NotFound`` when it is not theirs."""
    body = feedback.check_text(body, required=True, what="Your suggestion")
    with atomic(db, "feedback_suggestion_edit"):
        existing = get_suggestion(db, suggestion_id)
        if existing is None or existing.author_id != member_id:
            raise NotFound("There is no such suggestion of yours.")
        screening = screen(db, member_id, {"body": body}, now, limits)
        db.conn.execute(
            "UPDATE suggestions SET body = ?, status = ?, edited_at = ? WHERE id = ?",
            (
                screening.texts["body"],
                status_after_edit(existing.status, screening.status),
                to_iso(now),
                suggestion_id,
            ),
        )
        record(db, "suggestion", suggestion_id, screening, now)
        saved = get_suggestion(db, suggestion_id)
    assert saved is not None
    return saved


def delete_suggestion(db: sqlite_utils.Database, suggestion_id: int, member_id: int) -> bool:
    """The author takes their suggestion down, with its answers; False if not theirs."""
    with atomic(db, "feedback_suggestion_delete"):
        cursor = db.conn.execute(
            "DELETE FROM suggestions WHERE id = ? AND author_id = ?", (suggestion_id, member_id)
        )
        if cursor.rowcount:
            feedback.delete_answers_of(db, "suggestion", suggestion_id)
    return cursor.rowcount > 0


def public_suggestions(
    db: sqlite_utils.Database, viewer_id: int, page: int = 1, page_size: int = PAGE_SIZE
) -> tuple[list[Suggestion], bool]:
    """One page of what the viewer may read, newest first, their own among them; more after?"""
    rows = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM {_FROM} WHERE {feedback.readable_by_viewer("s")}
            ORDER BY s.id DESC LIMIT :limit OFFSET :offset""",  # noqa: S608 - fixed SQL
        {
            "viewer": viewer_id,
            "limit": page_size + 1,
            "offset": (max(page, 1) - 1) * page_size,
        },
    ).fetchall()
    return [_suggestion(row) for row in rows[:page_size]], len(rows) > page_size


def staff_suggestions(
    db: sqlite_utils.Database,
    answered: str = "unanswered",
    status: str = "",
    page: int = 1,
    page_size: int = STAFF_PAGE_SIZE,
) -> tuple[list[Suggestion], bool]:
    """Every suggestion for the console, unanswered first, then newest; filtered as asked."""
    clauses = [feedback.answer_filter_sql("suggestion", "s", answered)]
    params: dict[str, Any] = {"limit": page_size + 1, "offset": (max(page, 1) - 1) * page_size}
    if status in ITEM_STATUSES:
        clauses.append("s.status = :status")
        params["status"] = status
    rows = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM {_FROM} WHERE {" AND ".join(clauses)}
            ORDER BY {feedback.answered_sql("suggestion", "s")}, s.id DESC
            LIMIT :limit OFFSET :offset""",  # noqa: S608 - fixed SQL
        params,
    ).fetchall()
    return [_suggestion(row) for row in rows[:page_size]], len(rows) > page_size
