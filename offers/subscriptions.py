"""The push_subscriptions table: which browsers a member has allowed to receive Web Push.

The portal stores a subscription when the store page sends one; the Web Push channel reads them
to push, and records each outcome here so that subscriptions the push service has forgotten, or
that keep failing, stop costing a request per notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from instore.clock import to_iso
from instore.db import transaction
from offers.channels.webpush import Subscription

# A shopper has a phone or two and a browser or two on each; more than this is a script filling
# the table, and every subscription costs one request per notification. The oldest go first.
MAX_SUBSCRIPTIONS_PER_MEMBER = 8
USER_AGENT_LENGTH = 200  # enough to tell "Chrome on Android" from "Firefox on a laptop"


@dataclass(frozen=True)
class StoredSubscription:
    """One row of push_subscriptions."""

    id: int
    member_id: int
    subscription: Subscription
    user_agent: str
    created_at: str
    last_success_at: str | None
    failures: int


_COLUMNS = (
    "id, member_id, endpoint, p256dh, auth, user_agent, created_at, last_success_at, failures"
)


def _from_row(row: tuple[Any, ...]) -> StoredSubscription:
    id_, member_id, endpoint, p256dh, auth, user_agent, created_at, last_success, failures = row
    return StoredSubscription(
        id=id_,
        member_id=member_id,
        subscription=Subscription(endpoint=endpoint, p256dh=p256dh, auth=auth),
        user_agent=user_agent,
        created_at=created_at,
        last_success_at=last_success,
        failures=failures,
    )


def save_subscription(
    db: sqlite_utils.Database,
    member_id: int,
    subscription: Subscription,
    *,
    user_agent: str,
    now: datetime,
) -> int:
    """Store (or refresh) a browser's subscription for ``member_id`` and return its id.

    The endpoint identifies one browser profile, so saving it again updates its keys, moves it to
    whoever is shopping on that browser now and forgets its past failures.
    """
    with transaction(db):
        row = db.conn.execute(
            """INSERT INTO push_subscriptions
                   (member_id, endpoint, p256dh, auth, user_agent, created_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (endpoint) DO UPDATE SET
                   member_id = excluded.member_id, p256dh = excluded.p256dh,
                   auth = excluded.auth, user_agent = excluded.user_agent, failures = 0
               RETURNING id""",
            (
                member_id,
                subscription.endpoint,
                subscription.p256dh,
                subscription.auth,
                user_agent[:USER_AGENT_LENGTH],
                to_iso(now),
            ),
        ).fetchone()
        db.conn.execute(
            """DELETE FROM push_subscriptions WHERE member_id = ? AND id NOT IN (
                   SELECT id FROM push_subscriptions WHERE member_id = ?
                   ORDER BY id DESC LIMIT ?)""",
            (member_id, member_id, MAX_SUBSCRIPTIONS_PER_MEMBER),
        )
    return int(row[0])


def remove_subscription(db: sqlite_utils.Database, member_id: int, endpoint: str) -> bool:
    """Forget a member's own subscription (they turned notifications off); False if none."""
    cursor = db.conn.execute(
        "DELETE FROM push_subscriptions WHERE member_id = ? AND endpoint = ?",
        (member_id, endpoint),
    )
    return cursor.rowcount > 0


def member_subscriptions(db: sqlite_utils.Database, member_id: int) -> list[StoredSubscription]:
    """A member's subscriptions, oldest first."""
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM push_subscriptions WHERE member_id = ? ORDER BY id",  # noqa: S608
        (member_id,),
    ).fetchall()
    return [_from_row(row) for row in rows]


def delete_subscription(db: sqlite_utils.Database, subscription_id: int) -> None:
    """Drop a subscription the push service no longer knows (or that kept failing)."""
    db.conn.execute("DELETE FROM push_subscriptions WHERE id = ?", (subscription_id,))


def record_success(db: sqlite_utils.Database, subscription_id: int, now: datetime) -> None:
    """A push got through: the failure count starts again from zero."""
    db.conn.execute(
        "UPDATE push_subscriptions SET failures = 0, last_success_at = ? WHERE id = ?",
        (to_iso(now), subscription_id),
    )


def record_failure(db: sqlite_utils.Database, subscription_id: int, drop_after: int) -> bool:
    """Count one more failure in a row; delete the subscription at ``drop_after``.

    Returns True if the subscription was deleted. The caller owns the transaction.
    """
    db.conn.execute(
        "UPDATE push_subscriptions SET failures = failures + 1 WHERE id = ?", (subscription_id,)
    )
    cursor = db.conn.execute(
        "DELETE FROM push_subscriptions WHERE id = ? AND failures >= ?",
        (subscription_id, drop_after),
    )
    return cursor.rowcount > 0
