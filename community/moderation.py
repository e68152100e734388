"""Flags, hiding at the threshold, and a moderator's decisions on an item.

Screening (``community.screening``) decides before an item shows; this module decides after:

- A member flags something they can see (not their own) with a reason. When members' open flags
  on an item reach the store's ``flags_to_hide`` it is hidden until a moderator decides; its
  author is told (the portal's job) and may edit it, which puts it back in the queue as held
  (``content.status_after_edit``). The system's flags (watched words, the machine score) are
  reasons for the queue, never votes towards hiding.
- The queue (``community.moderation_queue``) is every item that is held, hidden, or visible with
  open flags, the longest waiting first.
- A moderator approves (visible, flags resolved), rejects (taken down, flags resolved) or edits
  the text and approves, always with a reason; each decision is one ``moderation_actions`` row
  written in the same transaction as the change. Sanctions against members are in
  ``community.sanctions``.

Items are read and changed only through ``community.content.CONTENT_KINDS``, so every kind of post
is moderated the same way and the feature modules keep their own rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from community.content import CONTENT_KINDS, HELD, HIDDEN, REJECTED, VISIBLE, ContentKind
from community.friends import are_mutual_friends, blockers_between
from community.schema_social import FLAG_REASONS
from instore.clock import to_iso
from instore.db import transaction

# A flag's note and a moderator's reason: a few sentences, not an essay.
MAX_NOTE = 500
MAX_REASON = 500
# A moderator's edit may be longer than any post; the cap only keeps a paste accident out.
MAX_EDITED_TEXT = 5000
# Flags one member may file in an hour: people report what they meet, more is a campaign.
FLAGS_PER_HOUR = 20
FLAG_WINDOW = timedelta(hours=1)
# Decisions a moderator takes on an item (what ``moderation_actions.action`` says).
APPROVE, REJECT, EDIT = "approve", "reject", "edit"


class ModerationError(ValueError):
    """A moderation step that cannot be done; the message is meant for the person asking."""


class ItemNotFound(ModerationError):
    """No such item, or not one this member may see or flag: the caller answers 404 for all."""


class AlreadyFlagged(ModerationError):
    """The member has flagged this item before (one flag per member and item)."""


class TooManyFlags(ModerationError):
    """The member filed ``FLAGS_PER_HOUR`` flags in the last hour."""


class AlreadyDecided(ModerationError):
    """Someone decided on the item since the page was read; nothing was changed."""


@dataclass(frozen=True)
class Item:
    """One member-written item as moderation sees it; ``row`` is its whole stored row."""

    kind: str
    id: int
    author_id: int | None
    status: str
    texts: dict[str, str]
    created_at: str
    row: dict[str, Any] = field(repr=False)
    author_name: str | None = None

    @property
    def storage(self) -> ContentKind:
        return CONTENT_KINDS[self.kind]

    @property
    def text(self) -> str:
        """All its text in one string (a board's title and description), for lists and notes."""
        return "\n".join(value for value in self.texts.values() if value)


@dataclass(frozen=True)
class Flag:
    """A flag on an item; ``flagger_id`` None is the system (a watched word, the machine)."""

    id: int
    item_kind: str
    item_id: int
    flagger_id: int | None
    flagger_name: str | None
    reason: str
    note: str
    created_at: str
    resolved_at: str | None
    resolution: str | None

    @property
    def from_member(self) -> bool:
        return self.flagger_id is not None


@dataclass(frozen=True)
class FlagOutcome:
    """What filing a flag did: the item (as it was) and whether this flag hid it."""

    item: Item
    flag_id: int
    hidden: bool


@dataclass(frozen=True)
class Decision:
    """A moderator's decision: the action row written and the item as it was before."""

    action_id: int
    item: Item
    resolved_flags: int


# -- reading items -------------------------------------------------------------------------------


def created_column(kind: ContentKind) -> str:
    # A profile has no creation time of its own; its last change stands in.
    return "updated_at" if kind.kind == "profile" else "created_at"


def item_from_row(kind: ContentKind, row: dict[str, Any], author_name: str | None) -> Item:
    return Item(
        kind=kind.kind,
        id=int(row[kind.key]),
        author_id=None if row[kind.author] is None else int(row[kind.author]),
        status=str(row["status"]),
        texts={column: str(row[column] or "") for column in kind.texts},
        created_at=str(row[created_column(kind)]),
        row=row,
        author_name=author_name,
    )


def get_item(db: sqlite_utils.Database, kind: str, item_id: int) -> Item | None:
    """The item, or None when the kind or the id does not exist."""
    storage = CONTENT_KINDS.get(kind)
    if storage is None:
        return None
    rows = list(
        db.query(
            f"SELECT * FROM {storage.table} WHERE {storage.key} = ?",  # noqa: S608 - fixed names
            [item_id],
        )
    )
    if not rows:
        return None
    row = rows[0]
    author_id = row[storage.author]
    name = None
    if author_id is not None:
        found = db.conn.execute(
            "SELECT display_name FROM members WHERE id = ?", (author_id,)
        ).fetchone()
        name = str(found[0]) if found else None
    return item_from_row(storage, row, name)


def can_see(db: sqlite_utils.Database, viewer_id: int, item: Item) -> bool:
    """Whether a member is shown the item (the visibility rule every page follows).

    Its author always; anyone else only while it is visible, with no block between them and
    the author; a board by its audience, a comment only where its board can be seen.
    """
    if item.author_id == viewer_id:
        return True
    if item.status != VISIBLE:
        return False
    if item.author_id is not None and blockers_between(db, viewer_id, item.author_id):
        return False
    if item.kind == "board":
        audience = item.row.get("audience")
        if audience == "public":
            return True
        return (
            audience == "friends"
            and item.author_id is not None
            and are_mutual_friends(db, viewer_id, item.author_id)
        )
    if item.kind == "comment":
        board = get_item(db, "board", int(item.row["board_id"]))
        return board is not None and can_see(db, viewer_id, board)
    return True


def set_status(db: sqlite_utils.Database, item: Item, status: str) -> None:
    """Change the item's status (the caller owns the transaction)."""
    storage = item.storage
    db.conn.execute(
        f"UPDATE {storage.table} SET status = ? WHERE {storage.key} = ?",  # noqa: S608
        (status, item.id),
    )


def set_texts(db: sqlite_utils.Database, item: Item, texts: dict[str, str], now: datetime) -> None:
    """Replace the item's text columns named in ``texts`` and stamp the edit."""
    storage = item.storage
    columns = [column for column in storage.texts if column in texts]
    if not columns:
        return
    assignments = ", ".join(f"{column} = ?" for column in columns)
    db.conn.execute(
        f"UPDATE {storage.table} SET {assignments}, {storage.stamp} = ? "  # noqa: S608
        f"WHERE {storage.key} = ?",
        (*(texts[column] for column in columns), to_iso(now), item.id),
    )


# -- flags ---------------------------------------------------------------------------------------


def flag_from_row(row: dict[str, Any]) -> Flag:
    return Flag(
        id=row["id"],
        item_kind=row["item_kind"],
        item_id=row["item_id"],
        flagger_id=row["flagger_id"],
        flagger_name=row.get("flagger_name"),
        reason=row["reason"],
        note=row["note"],
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
        resolution=row["resolution"],
    )


FLAGS_SQL = """SELECT f.*, m.display_name AS flagger_name
    FROM flags f LEFT JOIN members m ON m.id = f.flagger_id"""


def open_flags(db: sqlite_utils.Database, kind: str, item_id: int) -> list[Flag]:
    """The item's unresolved flags, members' and the system's, oldest first."""
    rows = db.query(
        f"{FLAGS_SQL} WHERE f.item_kind = ? AND f.item_id = ? AND f.resolved_at IS NULL "
        "ORDER BY f.created_at, f.id",
        [kind, item_id],
    )
    return [flag_from_row(row) for row in rows]


def has_flagged(db: sqlite_utils.Database, member_id: int, kind: str, item_id: int) -> bool:
    row = db.conn.execute(
        "SELECT 1 FROM flags WHERE item_kind = ? AND item_id = ? AND flagger_id = ?",
        (kind, item_id, member_id),
    ).fetchone()
    return row is not None


def member_flag_count(db: sqlite_utils.Database, kind: str, item_id: int) -> int:
    """Open flags on the item from members (the system's do not count towards hiding)."""
    row = db.conn.execute(
        """SELECT COUNT(*) FROM flags WHERE item_kind = ? AND item_id = ?
           AND flagger_id IS NOT NULL AND resolved_at IS NULL""",
        (kind, item_id),
    ).fetchone()
    return int(row[0])


def flaggable_item(db: sqlite_utils.Database, member_id: int, kind: str, item_id: int) -> Item:
    """The item the member may flag; ItemNotFound when it is missing, hidden from them or theirs."""
    item = get_item(db, kind, item_id)
    if item is None or item.author_id == member_id or not can_see(db, member_id, item):
        raise ItemNotFound("There is nothing to report here.")
    return item


def clean_note(note: str) -> str:
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ModerationError(f"Keep the note under {MAX_NOTE} characters.")
    return note


def flag_item(
    db: sqlite_utils.Database,
    flagger_id: int,
    kind: str,
    item_id: int,
    reason: str,
    note: str,
    now: datetime,
    flags_to_hide: int,
) -> FlagOutcome:
    """File the member's flag; hide the item when members' open flags reach ``flags_to_hide``.

    Raises ItemNotFound (cannot be flagged by them), AlreadyFlagged, TooManyFlags or
    ModerationError (bad reason or note). Telling the author is the caller's, in the same
    transaction: it is written in the author's language by the portal.
    """
    if reason not in FLAG_REASONS:
        raise ModerationError("Choose why you are reporting it.")
    note = clean_note(note)
    with transaction(db):
        item = flaggable_item(db, flagger_id, kind, item_id)
        if has_flagged(db, flagger_id, kind, item_id):
            raise AlreadyFlagged("You have already reported this. A moderator will look at it.")
        recent = db.conn.execute(
            "SELECT COUNT(*) FROM flags WHERE flagger_id = ? AND created_at >= ?",
            (flagger_id, to_iso(now - FLAG_WINDOW)),
        ).fetchone()[0]
        if recent >= FLAGS_PER_HOUR:
            raise TooManyFlags("You have reported a lot in the last hour. Try again later.")
        cursor = db.conn.execute(
            """INSERT INTO flags (item_kind, item_id, flagger_id, reason, note, created_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (kind, item_id, flagger_id, reason, note, to_iso(now)),
        )
        hidden = False
        if item.status == VISIBLE and member_flag_count(db, kind, item_id) >= flags_to_hide:
            set_status(db, item, HIDDEN)
            hidden = True
    return FlagOutcome(item, int(cursor.lastrowid or 0), hidden)


def resolve_flags(
    db: sqlite_utils.Database, kind: str, item_id: int, resolution: str, now: datetime
) -> int:
    """Close the item's open flags with the decision taken; how many were open."""
    cursor = db.conn.execute(
        """UPDATE flags SET resolved_at = ?, resolution = ?
           WHERE item_kind = ? AND item_id = ? AND resolved_at IS NULL""",
        (to_iso(now), resolution, kind, item_id),
    )
    return int(cursor.rowcount)


# -- decisions -----------------------------------------------------------------------------------


def clean_reason(reason: str) -> str:
    """A moderator's reason: required (the member and the records are told why), and short."""
    reason = reason.strip()
    if not reason:
        raise ModerationError("Give a reason: the member and the records are told why.")
    if len(reason) > MAX_REASON:
        raise ModerationError(f"Keep the reason under {MAX_REASON} characters.")
    return reason


def record_action(
    db: sqlite_utils.Database,
    moderator_id: int,
    action: str,
    reason: str,
    now: datetime,
    *,
    item: Item | None = None,
    member_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Write one ``moderation_actions`` row (inside the change's transaction); its id."""
    cursor = db.conn.execute(
        """INSERT INTO moderation_actions
           (ts, moderator_id, action, item_kind, item_id, member_id, reason, detail)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            to_iso(now),
            moderator_id,
            action,
            item.kind if item else None,
            item.id if item else None,
            member_id if member_id is not None else (item.author_id if item else None),
            reason,
            json.dumps(detail or {}, sort_keys=True),
        ),
    )
    return int(cursor.lastrowid or 0)


def _decidable(db: sqlite_utils.Database, moderator_id: int, kind: str, item_id: int) -> Item:
    item = get_item(db, kind, item_id)
    if item is None:
        raise ItemNotFound("That item no longer exists.")
    if item.author_id == moderator_id:
        raise ModerationError("Ask another moderator to decide on your own post.")
    return item


def approve(
    db: sqlite_utils.Database,
    moderator_id: int,
    kind: str,
    item_id: int,
    reason: str,
    now: datetime,
) -> Decision:
    """Show the item (held, hidden or flagged) and close its flags."""
    reason = clean_reason(reason)
    with transaction(db):
        item = _decidable(db, moderator_id, kind, item_id)
        if item.status not in (HELD, HIDDEN) and not open_flags(db, kind, item_id):
            raise AlreadyDecided("Someone has already decided on this item.")
        set_status(db, item, VISIBLE)
        resolved = resolve_flags(db, kind, item_id, APPROVE, now)
        action_id = record_action(
            db, moderator_id, APPROVE, reason, now, item=item, detail={"status": item.status}
        )
    return Decision(action_id, item, resolved)


def reject(
    db: sqlite_utils.Database,
    moderator_id: int,
    kind: str,
    item_id: int,
    reason: str,
    now: datetime,
) -> Decision:
    """Take the item down (its author still sees it, marked) and close its flags."""
    reason = clean_reason(reason)
    with transaction(db):
        item = _decidable(db, moderator_id, kind, item_id)
        if item.status == REJECTED:
            raise AlreadyDecided("That item has already been removed.")
        set_status(db, item, REJECTED)
        resolved = resolve_flags(db, kind, item_id, REJECT, now)
        action_id = record_action(
            db, moderator_id, REJECT, reason, now, item=item, detail={"status": item.status}
        )
    return Decision(action_id, item, resolved)


def clean_edit(item: Item, texts: dict[str, str]) -> dict[str, str]:
    """The moderator's new text for the item's text columns (others are ignored)."""
    cleaned = {
        column: texts.get(column, item.texts[column]).strip() for column in item.storage.texts
    }
    if not any(cleaned.values()):
        raise ModerationError("The edited text cannot be empty. Reject the item instead.")
    if any(len(text) > MAX_EDITED_TEXT for text in cleaned.values()):
        raise ModerationError(f"Keep the text under {MAX_EDITED_TEXT} characters.")
    if cleaned == item.texts:
        raise ModerationError("The text is unchanged. Approve it instead.")
    return cleaned


def edit_and_approve(
    db: sqlite_utils.Database,
    moderator_id: int,
    kind: str,
    item_id: int,
    texts: dict[str, str],
    reason: str,
    now: datetime,
) -> Decision:
    """Replace the item's text with the moderator's and show it; the original is kept in the
    action's detail (the member sees what was changed, and an overturned appeal restores it)."""
    reason = clean_reason(reason)
    with transaction(db):
        item = _decidable(db, moderator_id, kind, item_id)
        cleaned = clean_edit(item, texts)
        set_texts(db, item, cleaned, now)
        set_status(db, item, VISIBLE)
        resolved = resolve_flags(db, kind, item_id, EDIT, now)
        detail = {"status": item.status, "original": item.texts, "edited": cleaned}
        action_id = record_action(db, moderator_id, EDIT, reason, now, item=item, detail=detail)
    return Decision(action_id, item, resolved)
