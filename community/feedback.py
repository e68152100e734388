"""What reviews and suggestions share: who may read an item, and the store's public answers.

Reviews (``community.reviews``) and suggestions (``community.suggestions``) are both things a
member writes for everyone to read and staff answer in public, so the rules common to both live
here once:

- An item shows to a member when it is visible and there is no block either way between them and
  its author; its author always sees it, whatever its status, with a label saying why others do
  not (``STATUS_NOTES`` names the statuses the pages label). An erased author (NULL) blocks no one.
- Staff answers (``staff_answers``) are the store speaking: not screened (staff are trusted and
  accountable through the audit log), but the pages escape them like any text. An item may have
  several answers (two staff members, or a follow-up); deleting the item deletes its answers,
  since the table cannot point at two tables with a foreign key.

Polls are staff-written and live apart in ``community.polls``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from community.content import CONTENT_KINDS, HELD, HIDDEN, REJECTED, VISIBLE
from instore.clock import to_iso
from instore.db import atomic

# A review, a suggestion or an answer is a few paragraphs on a phone, not an essay; the same
# bound as a support message, and well under the portal's 16 KB request limit in any script.
MAX_TEXT = 2000
# The kinds of item staff answer in public (the CHECK on staff_answers.item_kind).
ANSWERABLE_KINDS: tuple[str, ...] = ("review", "suggestion")
# SQLite's bound-parameter cap on old builds is 999: ids are asked in chunks under it.
ID_CHUNK = 500
# The statuses an author sees labelled on their own item (visible needs no label).
STATUS_NOTES: tuple[str, ...] = (HELD, HIDDEN, REJECTED)

# "No block either way between :viewer and the author"; ``{author}`` is a fixed column name.
NOT_BLOCKED = """NOT EXISTS (SELECT 1 FROM blocks
                    WHERE (blocker_id = :viewer AND blocked_id = {author})
                       OR (blocker_id = {author} AND blocked_id = :viewer))"""


def readable_by_viewer(alias: str) -> str:
    """SQL: the item ``alias`` (with an ``author_id`` and ``status``) shows to ``:viewer``.

    Its author sees it whatever its status; anyone else only when it is visible and no block
    stands between them and the author.
    """
    author = f"{alias}.author_id"
    return (
        f"({author} = :viewer OR ({alias}.status = '{VISIBLE}' AND "
        f"({author} IS NULL OR {NOT_BLOCKED.format(author=author)})))"
    )


class FeedbackError(ValueError):
    """A feedback action that cannot be done; the message is meant for the person asking."""


class NotFound(FeedbackError):
    """No such item, or not one this member may change (the pages answer 404 for both)."""


def check_text(text: str, *, required: bool, what: str = "Your text") -> str:
    """``text`` stripped, or FeedbackError when it is empty (and must not be) or too long."""
    text = text.strip()
    if required and not text:
        raise FeedbackError(f"{what} is empty. Write something first.")
    if len(text) > MAX_TEXT:
        raise FeedbackError(f"{what} is longer than {MAX_TEXT} characters.")
    return text


@dataclass(frozen=True)
class Answer:
    """A staff member's public answer under a review or a suggestion."""

    id: int
    item_kind: str
    item_id: int
    staff_id: int | None
    staff_name: str | None  # None once the staff account is erased
    body: str
    created_at: str
    edited_at: str | None


_ANSWER_COLUMNS = """a.id, a.item_kind, a.item_id, a.staff_id, m.display_name, a.body,
                     a.created_at, a.edited_at"""


def _answer(row: tuple[Any, ...]) -> Answer:
    return Answer(
        id=int(row[0]),
        item_kind=str(row[1]),
        item_id=int(row[2]),
        staff_id=None if row[3] is None else int(row[3]),
        staff_name=None if row[4] is None else str(row[4]),
        body=str(row[5]),
        created_at=str(row[6]),
        edited_at=None if row[7] is None else str(row[7]),
    )


def answers_for(
    db: sqlite_utils.Database, kind: str, item_ids: Iterable[int]
) -> dict[int, list[Answer]]:
    """Each item's answers, oldest first (a follow-up reads after what it follows)."""
    wanted = sorted({int(i) for i in item_ids})
    found: dict[int, list[Answer]] = {item_id: [] for item_id in wanted}
    for start in range(0, len(wanted), ID_CHUNK):
        chunk = wanted[start : start + ID_CHUNK]
        marks = ", ".join("?" for _ in chunk)
        rows = db.conn.execute(
            f"""SELECT {_ANSWER_COLUMNS} FROM staff_answers a
                LEFT JOIN members m ON m.id = a.staff_id
                WHERE a.item_kind = ? AND a.item_id IN ({marks})
                ORDER BY a.id""",  # noqa: S608 - fixed columns and placeholders
            [kind, *chunk],
        ).fetchall()
        for row in rows:
            answer = _answer(row)
            found[answer.item_id].append(answer)
    return found


def get_answer(db: sqlite_utils.Database, answer_id: int) -> Answer | None:
    row = db.conn.execute(
        f"""SELECT {_ANSWER_COLUMNS} FROM staff_answers a
            LEFT JOIN members m ON m.id = a.staff_id WHERE a.id = ?""",  # noqa: S608 - fixed
        (answer_id,),
    ).fetchone()
    return None if row is None else _answer(row)


def item_author(db: sqlite_utils.Database, kind: str, item_id: int) -> tuple[bool, int | None]:
    """(whether the review or suggestion exists, its author's id or None once erased)."""
    if kind not in ANSWERABLE_KINDS:
        return False, None
    content = CONTENT_KINDS[kind]
    row = db.conn.execute(
        f"SELECT {content.author} FROM {content.table} WHERE {content.key} = ?",  # noqa: S608
        (item_id,),
    ).fetchone()
    if row is None:
        return False, None
    return True, None if row[0] is None else int(row[0])


def add_answer(
    db: sqlite_utils.Database, kind: str, item_id: int, staff_id: int, body: str, now: datetime
) -> int:
    """Answer the item in public; NotFound when it does not exist (any more)."""
    body = check_text(body, required=True, what="The answer")
    with atomic(db, "feedback_answer"):
        exists, _author = item_author(db, kind, item_id)
        if not exists:
            raise NotFound("That item is gone.")
        cursor = db.conn.execute(
            """INSERT INTO staff_answers (item_kind, item_id, staff_id, body, created_at)
               VALUES (?, ?, ?, ?, ?)""",
            (kind, item_id, staff_id, body, to_iso(now)),
        )
    return int(cursor.lastrowid or 0)


def edit_answer(db: sqlite_utils.Database, answer_id: int, body: str, now: datetime) -> bool:
    """Replace an answer's text; False when there is no such answer."""
    body = check_text(body, required=True, what="The answer")
    cursor = db.conn.execute(
        "UPDATE staff_answers SET body = ?, edited_at = ? WHERE id = ?",
        (body, to_iso(now), answer_id),
    )
    return cursor.rowcount > 0


def delete_answer(db: sqlite_utils.Database, answer_id: int) -> bool:
    cursor = db.conn.execute("DELETE FROM staff_answers WHERE id = ?", (answer_id,))
    return cursor.rowcount > 0


def delete_answers_of(db: sqlite_utils.Database, kind: str, item_id: int) -> None:
    """Drop an item's answers with the item (call in the item's delete transaction)."""
    db.conn.execute(
        "DELETE FROM staff_answers WHERE item_kind = ? AND item_id = ?", (kind, item_id)
    )


def answered_sql(kind: str, alias: str) -> str:
    """SQL: whether item ``alias`` has at least one answer (``kind`` is a fixed name)."""
    assert kind in ANSWERABLE_KINDS
    return (
        f"EXISTS (SELECT 1 FROM staff_answers sa WHERE sa.item_kind = '{kind}' "  # noqa: S608
        f"AND sa.item_id = {alias}.id)"
    )


# The console's filters over answered-ness: name → SQL condition on ``answered_sql``.
ANSWER_FILTERS: tuple[str, ...] = ("unanswered", "answered", "all")


def answer_filter_sql(kind: str, alias: str, answered: str) -> str:
    """SQL for the console's "unanswered / answered / all" filter."""
    if answered == "unanswered":
        return f"NOT {answered_sql(kind, alias)}"
    if answered == "answered":
        return answered_sql(kind, alias)
    return "1"
