"""The Web Push delivery channel: a notification to every browser its member subscribed.

The offers worker hands each new notification to ``WebPushChannel.deliver`` once. Each of the
member's subscriptions gets one push (sent by pywebpush through ``webpush.send_push``) and one
``deliveries`` row saying what happened, so a manager can see why a phone stayed silent. The
channel keeps the subscription list clean: the push service's 404/410 deletes a subscription at
once, and MAX_FAILURES failures in a row delete it too.

There is no retry queue on purpose: a notification is about this moment in the store, and it is
on the store page (live feed) anyway, so a push that fails now is recorded, not repeated later.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import sqlite_utils

from instore import clock
from instore.config import Config
from instore.db import transaction
from offers import subscriptions
from offers.channels.webpush import (
    InvalidSubscription,
    PayloadTooLarge,
    PushSession,
    SubscriptionGone,
    VapidKeys,
    WebPushError,
    check_contact,
    encode_payload,
    ensure_vapid_keys,
    parse_subscription,
    send_push,
)
from offers.notifications import Notification

logger = logging.getLogger(__name__)

CHANNEL_NAME = "webpush"
# Failures in a row (5xx, 429, no answer, a refusal) before a subscription is deleted. A push
# service that is down for a moment costs a few notifications, not the subscription; one that
# has refused five in a row is not coming back, and each attempt costs the worker a timeout.
MAX_FAILURES = 5
# How long a push service keeps a message for a phone that is off or out of signal. An offer is
# about this visit, and most visits are shorter than an hour; arriving later it is noise (it stays
# on the store and account pages). "Your friend is in Shoes" is stale within minutes.
OFFER_TTL_SECONDS = 3600
FRIEND_TTL_SECONDS = 600
# RFC 8030 §5.3: phones in battery saving (Android's Doze) only wake for "high". A friend note is
# a person, right now, nearby: it wakes the phone. An offer is marketing: it waits for the phone
# to wake by itself, which it does as soon as the shopper looks at it.
FRIEND_URGENCY = "high"
OFFER_URGENCY = "normal"


def store_url(notification_id: int) -> str:
    """Where tapping the notification goes: the store page, scrolled to this notification.

    The page itself marks it opened (it has the CSRF token the service worker lacks).
    """
    return f"/store#n-{notification_id}"


def push_payload(notification: Notification) -> dict[str, Any]:
    """What the service worker receives: the feed's JSON plus the URL a tap opens."""
    return {**notification.to_json(), "url": store_url(notification.id)}


def time_to_live(notification: Notification, now: datetime) -> int:
    """The TTL for this kind of notification, never past the notification's own expiry."""
    ttl = FRIEND_TTL_SECONDS if notification.kind == "friend" else OFFER_TTL_SECONDS
    if notification.expires_at is not None:
        left = int((clock.from_iso(notification.expires_at) - now).total_seconds())
        ttl = max(0, min(ttl, left))
    return ttl


class WebPushChannel:
    """Pushes notifications to the member's subscribed browsers and records every attempt.

    ``key_dir`` holds the VAPID key (made on first use); ``contact`` is the VAPID subject;
    ``require_https`` refuses stored http endpoints (tests turn it off to push to 127.0.0.1);
    ``session`` is the HTTP client pywebpush posts with, the one seam tests may replace.
    """

    name = CHANNEL_NAME

    def __init__(
        self,
        key_dir: Path,
        contact: str,
        *,
        require_https: bool = True,
        session: requests.Session | None = None,
    ) -> None:
        self.key_dir = key_dir
        self.contact = check_contact(contact)
        self.require_https = require_https
        self.session = session if session is not None else PushSession()
        self._vapid: VapidKeys | None = None

    @classmethod
    def from_config(cls, config: Config) -> WebPushChannel:
        """The channel as the worker runs it: keys beside the database, [offers] vapid_subject."""
        return cls(config.var_dir, config["offers"]["vapid_subject"])

    def vapid_keys(self) -> VapidKeys:
        """Loaded on first use, so listing channels never writes a key file."""
        if self._vapid is None:
            self._vapid = ensure_vapid_keys(self.key_dir)
        return self._vapid

    def deliver(self, db: sqlite_utils.Database, notification: Notification) -> None:
        """Push ``notification`` to each of its member's subscriptions; never raises for one."""
        stored = subscriptions.member_subscriptions(db, notification.member_id)
        if not stored:
            return
        now = clock.utcnow()
        try:
            vapid = self.vapid_keys()
        except (OSError, WebPushError) as exc:
            # The box's own key is the problem, not any subscription: record, count nothing.
            logger.error("web push is off: %s", exc)
            for row in stored:
                _record_delivery(db, notification.id, row.id, "failed", str(exc), now)
            return
        data = encode_payload(push_payload(notification))
        for row in stored:
            self._push_one(db, notification, row, data, vapid, now)

    def _push_one(
        self,
        db: sqlite_utils.Database,
        notification: Notification,
        row: subscriptions.StoredSubscription,
        data: bytes,
        vapid: VapidKeys,
        now: datetime,
    ) -> None:
        """One subscription: push, then record the outcome and its effect on the subscription."""
        origin = "an unknown push service"
        try:
            subscription = parse_subscription(
                row.subscription.as_info(), require_https=self.require_https
            )
            origin = subscription.origin
            response = send_push(
                subscription,
                data,
                vapid,
                ttl=time_to_live(notification, now),
                urgency=FRIEND_URGENCY if notification.kind == "friend" else OFFER_URGENCY,
                contact=self.contact,
                session=self.session,
            )
        except (SubscriptionGone, InvalidSubscription) as exc:
            with transaction(db):
                subscriptions.delete_subscription(db, row.id)
                _record_delivery(db, notification.id, row.id, "gone", str(exc), now)
            logger.info("deleted push subscription %s: %s", row.id, exc)
            return
        except (PayloadTooLarge, ValueError) as exc:
            # The message's fault, not the subscription's: nothing to count against it.
            _record_delivery(db, notification.id, row.id, "failed", str(exc), now)
            return
        except Exception as exc:  # PushRetryLater, PushRejected, or a bug: one phone, not all
            if not isinstance(exc, WebPushError):
                logger.exception("push to subscription %s (%s) failed", row.id, origin)
            with transaction(db):
                dropped = subscriptions.record_failure(db, row.id, MAX_FAILURES)
                detail = str(exc) or exc.__class__.__name__
                if dropped:
                    detail += f"; subscription deleted after {MAX_FAILURES} failures in a row"
                _record_delivery(db, notification.id, row.id, "failed", detail, now)
            logger.warning("push to subscription %s failed: %s", row.id, detail)
            return
        with transaction(db):
            subscriptions.record_success(db, row.id, now)
            detail = f"HTTP {response.status} from {origin}"
            _record_delivery(db, notification.id, row.id, "sent", detail, now)


def _record_delivery(
    db: sqlite_utils.Database,
    notification_id: int,
    subscription_id: int,
    status: str,
    detail: str,
    now: datetime,
) -> None:
    """One ``deliveries`` row per notification and subscription; a repeat replaces it."""
    db.conn.execute(
        """INSERT INTO deliveries (notification_id, channel, target, ts, status, detail)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (notification_id, channel, target) DO UPDATE SET
               ts = excluded.ts, status = excluded.status, detail = excluded.detail""",
        (notification_id, CHANNEL_NAME, str(subscription_id), clock.to_iso(now), status, detail),
    )
