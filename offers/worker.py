"""``instore offers run``: the worker that turns presence and portal events into notifications.

It follows the outbox as consumer ``offers``. Each event is handled in one transaction with the
cursor's advance (``instore.events.consume``), so its decisions, notifications and acknowledgement
land together; a crash replays the event, and the engine's idempotency by event id makes the
replay a no-op. Delivery channels (Web Push, plug-ins) run in a second thread with a cursor each
over the notifications table, so a slow push service never delays the next decision or the live
feed, which the portal streams straight from that table.

| event          | what the worker does                                                       |
|----------------|----------------------------------------------------------------------------|
| store_enter    | records the visit, then decides ``revisit`` offers                         |
| zone_enter     | decides ``zone_enter`` offers, then notes friends (first zone of a visit)  |
| zone_dwell     | decides ``zone_dwell`` offers                                              |
| portal.login   | decides ``portal_login`` offers                                            |
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from instore import events, flags, systemd
from instore.clock import from_iso, to_iso, utcnow
from instore.config import Config
from instore.db import atomic
from instore.events import Event
from offers import attributes, friends
from offers.channels import Channel
from offers.codes import new_code
from offers.decide import Decision, decide
from offers.model import Offer, list_offers
from offers.notifications import Notification, create_notification, get_notification
from offers.pricing import personal_price_cents

logger = logging.getLogger(__name__)

CONSUMER = "offers"
EVENT_KINDS: tuple[str, ...] = ("store_enter", "zone_enter", "zone_dwell", "portal.login")
# The outbox kinds the engine's triggers are called by.
TRIGGER_FOR_EVENT: dict[str, str] = {
    "zone_enter": "zone_enter",
    "zone_dwell": "zone_dwell",
    "store_enter": "revisit",
    "portal.login": "portal_login",
}
# An event older than this when the worker reaches it (it was stopped, or far behind) is not
# decided: "you are in Shoes" ten minutes late is worse than nothing. Generous enough for a
# worker restart and a backlog of a few seconds.
MAX_EVENT_AGE_SECONDS = 120
# Revisit triggers look back at most this far; longer windows are clipped (a year of visits).
MAX_REVISIT_WINDOW_DAYS = 366
# Unique codes are 40 random bits; a clash is ~never, but a retry costs nothing.
CODE_ATTEMPTS = 3
# Channels get notifications in batches this size (bounds memory and one channel's turn).
DELIVERY_BATCH = 100


def engine_event(
    db: sqlite_utils.Database, event: Event, member_id: int, happened: datetime
) -> Event:
    """The outbox event as the engine's triggers see it: a store_enter is a possible revisit,
    carrying the member's arrivals (from ``visits``, in ``db``) up to this one."""
    kind = TRIGGER_FOR_EVENT[event.kind]
    payload = dict(event.payload)
    if kind == "revisit":
        since = happened - timedelta(days=MAX_REVISIT_WINDOW_DAYS)
        times = attributes.visit_times(db, member_id, since, happened)
        payload["visit_times"] = [to_iso(moment) for moment in times]
        payload["ts"] = to_iso(happened)
    return Event(event.id, event.ts, kind, payload)


@dataclass(frozen=True)
class WorkerSettings:
    """The worker's view of the configuration."""

    store_id: str = "S001"
    store_timezone: str = "UTC"
    global_cooldown_seconds: int = 900
    friend_cooldown_seconds: int = 3600
    friend_quiet_hours: str = ""
    code_valid_hours: int = 72
    poll_seconds: float = 0.1

    @classmethod
    def from_config(cls, config: Config) -> WorkerSettings:
        offers = config["offers"]
        return cls(
            store_id=config["store"]["id"],
            store_timezone=config["store"]["timezone"],
            global_cooldown_seconds=offers["global_cooldown_seconds"],
            friend_cooldown_seconds=offers["friend_cooldown_seconds"],
            friend_quiet_hours=offers["friend_quiet_hours"],
            code_valid_hours=offers["code_valid_hours"],
            poll_seconds=offers["poll_ms"] / 1000,
        )


class OffersWorker:
    """Decides each event as it comes and writes what members should see."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        settings: WorkerSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._offers: list[Offer] = []
        self._offers_version: tuple[Any, ...] | None = None
        self.skipped = 0  # events passed over after an error (see handle_or_skip)

    # -- offers ----------------------------------------------------------------------------
    def live_offers(self) -> list[Offer]:
        """The live offers, re-read only when the offers table changed (count + last update)."""
        version = self.db.conn.execute(
            "SELECT COUNT(*), MAX(updated_at), MAX(id) FROM offers WHERE status = 'live'"
        ).fetchone()
        if version != self._offers_version:
            self._offers = list_offers(self.db, "live")
            self._offers_version = tuple(version)
        return self._offers

    # -- one event -------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        """Decide one outbox event: offers first, then (on a zone entry) friend notes."""
        member_id = event.payload.get("member_id")
        if member_id is None or event.kind not in TRIGGER_FOR_EVENT:
            return  # anonymous devices count towards footfall only
        member_id = int(member_id)
        now = self.clock()
        happened = from_iso(event.payload.get("ts") or event.ts)
        if event.kind == "store_enter":
            attributes.record_visit(self.db, member_id, event.id, happened)
        age = (now - happened).total_seconds()
        if age > MAX_EVENT_AGE_SECONDS:
            logger.info(
                "event too old to act on",
                extra={"event_id": event.id, "kind": event.kind, "age_s": round(age)},
            )
            return
        decision_event = engine_event(self.db, event, member_id, happened)
        member = attributes.member_attributes(self.db, member_id, now)
        decisions = decide(
            self.db,
            decision_event,
            self.live_offers(),
            member,
            now,
            self.settings.store_timezone,
            self.settings.global_cooldown_seconds,
        )
        for decision in decisions:
            if decision.sent and not self._already_notified(decision):
                self._notify_offer(decision, member, event, now)
        if event.kind == "zone_enter":
            friends.note_friends(
                self.db,
                event,
                now,
                store_timezone=self.settings.store_timezone,
                cooldown_seconds=self.settings.friend_cooldown_seconds,
                quiet_hours=self.settings.friend_quiet_hours,
            )

    def _already_notified(self, decision: Decision) -> bool:
        """A replayed event returns its logged decisions; their notifications exist already."""
        row = self.db.conn.execute(
            "SELECT 1 FROM notifications WHERE decision_id = ?", (decision.id,)
        ).fetchone()
        return row is not None

    def _notify_offer(
        self, decision: Decision, member: dict[str, Any], event: Event, now: datetime
    ) -> int:
        """Write the notification a sent decision promises: text, personal price, code, expiry."""
        offer = next(o for o in self.live_offers() if o.id == decision.offer_id)
        variant: dict[str, Any] = next(
            (v for v in offer.variants if v["name"] == decision.variant), {}
        )
        # A points offer promises points, not a price: the phone shows no price for it.
        price = (
            None
            if offer.benefit_kind == "points"
            else personal_price_cents(offer, member["tier"], member["interests"])
        )
        expires = min(now + timedelta(hours=self.settings.code_valid_hours), offer.valid_to)
        data = {
            "product": offer.product,
            "image": offer.image,
            "zone": event.payload.get("zone"),
            "base_price_cents": offer.base_price_cents,
            "benefit_kind": offer.benefit_kind,
            "benefit_value": offer.benefit_value,
            "benefit_quantity": offer.benefit_quantity,
        }
        for attempt in range(CODE_ATTEMPTS):
            try:
                return create_notification(
                    self.db,
                    member_id=decision.member_id,
                    kind="offer",
                    title=variant.get("title") or offer.title,
                    body=variant.get("body") or offer.body,
                    now=now,
                    data=data,
                    decision_id=decision.id,
                    offer_id=offer.id,
                    variant=decision.variant,
                    price_cents=price,
                    code=new_code(self.settings.store_id),
                    expires_at=expires,
                )
            except sqlite3.IntegrityError:
                if attempt == CODE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    # -- the loop --------------------------------------------------------------------------
    def run_once(self) -> int:
        """Handle the next batch of events; return how many were handled."""
        return events.consume(self.db, CONSUMER, self.handle_or_skip, EVENT_KINDS)

    def handle_or_skip(self, event: Event) -> None:
        """``handle``, but an event that breaks the engine is logged and passed over.

        Otherwise one bad event would stop offers for the whole store: the worker would crash,
        restart and crash again on the same event for ever. Its partial writes are rolled back
        (a savepoint); a locked database is not a bad event, so that still stops the batch
        for a retry.
        """
        try:
            with atomic(self.db, "offers_event"):
                self.handle(event)
        except sqlite3.OperationalError:
            raise
        except Exception:
            self.skipped += 1
            logger.exception(
                "event skipped after an error in the offers engine",
                extra={"event_id": event.id, "kind": event.kind},
            )

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Handle events as they are committed, until ``should_stop``."""
        watchdog = systemd.watchdog_interval()
        last_ping = 0.0
        last_version = None
        systemd.notify("READY=1")
        while not should_stop():
            version = self.db.conn.execute("PRAGMA data_version").fetchone()[0]
            if version != last_version:
                try:
                    while self.run_once():
                        pass
                    last_version = version
                except sqlite3.OperationalError as exc:  # locked for longer than busy_timeout
                    logger.warning("offers worker will retry", extra={"error": str(exc)})
            if watchdog is not None and time.monotonic() - last_ping >= watchdog:
                systemd.notify("WATCHDOG=1")
                last_ping = time.monotonic()
            time.sleep(self.settings.poll_seconds)


class Deliverer:
    """Hands every new notification to each delivery channel once, in its own thread.

    Each channel's position is an outbox-style cursor (``offers.channel.<name>``) over
    notification ids, advanced after each notification is delivered: a restart neither skips
    nor repeats one (channels record their attempts in ``deliveries`` besides).
    """

    def __init__(
        self, db: sqlite_utils.Database, channels: Sequence[Channel], poll_seconds: float
    ) -> None:
        self.db = db
        self.channels = list(channels)
        self.poll_seconds = poll_seconds

    def start_at_end(self) -> None:
        """Channels added to a running store start with new notifications, not the backlog."""
        last = self.db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM notifications").fetchone()
        for channel in self.channels:
            consumer = f"offers.channel.{channel.name}"
            # Only a channel without a cursor is new. A cursor at 0 is a channel that started
            # before any notification existed: what was written since is its backlog to send.
            known = self.db.conn.execute(
                "SELECT 1 FROM cursors WHERE consumer = ?", (consumer,)
            ).fetchone()
            if known is None:
                events.advance(self.db, consumer, int(last[0]))

    def deliver_once(self) -> int:
        """Deliver the next batch to every channel; return how many deliveries were made."""
        done = 0
        for channel in self.channels:
            consumer = f"offers.channel.{channel.name}"
            after = events.cursor_position(self.db, consumer)
            ids = [
                row[0]
                for row in self.db.conn.execute(
                    "SELECT id FROM notifications WHERE id > ? ORDER BY id LIMIT ?",
                    (after, DELIVERY_BATCH),
                )
            ]
            flag = f"channel.{channel.name}"
            for notification_id in ids:
                notification = get_notification(self.db, notification_id)
                # A store trying a channel on some members first sets flag channel.<name>.
                if notification is not None and flags.is_enabled(
                    self.db, flag, notification.member_id, default=True
                ):
                    self._deliver(channel, notification)
                events.advance(self.db, consumer, notification_id)
                done += 1
        return done

    def _deliver(self, channel: Channel, notification: Notification) -> None:
        try:
            channel.deliver(self.db, notification)
        except Exception:  # a plug-in's bug must not stop the other channels
            logger.exception(
                "delivery channel failed",
                extra={"channel": channel.name, "notification_id": notification.id},
            )

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Deliver as notifications are committed, until ``should_stop``."""
        last_version = None
        while not should_stop():
            version = self.db.conn.execute("PRAGMA data_version").fetchone()[0]
            if version != last_version:
                try:
                    while self.deliver_once():
                        pass
                    last_version = version
                except sqlite3.OperationalError as exc:
                    logger.warning("delivery will retry", extra={"error": str(exc)})
            time.sleep(self.poll_seconds)


def start_deliverer(
    open_db: Callable[[], sqlite_utils.Database],
    channels: Sequence[Channel],
    poll_seconds: float,
    should_stop: Callable[[], bool],
) -> threading.Thread | None:
    """Run the channels in a daemon thread with its own connection; None when there are none."""
    if not channels:
        return None

    def target() -> None:
        deliverer = Deliverer(open_db(), channels, poll_seconds)
        deliverer.start_at_end()
        deliverer.run(should_stop)

    thread = threading.Thread(target=target, name="offers-delivery", daemon=True)
    thread.start()
    return thread
