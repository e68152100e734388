"""The notifications table: what a member's phone shows, written by the offers worker.

The portal's live feed (Server-Sent Events) and every delivery channel read from here; nothing
else carries a notification between processes. A notification's id is its SSE event id, so a
phone that reconnects with ``Last-Event-ID`` gets exactly the ones it missed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from instore.clock import to_iso

# How many notifications the feed sends at most on one (re)connect; older ones stay on the
# account page. A phone that was away all day needs the last few, not hundreds.
FEED_BACKLOG = 20


@dataclass(frozen=True)
class Notification:
    """One message for one member: an offer (with its code and personal price) or a friend note."""

    id: int
    ts: str
    member_id: int
    kind: str  # "offer" or "friend"
    title: str
    body: str
    data: dict[str, Any]
    decision_id: int | None = None
    offer_id: int | None = None
    variant: str | None = None
    price_cents: int | None = None
    code: str | None = None
    expires_at: str | None = None
    opened_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """What the feed and Web Push carry: everything a phone needs to show it, no member id."""
        return {
            "id": self.id,
            "ts": self.ts,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "offer_id": self.offer_id,
            "price_cents": self.price_cents,
            "code": self.code,
            "expires_at": self.expires_at,
            "opened": self.opened_at is not None,
            **self.data,
        }


_COLUMNS = (
    "id, ts, member_id, kind, title, body, data, decision_id, offer_id, variant, price_cents, "
    "code, expires_at, opened_at"
)


def _from_row(row: tuple[Any, ...]) -> Notification:
    values = list(row)
    values[6] = json.loads(values[6] or "{}")
    return Notification(*values)


def create_notification(
    db: sqlite_utils.Database,
    *,
    member_id: int,
    kind: str,
    title: str,
    body: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    decision_id: int | None = None,
    offer_id: int | None = None,
    variant: str | None = None,
    price_cents: int | None = None,
    code: str | None = None,
    expires_at: datetime | None = None,
) -> int:
    """Store a notification and return its id (the caller owns the transaction)."""
    cursor = db.conn.execute(
        """INSERT INTO notifications (ts, member_id, kind, title, body, data, decision_id,
                                      offer_id, variant, price_cents, code, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            to_iso(now),
            member_id,
            kind,
            title,
            body,
            json.dumps(data or {}, sort_keys=True),
            decision_id,
            offer_id,
            variant,
            price_cents,
            code,
            None if expires_at is None else to_iso(expires_at),
        ),
    )
    return int(cursor.lastrowid or 0)


def get_notification(db: sqlite_utils.Database, notification_id: int) -> Notification | None:
    """One notification by id, or None."""
    row = db.conn.execute(
        f"SELECT {_COLUMNS} FROM notifications WHERE id = ?",  # noqa: S608
        (notification_id,),
    ).fetchone()
    return None if row is None else _from_row(row)


def member_notification_by_code(
    db: sqlite_utils.Database, member_id: int, code: str
) -> Notification | None:
    """The member's own notification carrying this redemption code, else None."""
    row = db.conn.execute(
        f"SELECT {_COLUMNS} FROM notifications WHERE code = ? AND member_id = ?",  # noqa: S608
        (code, member_id),
    ).fetchone()
    return None if row is None else _from_row(row)


def notifications_after(
    db: sqlite_utils.Database, member_id: int, after_id: int, limit: int = FEED_BACKLOG
) -> list[Notification]:
    """A member's notifications newer than ``after_id``, oldest first, at most ``limit``.

    With ``after_id`` 0 (a first connection) these are the latest ``limit``, so a phone is not
    flooded with a month of history.
    """
    rows = db.conn.execute(
        f"""SELECT * FROM (SELECT {_COLUMNS} FROM notifications
              WHERE member_id = ? AND id > ? ORDER BY id DESC LIMIT ?)
            ORDER BY id""",  # noqa: S608
        (member_id, after_id, limit),
    ).fetchall()
    return [_from_row(row) for row in rows]


def recent_notifications(
    db: sqlite_utils.Database, member_id: int, limit: int = FEED_BACKLOG
) -> list[Notification]:
    """A member's latest notifications, newest first (the store page without JavaScript)."""
    rows = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM notifications WHERE member_id = ?
            ORDER BY id DESC LIMIT ?""",  # noqa: S608
        (member_id, limit),
    ).fetchall()
    return [_from_row(row) for row in rows]


def mark_opened(
    db: sqlite_utils.Database, notification_id: int, member_id: int, now: datetime
) -> bool:
    """Record the first open of a member's own notification; False if it is not theirs.

    Only the first open counts (the funnel counts notifications opened, not taps).
    """
    cursor = db.conn.execute(
        """UPDATE notifications SET opened_at = COALESCE(opened_at, ?)
           WHERE id = ? AND member_id = ?""",
        (to_iso(now), notification_id, member_id),
    )
    return cursor.rowcount > 0
