"""What waits for moderators, and a member's record as they see it.

The queue is every item that is held (screening), hidden (members' reports) or still visible with
open reports, the longest waiting first, each with its open flags, members' and the system's. It
is read a page at a time: one statement picks and orders the waiting items of every kind, then
only the page's items and flags are read (a busy store has hundreds waiting).

The member's record is what the console's member page and the member's own moderation page
list: their items of every kind and the flags on them and by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from community.content import CONTENT_KINDS, REJECTED, VISIBLE, ContentKind
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
from community.schema_indexes import WAITING_CONDITION
from instore.clock import from_iso


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

# Items the queue page shows at once, the longest waiting first. Each carries its text, every
# open report and its own decision form; fifty is a long sitting's work, and the page stays well
# under the console's 200 ms even when hundreds wait (the rest are a "Next" away).
QUEUE_PAGE = 50

# Each item's open flags, counted once per page (materialised: the union reads it ten times).
_OPEN_FLAGS = """open_flags AS (
    SELECT item_kind, item_id, MIN(created_at) AS first_flag FROM flags
    WHERE resolved_at IS NULL GROUP BY item_kind, item_id)"""


def _waiting_selects(kind: ContentKind) -> tuple[str, str]:
    """The kind's waiting items as (kind, id, since): held or hidden ones, through the partial
    index (the WHERE must read ``WAITING_CONDITION`` exactly), and visible ones with open flags.

    ``since`` is the oldest open flag, else the item's last edit or creation (``queue_entry``).
    Rejected items are never waiting, even with flags filed before the decision.
    """
    key, table = f"t.{kind.key}", kind.table
    stamp = f"COALESCE(o.first_flag, t.{kind.stamp}, t.{created_column(kind)})"
    held_or_hidden = (
        f"SELECT '{kind.kind}' AS kind, {key} AS id, {stamp} AS since "  # noqa: S608
        f"FROM {table} AS t "
        f"LEFT JOIN open_flags AS o ON o.item_kind = '{kind.kind}' AND o.item_id = {key} "
        f"WHERE t.{WAITING_CONDITION}"
    )
    flagged = (
        f"SELECT '{kind.kind}', o.item_id, o.first_flag FROM open_flags AS o "  # noqa: S608
        f"JOIN {table} AS t ON {key} = o.item_id "
        f"WHERE o.item_kind = '{kind.kind}' AND t.status = '{VISIBLE}'"
    )
    return held_or_hidden, flagged


# Every waiting item of every kind as (kind, id, since): one statement, so SQLite sorts and pages
# them and only a page's items are read whole. Table and column names come from CONTENT_KINDS.
WAITING_SQL = f"WITH {_OPEN_FLAGS}\n" + "\nUNION ALL\n".join(
    sql for kind in CONTENT_KINDS.values() for sql in _waiting_selects(kind)
)


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue: its entries, how many wait in all, and where it is (1-based)."""

    entries: list[QueueEntry]
    total: int
    page: int
    pages: int


def waiting_count(db: sqlite_utils.Database) -> int:
    """How many items wait for a moderator."""
    row = db.conn.execute(f"SELECT COUNT(*) FROM ({WAITING_SQL})").fetchone()  # noqa: S608
    return int(row[0])


def _waiting_keys(db: sqlite_utils.Database, limit: int, offset: int) -> list[tuple[str, int, str]]:
    """(kind, id, since) of ``limit`` waiting items from ``offset``, the longest waiting first."""
    rows = db.conn.execute(
        f"SELECT kind, id, since FROM ({WAITING_SQL}) "  # noqa: S608 - fixed names
        "ORDER BY since, kind, id LIMIT ? OFFSET ?",
        (limit, offset),
    ).fetchall()
    return [(str(kind), int(item_id), str(since)) for kind, item_id, since in rows]


def _items(db: sqlite_utils.Database, kind: ContentKind, ids: list[int]) -> dict[int, Item]:
    """The kind's items with these ids (a page's worth), with their authors' names."""
    marks = ", ".join("?" for _ in ids)
    cursor = db.conn.execute(
        f"SELECT t.*, m.display_name FROM {kind.table} AS t "  # noqa: S608 - fixed names
        f"LEFT JOIN members AS m ON m.id = t.{kind.author} WHERE t.{kind.key} IN ({marks})",
        ids,
    )
    columns = [column[0] for column in cursor.description][:-1]
    found: dict[int, Item] = {}
    for *values, name in cursor.fetchall():
        item = item_from_row(kind, dict(zip(columns, values, strict=True)), name)
        found[item.id] = item
    return found


def _open_flags_of(db: sqlite_utils.Database, kind: str, ids: list[int]) -> dict[int, list[Flag]]:
    """The open flags on these items of one kind, each item's oldest first."""
    marks = ", ".join("?" for _ in ids)
    rows = db.query(
        f"{FLAGS_SQL} WHERE f.item_kind = ? AND f.item_id IN ({marks}) "
        "AND f.resolved_at IS NULL ORDER BY f.item_id, f.created_at, f.id",
        [kind, *ids],
    )
    found: dict[int, list[Flag]] = {}
    for row in rows:
        flag = flag_from_row(row)
        found.setdefault(flag.item_id, []).append(flag)
    return found


def queue(db: sqlite_utils.Database, limit: int | None = None, offset: int = 0) -> list[QueueEntry]:
    """``limit`` (default ``QUEUE_PAGE``) items waiting for a moderator from ``offset``, the
    longest waiting first.

    The waiting items are chosen and ordered in SQL; then only these are read whole: two
    queries per kind on the page, however long the queue.
    """
    keys = _waiting_keys(db, QUEUE_PAGE if limit is None else limit, offset)
    by_kind: dict[str, list[int]] = {}
    for kind, item_id, _since in keys:
        by_kind.setdefault(kind, []).append(item_id)
    items = {kind: _items(db, CONTENT_KINDS[kind], ids) for kind, ids in by_kind.items()}
    flags = {kind: _open_flags_of(db, kind, ids) for kind, ids in by_kind.items()}
    entries = []
    for kind, item_id, since in keys:
        item = items[kind].get(item_id)
        if item is not None:  # deleted between the two reads
            entries.append(QueueEntry(item, flags[kind].get(item_id, []), since))
    return entries


def queue_page(db: sqlite_utils.Database, page: int, per_page: int | None = None) -> QueuePage:
    """Page ``page`` (1-based, ``per_page`` entries, default ``QUEUE_PAGE``) of the queue; before
    the first page reads as the first, past the last as the last."""
    per_page = QUEUE_PAGE if per_page is None else per_page
    total = waiting_count(db)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    return QueuePage(queue(db, per_page, (page - 1) * per_page), total, page, pages)


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
