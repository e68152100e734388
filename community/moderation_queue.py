"""What waits for moderators, and a member's record as they see it.

The queue is every item that is held (screening), hidden (members' reports) or still visible with
open reports, the longest waiting first, each with its open flags, members' and the system's. The
member's record is what the console's member page and the member's own moderation page list:
their items of every kind and the flags on them and by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from community.content import CONTENT_KINDS, HELD, HIDDEN, REJECTED, VISIBLE
from community.moderation import (
    FLAGS_SQL,
    Flag,
    Item,
    created_column,
    flag_from_row,
    get_item,
    item_from_row,
    open_flags,
)
from instore.clock import from_iso

# The queue page shows this many items at once, oldest first; the rest wait their turn.
QUEUE_LIMIT = 200


@dataclass(frozen=True)
class QueueEntry:
    """An item waiting for a moderator with its open flags and since when it has waited."""

    item: Item
    flags: list[Flag]
    since: str

    @property
    def member_flags(self) -> list[Flag]:
        return [flag for flag in self.flags if flag.from_member]

    @property
    def system_flags(self) -> list[Flag]:
        return [flag for flag in self.flags if not flag.from_member]

    def reason_counts(self) -> dict[str, int]:
        """How many open flags give each reason, most given first."""
        counts: dict[str, int] = {}
        for flag in self.flags:
            counts[flag.reason] = counts.get(flag.reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda pair: (-pair[1], pair[0])))

    def waited(self, now: datetime) -> timedelta:
        return now - from_iso(self.since)


# -- a member's record ------------------------------------------------------------------------


def items_by(db: sqlite_utils.Database, member_id: int, limit: int = 50) -> list[Item]:
    """The member's items of every kind, newest first (``limit`` of each kind)."""
    found: list[Item] = []
    for storage in CONTENT_KINDS.values():
        created = created_column(storage)
        rows = db.query(
            f"SELECT * FROM {storage.table} WHERE {storage.author} = ? "  # noqa: S608
            f"ORDER BY {created} DESC LIMIT ?",
            [member_id, limit],
        )
        found.extend(item_from_row(storage, row, None) for row in rows)
    return sorted(found, key=lambda item: item.created_at, reverse=True)


def items_waiting(db: sqlite_utils.Database, member_id: int) -> list[Item]:
    """The member's items others cannot see now (held, hidden or rejected), newest first."""
    return [item for item in items_by(db, member_id) if item.status != VISIBLE]


def flags_on_items_of(db: sqlite_utils.Database, member_id: int) -> list[Flag]:
    """Every flag on the member's items, newest first (the console's member page)."""
    found: list[Flag] = []
    for storage in CONTENT_KINDS.values():
        rows = db.query(
            f"{FLAGS_SQL} JOIN {storage.table} t ON t.{storage.key} = f.item_id "
            f"WHERE f.item_kind = ? AND t.{storage.author} = ?",
            [storage.kind, member_id],
        )
        found.extend(flag_from_row(row) for row in rows)
    return sorted(found, key=lambda flag: (flag.created_at, flag.id), reverse=True)


def flags_by(db: sqlite_utils.Database, member_id: int) -> list[Flag]:
    """The flags the member filed, newest first."""
    rows = db.query(
        f"{FLAGS_SQL} WHERE f.flagger_id = ? ORDER BY f.created_at DESC, f.id DESC", [member_id]
    )
    return [flag_from_row(row) for row in rows]


# -- the queue -----------------------------------------------------------------------------------


def _queued_keys(db: sqlite_utils.Database) -> set[tuple[str, int]]:
    keys: set[tuple[str, int]] = set()
    for storage in CONTENT_KINDS.values():
        rows = db.conn.execute(
            f"SELECT {storage.key} FROM {storage.table} WHERE status IN (?, ?)",  # noqa: S608
            (HELD, HIDDEN),
        ).fetchall()
        keys.update((storage.kind, int(row[0])) for row in rows)
    rows = db.conn.execute(
        "SELECT DISTINCT item_kind, item_id FROM flags WHERE resolved_at IS NULL"
    ).fetchall()
    keys.update((str(kind), int(item_id)) for kind, item_id in rows)
    return keys


def queue_entry(db: sqlite_utils.Database, kind: str, item_id: int) -> QueueEntry | None:
    """The item as the queue shows it, or None when it is not waiting for a moderator."""
    item = get_item(db, kind, item_id)
    if item is None or item.status == REJECTED:
        return None
    flags = open_flags(db, kind, item_id)
    if item.status == VISIBLE and not flags:
        return None
    stamp = item.row.get(item.storage.stamp) or item.created_at
    since = min([flag.created_at for flag in flags] or [str(stamp)])
    return QueueEntry(item, flags, since)


def queue(db: sqlite_utils.Database, limit: int = QUEUE_LIMIT) -> list[QueueEntry]:
    """Items waiting for a moderator, the longest waiting first."""
    entries = [queue_entry(db, kind, item_id) for kind, item_id in _queued_keys(db)]
    waiting = [entry for entry in entries if entry is not None]
    waiting.sort(key=lambda entry: (entry.since, entry.item.kind, entry.item.id))
    return waiting[:limit]
