"""Delivery channels: how a decided offer or friend note reaches a shopper's phone.

A channel is anything with a ``name`` and a ``deliver`` method, registered through the
``delivery_channels`` hook. The offers worker hands it each new notification once (it keeps a
cursor per channel, so a restart neither skips nor repeats one); the channel records what it did
in ``deliveries``. The live feed is not a channel: the portal streams the notifications table.
"""

from __future__ import annotations

from typing import Protocol

import sqlite_utils

from offers.notifications import Notification


class Channel(Protocol):
    """A way to reach a phone outside the open store page (Web Push, SMS, a chat app …)."""

    name: str

    def deliver(self, db: sqlite_utils.Database, notification: Notification) -> None:
        """Send one notification and record each attempt in ``deliveries``; never raise for a
        failed send (log it in ``deliveries`` as failed or gone instead)."""
        ...
