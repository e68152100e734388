"""The events outbox: every process appends what happened; each consumer reads from its cursor.

Delivery is at-least-once: a consumer's handler runs, then its cursor advances. A crash between the
two replays the batch, so handlers must be idempotent by event id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from instore.clock import now_iso
from instore.db import transaction

DEFAULT_BATCH = 200  # bounds memory and lock time; a busy store makes ~10 events/s


@dataclass(frozen=True)
class Event:
    id: int
    ts: str
    kind: str
    payload: dict[str, Any]


def append(db: sqlite_utils.Database, kind: str, payload: dict[str, Any] | None = None) -> int:
    """Record an event and return its id."""
    cursor = db.conn.execute(
        "INSERT INTO events (ts, kind, payload) VALUES (?, ?, ?)",
        (now_iso(), kind, json.dumps(payload or {}, sort_keys=True)),
    )
    return int(cursor.lastrowid or 0)


def cursor_position(db: sqlite_utils.Database, consumer: str) -> int:
    row = db.conn.execute("SELECT last_id FROM cursors WHERE consumer = ?", (consumer,)).fetchone()
    return int(row[0]) if row else 0


def read_batch(
    db: sqlite_utils.Database,
    consumer: str,
    kinds: Iterable[str] | None = None,
    limit: int = DEFAULT_BATCH,
) -> list[Event]:
    """The next events after ``consumer``'s cursor, oldest first, optionally of some kinds only."""
    after = cursor_position(db, consumer)
    sql = "SELECT id, ts, kind, payload FROM events WHERE id > ?"
    params: list[Any] = [after]
    kind_list = list(kinds or [])
    if kind_list:
        sql += f" AND kind IN ({', '.join('?' for _ in kind_list)})"
        params.extend(kind_list)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    return [
        Event(row[0], row[1], row[2], json.loads(row[3]))
        for row in db.conn.execute(sql, params).fetchall()
    ]


def advance(db: sqlite_utils.Database, consumer: str, last_id: int) -> None:
    """Move ``consumer``'s cursor forward to ``last_id`` (never backwards)."""
    db.conn.execute(
        """INSERT INTO cursors (consumer, last_id, updated_at) VALUES (?, ?, ?)
           ON CONFLICT(consumer) DO UPDATE SET
             last_id = MAX(last_id, excluded.last_id), updated_at = excluded.updated_at""",
        (consumer, last_id, now_iso()),
    )


def consume(
    db: sqlite_utils.Database,
    consumer: str,
    handler: Callable[[Event], None],
    kinds: Iterable[str] | None = None,
    limit: int = DEFAULT_BATCH,
) -> int:
    """Hand the next batch to ``handler`` one event at a time; return how many were handled.

    The cursor advances after each handled event, in the same transaction as whatever the handler
    wrote, so an event's effects and its acknowledgement land together.
    """
    handled = 0
    for event in read_batch(db, consumer, kinds, limit):
        with transaction(db):
            handler(event)
            advance(db, consumer, event.id)
        handled += 1
    return handled
