"""Uplink throughput: outbox events per second published to a local broker, QoS 1, acknowledged.

Issue 8's figure. A fresh SQLite outbox holds N events (zone events with a realistic payload);
the real ``Uplink`` (``instore uplink run``'s loop, in this process) publishes them to a real
Mosquitto on loopback and the clock stops when its cursor (moved only by PUBACKs) reaches the
last event.

Baseline, same run, same broker: raw paho-mqtt publishing the very same message bytes to the
same topics with QoS 1 and the same in-flight window, counting PUBACKs, with no database, no
JSON and no cursor. The ratio says what reading the outbox, encoding and keeping the cursor cost
on top of MQTT itself.

Prints figures, asserts nothing: ``.venv/bin/python bench/uplink_throughput.py [--events N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import paho.mqtt.client as mqtt
from benchlib import BenchError, machine_info, run_guarded, tests_importable
from paho.mqtt.enums import CallbackAPIVersion

from instore import events
from instore.config import load_config
from instore.db import open_database
from instore.uplink import CONSUMER, IDLE_WAIT_SECONDS, Uplink, event_message
from instore.uplink_config import UplinkSettings

tests_importable()
from tests.mosquitto import Broker, mosquitto_available  # noqa: E402

EVENTS = 10_000
ROUNDS = 5  # a shared 2-core machine moves single rounds by ±30 %: read the medians
TIMEOUT_SECONDS = 300.0  # one round; a stuck broker ends the run instead of hanging it


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/PID/stat``), to charge the broker."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill_outbox(path: Path, count: int) -> None:
    db = open_database(path)
    db.conn.execute("BEGIN")
    for n in range(count):
        events.append(
            db,
            "zone_dwell" if n % 3 else "zone_enter",
            {
                "device": f"h:{n % 977:08x}",
                "member_id": n % 5000 or None,
                "zone_id": n % 6,
                "dwell_seconds": 60 + n % 300,
                "sensor_id": "wifi-1",
            },
        )
    db.conn.execute("COMMIT")
    db.conn.close()


def uplink_round(db_path: Path, settings: UplinkSettings) -> float:
    """Seconds for the real uplink to get every event acknowledged, from a fresh cursor."""
    db = open_database(db_path)
    db.conn.execute("DELETE FROM cursors WHERE consumer = ?", (CONSUMER,))
    last = db.conn.execute("SELECT MAX(id) FROM events").fetchone()[0]
    uplink = Uplink(db, settings)
    started = time.perf_counter()
    finished: list[float] = []
    deadline = time.monotonic() + TIMEOUT_SECONDS

    def should_stop() -> bool:
        if uplink.acked_position >= last and not finished:
            finished.append(time.perf_counter())  # the cursor is saved on this same turn
        return bool(finished) or time.monotonic() > deadline

    uplink.run(should_stop)
    db.conn.close()
    if not finished:
        raise BenchError(f"the uplink did not finish within {TIMEOUT_SECONDS:.0f} s")
    return finished[0] - started


def baseline_round(messages: list[tuple[str, bytes]], port: int, window: int) -> float:
    """Seconds for bare paho to publish ``messages`` with QoS 1 and get every PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-baseline")
    client.max_inflight_messages_set(window + 1)
    acked = 0

    def on_publish(*args: object) -> None:
        nonlocal acked
        acked += 1

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    while not client.is_connected():
        client.loop(timeout=0.1)
    started = time.perf_counter()
    deadline = time.monotonic() + TIMEOUT_SECONDS
    sent = 0
    while acked < len(messages):
        # The uplink's rules, for a like-for-like loop: refill when half the window is free;
        # after sending, look at the network without waiting; else wait for packets.
        batch: list[tuple[str, bytes]] = []
        if sent - acked <= window // 2:
            batch = messages[sent : sent + window - (sent - acked)]
            for topic, body in batch:
                client.publish(topic, body, qos=1)
            sent += len(batch)
        client.loop(timeout=0 if batch else IDLE_WAIT_SECONDS)
        if time.monotonic() > deadline:
            raise BenchError("the baseline did not finish in time")
    elapsed = time.perf_counter() - started
    client.disconnect()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=EVENTS, help=f"default {EVENTS}")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"default {ROUNDS} (medians)")
    parser.add_argument("--window", type=int, default=100, help="in-flight window (batch_size)")
    args = parser.parse_args()
    if not mosquitto_available():
        raise BenchError("mosquitto is not installed (Debian package mosquitto)")
    with tempfile.TemporaryDirectory(prefix="uplink-bench-") as tmp:
        work = Path(tmp)
        broker = Broker(work / "broker")
        broker.start()
        try:
            config = load_config(
                environ={
                    "INSTORE_DATABASE_PATH": str(work / "instore.db"),
                    "INSTORE_UPLINK_ENABLED": "true",
                    "INSTORE_UPLINK_HOST": "127.0.0.1",
                    "INSTORE_UPLINK_PORT": str(broker.port),
                    "INSTORE_UPLINK_TLS": "false",
                    "INSTORE_UPLINK_BATCH_SIZE": str(args.window),
                }
            )
            settings = UplinkSettings.from_config(config)
            fill_outbox(config.database_path, args.events)
            db = open_database(config.database_path)
            messages = [
                (settings.event_topic(kind), event_message(settings.store_id, i, ts, kind, p))
                for i, ts, kind, p in db.conn.execute(
                    "SELECT id, ts, kind, payload FROM events ORDER BY id"
                )
            ]
            db.conn.close()
            size = statistics.mean(len(body) for _, body in messages)
            results: dict[str, list[tuple[float, float, float]]] = {"baseline": [], "uplink": []}
            assert broker.process is not None
            for _ in range(args.rounds):
                for name in ("baseline", "uplink"):
                    cpu, broker_cpu = time.process_time(), process_cpu_seconds(broker.process.pid)
                    if name == "baseline":
                        seconds = baseline_round(messages, broker.port, args.window)
                    else:
                        seconds = uplink_round(config.database_path, settings)
                    results[name].append(
                        (
                            seconds,
                            time.process_time() - cpu,
                            process_cpu_seconds(broker.process.pid) - broker_cpu,
                        )
                    )
        finally:
            broker.stop()

    print(
        f"uplink throughput: {args.events} events, ~{size:.0f} bytes each, QoS 1, window "
        f"{args.window}, Mosquitto on loopback; medians of {args.rounds} rounds"
    )
    print(
        f"{'':24}{'events/s':>9}{'ratio':>7}{'rounds (events/s)':>19}"
        f"{'CPU µs/event: client':>22}{'broker':>8}"
    )
    base_rate = 0.0
    for name, label in (("baseline", "bare paho-mqtt (no DB)"), ("uplink", "instore uplink")):
        rounds = results[name]
        rate = args.events / statistics.median(r[0] for r in rounds)
        base_rate = base_rate or rate
        spread = sorted(args.events / r[0] for r in rounds)
        client_us = statistics.median(r[1] for r in rounds) / args.events * 1e6
        broker_us = statistics.median(r[2] for r in rounds) / args.events * 1e6
        print(
            f"{label:24}{rate:>9,.0f}{rate / base_rate:>6.2f}x"
            f"{f'{spread[0]:,.0f}–{spread[-1]:,.0f}':>19}{client_us:>22.0f}{broker_us:>8.0f}"
        )
    for line in machine_info(f"paho-mqtt {version('paho-mqtt')}, mosquitto (Debian)"):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_guarded("uplink_throughput", main, interrupted="broker stopped"))
