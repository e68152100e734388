"""Appeals: a member's one appeal of each decision about them, and a moderator's answer.

The appeals table allows one appeal per decision. A moderator upholds it or overturns it with an
answer; overturning lifts what the decision imposed (a warning, silence, suspension or ban) or
restores the item (a rejected post shows again; an edited one gets its author's words back).
Telling the member is the portal's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from community.content import REJECTED, VISIBLE
from community.moderation import (
    EDIT,
    REJECT,
    clean_reason,
    get_item,
    record_action,
    set_status,
    set_texts,
)
from community.sanctions import APPEALABLE, AlreadyAppealed, SanctionError, end_measures
from instore.clock import to_iso
from instore.db import transaction

APPEAL_UPHELD, APPEAL_OVERTURNED = "upheld", "overturned"
# An appeal is the member's side of the story in a paragraph or two.
MAX_APPEAL = 1000


@dataclass(frozen=True)
class Appeal:
    """A member's appeal of one decision, and the moderator's answer once there is one."""

    id: int
    action_id: int
    member_id: int | None
    member_name: str | None
    body: str
    created_at: str
    decided_at: str | None
    outcome: str | None
    answer: str
    action: str
    action_reason: str
    item_kind: str | None
    item_id: int | None


@dataclass(frozen=True)
class Notice:
    """A decision about a member as they see it on their moderation page."""

    action_id: int
    action: str
    ts: str
    reason: str
    item_kind: str | None
    item_id: int | None
    detail: dict[str, Any]
    ends_at: str | None
    lifted_at: str | None
    appeal: Appeal | None


_APPEAL_SQL = """SELECT p.*, m.display_name AS member_name, a.action, a.reason AS action_reason,
        a.item_kind, a.item_id
    FROM appeals p JOIN moderation_actions a ON a.id = p.action_id
    LEFT JOIN members m ON m.id = p.member_id"""


def _appeal(row: dict[str, Any]) -> Appeal:
    return Appeal(**{name: row[name] for name in Appeal.__dataclass_fields__})


def get_appeal(db: sqlite_utils.Database, appeal_id: int) -> Appeal | None:
    rows = list(db.query(f"{_APPEAL_SQL} WHERE p.id = ?", [appeal_id]))
    return _appeal(rows[0]) if rows else None


def open_appeals(db: sqlite_utils.Database) -> list[Appeal]:
    """Appeals waiting for a moderator, oldest first."""
    rows = db.query(f"{_APPEAL_SQL} WHERE p.decided_at IS NULL ORDER BY p.created_at, p.id")
    return [_appeal(row) for row in rows]


def appealable_action(
    db: sqlite_utils.Database, member_id: int, action_id: int
) -> dict[str, Any] | None:
    """The decision about the member that they may appeal, or None (someone else's, or not one)."""
    rows = list(
        db.query(
            "SELECT * FROM moderation_actions WHERE id = ? AND member_id = ?",
            [action_id, member_id],
        )
    )
    if not rows or rows[0]["action"] not in APPEALABLE:
        return None
    return rows[0]


def clean_appeal(body: str) -> str:
    body = body.strip()
    if not body:
        raise SanctionError("Write why the decision should change.")
    if len(body) > MAX_APPEAL:
        raise SanctionError(f"Keep your appeal under {MAX_APPEAL} characters.")
    return body


def appeal(
    db: sqlite_utils.Database, member_id: int, action_id: int, body: str, now: datetime
) -> int:
    """File the member's one appeal of a decision about them; the appeal's id.

    LookupError for a decision that is not about them (or not one they can appeal): the page
    answers 404 exactly as for one that does not exist. AlreadyAppealed for a second appeal.
    """
    body = clean_appeal(body)
    with transaction(db):
        if appealable_action(db, member_id, action_id) is None:
            raise LookupError(action_id)
        taken = db.conn.execute(
            "SELECT 1 FROM appeals WHERE action_id = ?", (action_id,)
        ).fetchone()
        if taken:
            raise AlreadyAppealed("You have already appealed this decision. Each gets one appeal.")
        cursor = db.conn.execute(
            "INSERT INTO appeals (action_id, member_id, body, created_at) VALUES (?, ?, ?, ?)",
            (action_id, member_id, body, to_iso(now)),
        )
    return int(cursor.lastrowid or 0)


def _restore_item(db: sqlite_utils.Database, action: dict[str, Any], now: datetime) -> None:
    """Undo a rejection or a moderator's edit on the item, if it still exists."""
    if action["item_kind"] is None:
        return
    item = get_item(db, action["item_kind"], int(action["item_id"]))
    if item is None:
        return
    if action["action"] == EDIT:
        original = json.loads(action["detail"]).get("original") or {}
        set_texts(db, item, {str(k): str(v) for k, v in original.items()}, now)
    if action["action"] == REJECT and item.status == REJECTED:
        set_status(db, item, VISIBLE)


def decide_appeal(
    db: sqlite_utils.Database,
    moderator_id: int,
    appeal_id: int,
    outcome: str,
    answer: str,
    now: datetime,
) -> tuple[Appeal, int]:
    """Uphold or overturn an open appeal with an answer; (the appeal as it was, the action id).

    Overturning lifts what the decision imposed (a warning, silence, suspension or ban) or
    restores the item (a rejection; an edit's original text).
    """
    if outcome not in (APPEAL_UPHELD, APPEAL_OVERTURNED):
        raise SanctionError("Choose to uphold or overturn the decision.")
    answer = clean_reason(answer)
    with transaction(db):
        found = get_appeal(db, appeal_id)
        if found is None:
            raise LookupError(appeal_id)
        if found.decided_at is not None:
            raise SanctionError("That appeal has already been answered.")
        action = next(
            iter(db.query("SELECT * FROM moderation_actions WHERE id = ?", [found.action_id]))
        )
        if outcome == APPEAL_OVERTURNED:
            end_measures(db, found.action_id, now)
            _restore_item(db, action, now)
        db.conn.execute(
            """UPDATE appeals SET decided_at = ?, decided_by = ?, outcome = ?, answer = ?
               WHERE id = ?""",
            (to_iso(now), moderator_id, outcome, answer, appeal_id),
        )
        item = (
            get_item(db, action["item_kind"], int(action["item_id"]))
            if action["item_kind"]
            else None
        )
        action_id = record_action(
            db,
            moderator_id,
            f"appeal_{outcome}",
            answer,
            now,
            item=item,
            member_id=found.member_id,
            detail={"appeal_id": appeal_id, "decision_id": found.action_id},
        )
    return found, action_id


def notices(db: sqlite_utils.Database, member_id: int) -> list[Notice]:
    """The decisions about the member they may see and appeal, newest first."""
    placeholders = ", ".join("?" for _ in APPEALABLE)
    rows = db.query(
        f"""SELECT a.*, s.ends_at, s.lifted_at FROM moderation_actions a
            LEFT JOIN member_sanctions s ON s.action_id = a.id
            WHERE a.member_id = ? AND a.action IN ({placeholders})
            ORDER BY a.ts DESC, a.id DESC""",  # noqa: S608 - placeholders only
        [member_id, *APPEALABLE],
    )
    appeals = {
        found.action_id: found
        for found in (
            _appeal(row) for row in db.query(f"{_APPEAL_SQL} WHERE p.member_id = ?", [member_id])
        )
    }
    return [
        Notice(
            action_id=row["id"],
            action=row["action"],
            ts=row["ts"],
            reason=row["reason"],
            item_kind=row["item_kind"],
            item_id=row["item_id"],
            detail=json.loads(row["detail"] or "{}"),
            ends_at=row["ends_at"],
            lifted_at=row["lifted_at"],
            appeal=appeals.get(row["id"]),
        )
        for row in rows
    ]
