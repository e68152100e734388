#!/usr/bin/env python3
"""Headquarters' consumer: every store's uplink events from the MQTT broker into PostgreSQL.

Subscribes to ``<prefix>/+/events/#`` and ``<prefix>/+/status`` with QoS 1 on a persistent
session (a fixed client id, clean_session=False), so events published while this consumer is
down wait at the broker. Each event is stored once per (store, event id): the boxes send at
least once, and a repeat is dropped by the primary key (``ON CONFLICT DO NOTHING``).

A message is acknowledged to the broker only after the transaction holding it has committed
(manual acknowledgement), so a crash of this process or of PostgreSQL loses nothing: the broker
delivers what was not acknowledged again. A message that is not an event (bad JSON, no id, a
store that does not match its topic) is kept in ``rejected_messages`` for a person, and
acknowledged.

Needs paho-mqtt>=2.0 and psycopg>=3.1 (deploy/hq/requirements.txt). The database password goes
in the DSN (``HQ_DATABASE_URL``) or ~/.pgpass, the broker password in ``HQ_MQTT_PASSWORD``:
never on the command line, where ``ps`` shows it. See deploy/hq/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import ssl
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger("instore-hq")

# Rows per transaction: larger batches commit less often; the broker's in-flight limit per
# client (mosquitto's max_inflight_messages, 20 by default) bounds what one batch can hold.
BATCH_ROWS = 500
# A message waits at most this long for its batch to fill before it is committed anyway.
FLUSH_SECONDS = 0.2
# After a PostgreSQL error, wait this long (doubling to the maximum) before trying again; the
# batch stays unacknowledged, so nothing is lost while the database is away.
RETRY_MIN_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS store_events (
        store TEXT NOT NULL,
        event_id BIGINT NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        kind TEXT NOT NULL,
        payload JSONB NOT NULL,
        received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (store, event_id)
    )""",
    "CREATE INDEX IF NOT EXISTS store_events_kind_ts ON store_events (kind, ts)",
    """CREATE TABLE IF NOT EXISTS store_status (
        store TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS rejected_messages (
        id BIGSERIAL PRIMARY KEY,
        topic TEXT NOT NULL,
        payload BYTEA NOT NULL,
        reason TEXT NOT NULL,
        received_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
)
INSERT_EVENT = """INSERT INTO store_events (store, event_id, ts, kind, payload)
    VALUES (%s, %s, %s, %s, %s) ON CONFLICT (store, event_id) DO NOTHING"""
UPSERT_STATUS = """INSERT INTO store_status (store, status) VALUES (%s, %s)
    ON CONFLICT (store) DO UPDATE SET status = excluded.status, updated_at = now()"""
INSERT_REJECTED = "INSERT INTO rejected_messages (topic, payload, reason) VALUES (%s, %s, %s)"


@dataclass(frozen=True)
class Received:
    """One message from the broker, with the connection it came on (acks belong to it)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int


class BadEvent(ValueError):
    """A message on an events topic that is not an event this consumer can store."""


def parse_event(prefix: str, topic: str, payload: bytes) -> tuple[str, int, str, str, str]:
    """(store, event id, ts, kind, payload JSON) from an events message; BadEvent if it is not."""
    store = topic[len(prefix) + 1 :].split("/", 1)[0]
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadEvent(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadEvent("not a JSON object")
    event_id, ts, kind = body.get("id"), body.get("ts"), body.get("kind")
    if isinstance(event_id, bool) or not isinstance(event_id, int) or event_id < 1:
        raise BadEvent("id must be a positive integer")
    if not isinstance(ts, str) or not isinstance(kind, str):
        raise BadEvent("ts and kind must be strings")
    try:
        datetime.fromisoformat(ts)
    except ValueError:
        raise BadEvent(f"ts {ts!r} is not an ISO 8601 time") from None
    if body.get("store") != store:
        # The broker's ACL ties a box to its own topic tree; the body must agree with it.
        raise BadEvent(f"store {body.get('store')!r} does not match the topic's {store!r}")
    return store, event_id, ts, kind, json.dumps(body.get("payload", {}))


class Consumer:
    """Drains the broker into PostgreSQL; one thread for the network, this one for the database."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.prefix = args.topic_prefix
        self.inbox: queue.Queue[Received] = queue.Queue()
        self.connection = 0  # bumped on every (re)connect; acks only go on the one that delivered
        self.stopping = False
        self.stored = 0
        self.client = self._make_client()
        self.db: psycopg.Connection[Any] | None = None

    def _make_client(self) -> mqtt.Client:
        args = self.args
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=args.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if args.tls:
            client.tls_set(
                ca_certs=args.ca_file,
                certfile=args.cert_file,
                keyfile=args.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if args.username:
            client.username_pw_set(args.username, os.environ.get("HQ_MQTT_PASSWORD"))
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        self.connection += 1
        client.subscribe([(f"{self.prefix}/+/events/#", 1), (f"{self.prefix}/+/status", 1)])
        log.info("connected to the broker; following %s/+/events/#", self.prefix)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.inbox.put(
            Received(
                message.topic, bytes(message.payload), message.mid, message.qos, self.connection
            )
        )

    # -- PostgreSQL ---------------------------------------------------------------------------
    def _database(self) -> psycopg.Connection[Any]:
        if self.db is None or self.db.closed:
            self.db = psycopg.connect(self.args.dsn, autocommit=False)
            with self.db.transaction():
                for statement in SCHEMA:
                    self.db.execute(statement)
        return self.db

    def _rows(self, batch: list[Received]) -> tuple[list[Any], list[Any], list[Any]]:
        """The batch as event rows, status rows and rejected messages."""
        events, statuses, rejected = [], [], []
        for item in batch:
            if item.topic.endswith("/status"):
                store = item.topic[len(self.prefix) + 1 :].split("/", 1)[0]
                statuses.append((store, item.payload.decode("utf-8", "replace")[:40]))
                continue
            try:
                events.append(parse_event(self.prefix, item.topic, item.payload))
            except BadEvent as exc:
                rejected.append((item.topic, item.payload, str(exc)))
        return events, statuses, rejected

    def _store(self, events: list[Any], statuses: list[Any], rejected: list[Any]) -> None:
        """One transaction: the events (repeats dropped), the statuses, the rejects."""
        db = self._database()
        with db.transaction(), db.cursor() as cursor:
            if events:
                cursor.executemany(INSERT_EVENT, events)
            for row in statuses:
                cursor.execute(UPSERT_STATUS, row)
            if rejected:
                cursor.executemany(INSERT_REJECTED, rejected)
        self.stored += len(events)
        for topic, _, reason in rejected:
            log.warning("rejected a message on %s: %s", topic, reason)

    def _write(self, batch: list[Received]) -> None:
        """Store the batch; if PostgreSQL refuses a row (not the connection), store the rest
        one by one and keep the refused one in rejected_messages, rather than stop for it."""
        events, statuses, rejected = self._rows(batch)
        try:
            self._store(events, statuses, rejected)
            return
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            log.warning("a batch was refused (%s); storing its rows one by one", exc)
        for item in batch:
            try:
                self._store(*self._rows([item]))
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                self._store([], [], [(item.topic, item.payload, f"refused by PostgreSQL: {exc}")])

    def _flush(self, batch: list[Received]) -> None:
        """Write the batch, retrying until PostgreSQL takes it; then acknowledge it."""
        wait = RETRY_MIN_SECONDS
        while True:
            try:
                self._write(batch)
                break
            except psycopg.OperationalError as exc:
                log.warning("PostgreSQL unavailable (%s); retrying in %.0f s", exc, wait)
                if self.db is not None:
                    self.db.close()
                if self.stopping:
                    return  # unacknowledged: the broker sends these again next time
                time.sleep(wait)
                wait = min(wait * 2, RETRY_MAX_SECONDS)
        for item in batch:
            # A message from an earlier connection is not acked: the broker resends it anyway.
            if item.qos > 0 and item.connection == self.connection:
                self.client.ack(item.mid, item.qos)

    def run(self) -> None:
        self._database()  # a wrong DSN fails now, before anything is taken from the broker
        self.client.connect(self.args.host, self.args.port, keepalive=60)
        self.client.loop_start()
        batch: list[Received] = []
        oldest = 0.0
        # On SIGTERM the batch in hand is stored and acknowledged; whatever else was delivered
        # is not acknowledged, so the broker sends it again to the next run.
        while not self.stopping:
            try:
                item = self.inbox.get(timeout=FLUSH_SECONDS)
                if not batch:
                    oldest = time.monotonic()
                batch.append(item)
            except queue.Empty:
                pass
            if batch and (len(batch) >= BATCH_ROWS or time.monotonic() - oldest >= FLUSH_SECONDS):
                self._flush(batch)
                batch = []
        if batch:
            self._flush(batch)
        self.client.disconnect()
        self.client.loop_stop()
        log.info("stopped after storing %d events", self.stored)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True, help="the broker's host name")
    parser.add_argument("--port", type=int, default=8883, help="default 8883 (MQTT over TLS)")
    parser.add_argument("--no-tls", dest="tls", action="store_false", help="plain MQTT")
    parser.add_argument("--ca-file", help="CA bundle for the broker's certificate")
    parser.add_argument("--cert-file", help="this consumer's client certificate (PEM)")
    parser.add_argument("--key-file", help="its key (PEM)")
    parser.add_argument("--username", help="broker account; password from HQ_MQTT_PASSWORD")
    parser.add_argument("--topic-prefix", default="instore", help="the boxes' [uplink] prefix")
    parser.add_argument(
        "--client-id",
        default="instore-hq",
        help="fixed: the broker keeps the "
        "session (and queues events) under it while the consumer is down",
    )
    parser.add_argument(
        "--dsn",
        default=os.environ.get("HQ_DATABASE_URL"),
        help="PostgreSQL connection string (default: $HQ_DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error("give --dsn or set HQ_DATABASE_URL")
    if bool(args.cert_file) != bool(args.key_file):
        parser.error("--cert-file and --key-file go together")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    consumer = Consumer(args)

    def stop(signum: int, frame: Any) -> None:
        consumer.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        consumer.run()
    except (OSError, psycopg.Error) as exc:
        print(f"instore-hq: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
