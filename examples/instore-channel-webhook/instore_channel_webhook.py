"""An example instore plug-in: a delivery channel that POSTs each notification to a URL as JSON.

What a webhook is for: a chat-app bridge, an SMS gateway or a CRM that wants each offer and
friend note as it is sent. The offers worker hands the channel every new notification once
(it keeps a cursor per channel); the channel POSTs it and records the attempt in
``deliveries``, so the console's "why" views show what happened.

Configuration is by environment (a plug-in cannot add keys to instore.toml, and ``INSTORE_*``
names are reserved for instore's own settings); on a box, a systemd drop-in for
``instore-offers.service``::

    [Service]
    Environment=WEBHOOK_CHANNEL_URL=https://bridge.example.com/instore
    Environment=WEBHOOK_CHANNEL_SECRET=a-long-random-string

With no URL the plug-in offers no channel, so installing it changes nothing until configured.
A store can try it on some members first: ``instore flags set channel.webhook 10``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils

from instore import hookimpl
from instore.config import Config
from offers.notifications import Notification

logger = logging.getLogger(__name__)

CHANNEL_NAME = "webhook"
URL_VARIABLE = "WEBHOOK_CHANNEL_URL"
SECRET_VARIABLE = "WEBHOOK_CHANNEL_SECRET"  # noqa: S105 - a variable name, not a secret
SIGNATURE_HEADER = "X-Instore-Signature"
# The worker delivers one notification at a time per channel: a receiver slower than this is
# recorded as failed rather than holding up the next shopper's notification.
TIMEOUT_SECONDS = 5.0
USER_AGENT = "instore-channel-webhook/0.1"


def payload(notification: Notification, store_id: str) -> dict[str, Any]:
    """What the receiver gets: the notification as phones see it, plus store and member ids.

    The member id is the store's own number for the member, enough for a bridge that keeps its
    own mapping to a phone number or chat; no name, email or MAC leaves the box.
    """
    return {
        "store": store_id,
        "member": notification.member_id,
        "notification": notification.to_json(),
    }


def signature(secret: bytes, body: bytes) -> str:
    """``sha256=<hex HMAC of the body>``, so the receiver can check the POST came from us."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookChannel:
    """POST each notification to ``url`` (see the module docstring)."""

    name = CHANNEL_NAME

    def __init__(self, url: str, secret: bytes = b"", store_id: str = "") -> None:
        self.url = url
        self.secret = secret
        self.store_id = store_id
        self.target = urlsplit(url).netloc  # recorded in deliveries: the host, never a token

    def deliver(self, db: sqlite_utils.Database, notification: Notification) -> None:
        """POST one notification; record "sent" or "failed" in ``deliveries``; never raise."""
        body = json.dumps(payload(notification, self.store_id), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                status, detail = "sent", f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            status, detail = "failed", f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            status, detail = "failed", str(getattr(exc, "reason", exc))
        if status == "failed":
            logger.warning("webhook delivery failed: %s", detail)
        record_delivery(db, notification.id, self.target, status, detail)


def record_delivery(
    db: sqlite_utils.Database, notification_id: int, target: str, status: str, detail: str
) -> None:
    """One row per notification in ``deliveries`` (the offers package's table of attempts)."""
    db.conn.execute(
        """INSERT INTO deliveries (notification_id, channel, target, ts, status, detail)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(notification_id, channel, target) DO UPDATE SET
             ts = excluded.ts, status = excluded.status, detail = excluded.detail""",
        (
            notification_id,
            CHANNEL_NAME,
            target,
            datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            status,
            detail,
        ),
    )


@hookimpl
def delivery_channels(config: Config) -> list[Any]:
    """The webhook channel, when WEBHOOK_CHANNEL_URL is set; otherwise none."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        return []
    if not url.startswith(("http://", "https://")):
        logger.error("%s must be an http:// or https:// URL; webhook channel off", URL_VARIABLE)
        return []
    secret = os.environ.get(SECRET_VARIABLE, "").encode()
    return [WebhookChannel(url, secret, config["store"]["id"])]
