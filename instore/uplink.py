"""The chain uplink: this store's outbox to headquarters' MQTT broker, and its inbox back.

Every event is published as JSON (``{"store", "id", "ts", "kind", "payload"}``) to
``<prefix>/<store>/events/<kind>`` with QoS 1. The uplink is one more outbox consumer: its cursor
(``cursors``, consumer ``uplink``) moves past an event only once the broker has acknowledged it
(PUBACK) and every event before it, so a crash, a kill or a broker outage sends again whatever
was not acknowledged (at-least-once; headquarters keeps one copy per store and event id).

Rows are not deleted on acknowledgement: the outbox is shared with the other consumers (the
offers worker reads the same events), so "done with a row" is per consumer, and the uplink's
share of it is its cursor. The database is the only buffer: nothing waits in memory beyond the
in-flight window, so a box offline for a week keeps working and sends the week when it can.

One thread does everything: paho's network loop is driven from ``run``, so the acknowledgement
callbacks, the inbox handler and the cursor writes share one SQLite connection without locks.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import sqlite_utils

from instore import events, systemd
from instore.uplink_apply import handle_inbox_message
from instore.uplink_config import (
    CONNECT_TIMEOUT_SECONDS,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    UplinkSettings,
    make_client,
)

log = logging.getLogger(__name__)

CONSUMER = "uplink"  # the uplink's cursor in ``cursors``
# With nothing to send, the network loop waits this long for packets before looking at the
# outbox again: how long a new event may wait before it leaves (a busy store makes ~10/s).
IDLE_WAIT_SECONDS = 0.2
# The window is refilled once it is half empty, so a trickle of acknowledgements does not turn
# into one outbox query per event.
REFILL_FRACTION = 0.5
# On SIGTERM: how long to wait for the events in flight (and "offline") to be acknowledged.
STOP_FLUSH_SECONDS = 5.0
# Each wait before reconnecting is a random part of the backoff, between this fraction and all
# of it, so boxes cut off together do not all come back in the same second.
BACKOFF_JITTER = 0.5
# How often the backlog (a COUNT over the outbox) is measured for `systemctl status`.
STATUS_EVERY_SECONDS = 10.0

MONOTONIC_TIME = time.monotonic  # the one seam tests may patch


def event_message(store_id: str, event_id: int, ts: str, kind: str, payload_text: str) -> bytes:
    """The JSON headquarters receives for one outbox row."""
    try:
        payload = json.loads(payload_text)
    except json.JSONDecodeError:
        payload = {"unparsed": payload_text}  # still delivered: losing an event is worse
    body = {"store": store_id, "id": event_id, "ts": ts, "kind": kind, "payload": payload}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def backlog(db: sqlite_utils.Database) -> int:
    """Events not yet acknowledged by the broker."""
    after = events.cursor_position(db, CONSUMER)
    return int(db.conn.execute("SELECT COUNT(*) FROM events WHERE id > ?", (after,)).fetchone()[0])


class Uplink:
    """Publishes the outbox and applies the inbox over one broker connection at a time."""

    def __init__(self, db: sqlite_utils.Database, settings: UplinkSettings) -> None:
        self.db = db
        self.settings = settings
        self.client: mqtt.Client | None = None
        self.connected = False
        self.connect_started = 0.0
        self.failures = 0  # connection attempts failed in a row
        self.last_error: str | None = None
        self.next_attempt = 0.0
        self.outage_started: float | None = None
        # Set by a callback when the connection must go; acted on once paho's loop returns,
        # as a client must not be torn down from inside its own callbacks.
        self.drop_reason: str | None = None
        # In flight: (event id, mid) in send order; acknowledged mids wait here until every
        # event before theirs is acknowledged too.
        self.in_flight: deque[tuple[int, int]] = deque()
        self.in_flight_mids: set[int] = set()
        self.acked_mids: set[int] = set()
        self.saved_position = events.cursor_position(db, CONSUMER)
        self.acked_position = self.saved_position
        self.send_position = self.saved_position
        self.published = 0  # counters for the status line, the bench and tests
        self.acknowledged = 0
        self.inbox_handled = 0
        self.inbox_refused = False

    # -- callbacks (run inside client.loop, on this thread) ------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self.drop_reason = f"the broker refused the connection: {reason}"
            return
        self.connected = True
        self.failures = 0
        if self.outage_started is not None:
            away = MONOTONIC_TIME() - self.outage_started
            log.info("uplink reconnected", extra={"offline_seconds": round(away, 1)})
        else:
            log.info("uplink connected", extra={"broker": self.settings.broker})
        self.outage_started = None
        client.subscribe(self.settings.inbox_filter, qos=1)
        client.publish(self.settings.status_topic, STATUS_ONLINE, qos=1, retain=True)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            # Events still flow; only headquarters' messages would silently never arrive.
            log.warning(
                "the broker refused the inbox subscription; check its ACL",
                extra={"topic": self.settings.inbox_filter},
            )
            self.inbox_refused = True

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        if mid in self.in_flight_mids:
            self.acked_mids.add(mid)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        kind = message.topic.removeprefix(self.settings.inbox_prefix)
        try:
            handle_inbox_message(self.db, kind, bytes(message.payload))
        except sqlite3.OperationalError:
            # It propagates out of client.loop, so paho sends no PUBACK; the connection is then
            # dropped, and the broker delivers the message again once the store reconnects.
            self.drop_reason = "database busy while applying a message from headquarters"
            raise
        self.inbox_handled += 1

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self.client is client and self.drop_reason is None:
            self.drop_reason = f"disconnected: {reason}"

    # -- connection ----------------------------------------------------------------------------
    def _connect(self) -> None:
        client = make_client(
            self.settings,
            on_connect=self._on_connect,
            on_publish=self._on_publish,
            on_subscribe=self._on_subscribe,
            on_message=self._on_message,
            on_disconnect=self._on_disconnect,
        )
        try:
            client.connect(
                self.settings.host, self.settings.port, keepalive=self.settings.keepalive_seconds
            )
        except OSError as exc:  # refused, unreachable, TLS handshake failed, name not found
            self._failed(f"cannot connect to {self.settings.broker}: {exc}")
            return
        self.client, self.connected = client, False
        self.connect_started = MONOTONIC_TIME()

    def _failed(self, reason: str) -> None:
        """Count a failed attempt and schedule the next one after a jittered, doubling wait."""
        self.last_error = reason
        if self.outage_started is None:
            self.outage_started = MONOTONIC_TIME()
            log.warning("uplink offline; events wait in the database", extra={"reason": reason})
        else:
            log.debug("uplink still offline", extra={"reason": reason})
        wait = min(
            self.settings.reconnect_max_seconds,
            self.settings.reconnect_min_seconds * 2**self.failures,
        )
        self.failures += 1
        self.next_attempt = MONOTONIC_TIME() + wait * random.uniform(BACKOFF_JITTER, 1.0)  # noqa: S311

    def _drop(self, reason: str) -> None:
        """Forget the connection and whatever was in flight; the cursor says where to resume."""
        client, self.client, self.connected = self.client, None, False
        self.drop_reason = None
        if client is not None:
            client.on_disconnect = None
            client.disconnect()  # an error code, not an exception, when already gone
            client.loop(timeout=0)  # let paho close its socket
        self.in_flight.clear()
        self.in_flight_mids.clear()
        self.acked_mids.clear()
        self.send_position = self.acked_position
        self._failed(reason)

    # -- the outbox ----------------------------------------------------------------------------
    def _fill_window(self, client: mqtt.Client) -> int:
        """Publish events after the send position until the window is full; return how many."""
        room = self.settings.batch_size - len(self.in_flight)
        if room < self.settings.batch_size * REFILL_FRACTION:
            return 0
        rows = self.db.conn.execute(
            "SELECT id, ts, kind, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (self.send_position, room),
        ).fetchall()
        for event_id, ts, kind, payload in rows:
            body = event_message(self.settings.store_id, event_id, ts, kind, payload)
            info = client.publish(self.settings.event_topic(kind), body, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self._drop(f"publish failed: {mqtt.error_string(info.rc)}")
                return 0
            self.in_flight.append((event_id, info.mid))
            self.in_flight_mids.add(info.mid)
            self.send_position = event_id
            self.published += 1
        return len(rows)

    def _collect_acks(self) -> None:
        """Move the acknowledged position over the leading run of acknowledged events."""
        while self.in_flight and self.in_flight[0][1] in self.acked_mids:
            event_id, mid = self.in_flight.popleft()
            self.in_flight_mids.discard(mid)
            self.acked_mids.discard(mid)
            self.acked_position = event_id
            self.acknowledged += 1

    def _save_cursor(self) -> None:
        if self.acked_position > self.saved_position:
            events.advance(self.db, CONSUMER, self.acked_position)
            self.saved_position = self.acked_position

    # -- the loop ------------------------------------------------------------------------------
    def step(self) -> None:
        """One turn: connect if due, publish what fits, run the network once, save the cursor."""
        if self.client is None:
            if MONOTONIC_TIME() >= self.next_attempt:
                self._connect()
            if self.client is None:
                time.sleep(min(IDLE_WAIT_SECONDS, max(0.0, self.next_attempt - MONOTONIC_TIME())))
                return
        client = self.client
        assert client is not None
        sent = 0
        if self.connected:
            sent = self._fill_window(client)
        elif MONOTONIC_TIME() - self.connect_started > CONNECT_TIMEOUT_SECONDS:
            self._drop("no answer (CONNACK) from the broker")
            return
        if self.client is None:
            return
        # Sent a full window: look at the network without waiting, then refill.
        rc = client.loop(timeout=0 if sent else IDLE_WAIT_SECONDS)
        self._collect_acks()
        self._save_cursor()
        if rc != mqtt.MQTT_ERR_SUCCESS and self.drop_reason is None:
            self.drop_reason = f"connection lost: {mqtt.error_string(rc)}"
        if self.drop_reason is not None:
            self._drop(self.drop_reason)

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Publish and receive until ``should_stop``; then flush what is in flight and go."""
        watchdog = systemd.watchdog_interval()
        last_ping = last_status = float("-inf")
        systemd.notify("READY=1")
        while not should_stop():
            try:
                self.step()
            except sqlite3.OperationalError as exc:  # locked longer than busy_timeout
                log.warning("uplink will retry", extra={"error": str(exc)})
                # A half-handled inbox message must come again: only a new connection does
                # that. Reading the outbox or saving the cursor is simply retried next turn.
                if self.drop_reason is not None and self.client is not None:
                    self._drop(self.drop_reason)
            now = MONOTONIC_TIME()
            if watchdog is not None and now - last_ping >= watchdog:
                systemd.notify("WATCHDOG=1")
                last_ping = now
            if now - last_status >= STATUS_EVERY_SECONDS:
                systemd.notify(f"STATUS={self.status_line()}")
                last_status = now
        self.stop()

    def status_line(self) -> str:
        state = "connected to" if self.connected else "offline from"
        return f"{state} {self.settings.broker}; {backlog(self.db)} events waiting"

    def stop(self) -> None:
        """Wait briefly for acknowledgements, mark the store offline, and disconnect."""
        client = self.client
        if client is None or not self.connected:
            self._save_cursor()
            return
        info = client.publish(self.settings.status_topic, STATUS_OFFLINE, qos=1, retain=True)
        deadline = MONOTONIC_TIME() + STOP_FLUSH_SECONDS
        while (self.in_flight or not info.is_published()) and MONOTONIC_TIME() < deadline:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
            self._collect_acks()
        self._save_cursor()
        client.on_disconnect = None
        client.disconnect()
        client.loop(timeout=0)
        self.client, self.connected = None, False
        log.info("uplink stopped", extra={"waiting": backlog(self.db)})
