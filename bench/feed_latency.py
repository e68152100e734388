"""Zone event committed → notification on an open SSE stream: the live feed's latency.

Issue 5's figure (goal p95 < 500 ms). The real parts, each its own process as on a box: the
portal under gunicorn (``deploy/gunicorn.conf.py``, 2 workers, gthread) and ``instore offers
run``, on one SQLite file. Members each have a WiFi session for their own loopback address
(127.0.0.10, .11, …; the demo client lookup derives a MAC from it), and each keeps ``GET /feed``
open from that address, as a phone keeps its store page open. Then, one at a time, a
``zone_enter`` event for a member is committed to the outbox as the presence daemon would; the
time from that commit to the notification arriving on the member's stream is one sample.

Two more figures for scale, measured in the same run:
- **portal only**: a notification row committed straight into the table (no worker): what the
  feed itself adds.
- **bare Flask round trip**: a ``return "", 204`` app (``bench/bare_app.py``) under the same
  gunicorn settings, one request at a time: the machine's floor for any HTTP answer.

Prints figures, asserts nothing: ``.venv/bin/python bench/feed_latency.py [--samples N]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchlib import LOOPBACK, free_port, machine_info, percentile
from probe_load import Target
from probe_servers import REPO, Server, gunicorn_command, hermetic_env, running

from hardware.clients import DemoLookup
from instore import events, members, sessions
from instore.clock import to_iso, utcnow
from instore.config import load_config
from instore.db import open_database
from offers.model import save_offer, validate_offer
from offers.notifications import create_notification
from presence.floorplan_demo import seed_demo_floorplan

GOAL_P95_MS = 500.0
# The portal's default: each open stream holds a gthread thread, and 4 per worker are kept for
# probes and pages (portal.feed.RESERVED_THREADS), so 2 x 32 threads stream to up to 56 pages.
PORTAL_THREADS = 32
STREAMS = 16
# Pause between samples: events arrive one by one, as shoppers walk in, not as a burst.
GAP_S = (0.05, 0.2)
START_TIMEOUT_S = 30.0
WAIT_S = 5.0  # a sample slower than this is counted as lost


def client_ip(number: int) -> str:
    return f"127.0.0.{10 + number}"


def seed(env: dict[str, str]) -> list[int]:
    """Members with location and marketing consent and a live session each, and one offer."""
    config = load_config(environ=env)
    db = open_database(config.database_path)
    seed_demo_floorplan(db)
    ids = []
    for number in range(STREAMS):
        member = members.create_member(
            db, display_name=f"Shopper {number}", password=secrets.token_urlsafe(16)
        )
        members.record_consents(db, member.id, {"location": True, "marketing": True}, "v1")
        mac = DemoLookup().mac_for(client_ip(number))
        assert mac is not None
        sessions.authorize_client(
            db, mac=mac, ip=client_ip(number), member_id=member.id, hours=8, idle_minutes=60
        )
        ids.append(member.id)
    now = utcnow()
    offer = {
        "name": "bench",
        "status": "live",
        "title": "10% off",
        "benefit_kind": "percent_off",
        "benefit_value": 10,
        "product": "anything",
        "base_price_cents": 1000,
        "valid_from": to_iso(now - timedelta(days=1)),
        "valid_to": to_iso(now + timedelta(days=1)),
        "trigger_kind": "zone_enter",
    }
    with db.conn:
        save_offer(db, validate_offer(offer))
    db.conn.close()
    return ids


class Stream(threading.Thread):
    """One member's open ``/feed``: puts (arrival time, notification id) on a queue."""

    def __init__(self, port: int, number: int) -> None:
        super().__init__(daemon=True)
        self.port, self.number = port, number
        self.arrivals: queue.Queue[tuple[float, int]] = queue.Queue()
        self.ready = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(
            LOOPBACK, self.port, timeout=60, source_address=(client_ip(self.number), 0)
        )
        conn.request("GET", "/feed", headers={"Accept": "text/event-stream"})
        response = conn.getresponse()
        if response.status != 200:
            print(f"stream {self.number}: HTTP {response.status}", file=sys.stderr)
            return
        self.ready.set()
        while True:
            line = response.fp.readline()
            if not line:
                return
            if line.startswith(b"data:"):
                data = json.loads(line[5:])
                self.arrivals.put((time.perf_counter(), int(data["id"])))


def sample(streams: list[Stream], commit: Any) -> float | None:
    """Commit one thing for a random member; milliseconds until their stream has it."""
    number = random.randrange(len(streams))  # noqa: S311 - load shape, not secrets
    began = time.perf_counter()
    commit(number)
    try:
        arrived, _ = streams[number].arrivals.get(timeout=WAIT_S)
    except queue.Empty:
        return None
    return (arrived - began) * 1000


def measure(streams: list[Stream], commit: Any, samples: int) -> list[float | None]:
    results = []
    for _ in range(samples):
        results.append(sample(streams, commit))
        time.sleep(random.uniform(*GAP_S))  # noqa: S311
    return results


def summary(label: str, values: list[float | None]) -> float:
    got = [v for v in values if v is not None]
    lost = len(values) - len(got)
    p95 = percentile(got, 0.95) if got else float("nan")
    print(
        f"{label:<34} n={len(got):<4} p50 {statistics.median(got):7.1f} ms   "
        f"p95 {p95:7.1f} ms   max {max(got):7.1f} ms   lost {lost}"
    )
    return p95


def bare_round_trips(tmp: Path, samples: int) -> list[float | None]:
    port = free_port()
    env = hermetic_env(tmp, port, workers=2, threads=PORTAL_THREADS)
    server = Server(
        "bare Flask",
        gunicorn_command(f"{LOOPBACK}:{port}", "bench.bare_app:app"),
        env,
        tmp / "bare.log",
        port,
    )
    results: list[float | None] = []
    with running(server, Target("bare", "/generate_204", LOOPBACK, 204), START_TIMEOUT_S):
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
        for _ in range(samples):
            began = time.perf_counter()
            conn.request("GET", "/generate_204")
            conn.getresponse().read()
            results.append((time.perf_counter() - began) * 1000)
            time.sleep(random.uniform(*GAP_S))  # noqa: S311
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="events to time per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="instore-feed-") as name:
        tmp = Path(name)
        (tmp / "instore.toml").write_text("")
        port = free_port()
        env = hermetic_env(tmp, port, workers=2, threads=PORTAL_THREADS)
        env["INSTORE_OFFERS_GLOBAL_COOLDOWN_SECONDS"] = "0"  # every event sends
        member_ids = seed(env)
        portal = Server(
            "portal",
            gunicorn_command(f"{LOOPBACK}:{port}", "portal.wsgi:app"),
            env,
            tmp / "portal.log",
            port,
        )
        worker = Server(
            "offers worker",
            [sys.executable, "-m", "instore", "offers", "run"],
            env,
            tmp / "worker.log",
            port,
        )
        db = open_database(tmp / "instore.db")
        with running(portal, Target("signin", "/signin", LOOPBACK, 200), START_TIMEOUT_S):
            worker.start()
            try:
                streams = [Stream(port, number) for number in range(STREAMS)]
                for stream in streams:
                    stream.start()
                for stream in streams:
                    if not stream.ready.wait(START_TIMEOUT_S):
                        raise SystemExit(f"a stream did not open; see {portal.log_tail()}")

                def zone_event(number: int) -> None:
                    with db.conn:
                        events.append(
                            db,
                            "zone_enter",
                            {
                                "device": f"m:{member_ids[number]}",
                                "member_id": member_ids[number],
                                "zone": "Shoes",
                                "zone_id": 2,
                                "ts": to_iso(utcnow()),
                            },
                        )

                def direct(number: int) -> None:
                    with db.conn:
                        create_notification(
                            db,
                            member_id=member_ids[number],
                            kind="offer",
                            title="direct",
                            body="",
                            now=utcnow(),
                        )

                time.sleep(1.0)  # let the worker start following the outbox
                end_to_end = measure(streams, zone_event, args.samples)
                portal_only = measure(streams, direct, args.samples)
            finally:
                worker.stop()
        bare = bare_round_trips(tmp, args.samples)
    print()
    p95 = summary("zone event -> SSE (end to end)", end_to_end)
    summary("notification row -> SSE (portal)", portal_only)
    bare_p95 = summary("bare Flask round trip (baseline)", bare)
    verdict = "meets" if p95 < GOAL_P95_MS else "MISSES"
    print(
        f"\nend-to-end p95 {p95:.1f} ms: goal < {GOAL_P95_MS:.0f} ms {verdict}; "
        f"{p95 / bare_p95:.1f}x the bare Flask round trip p95"
    )
    print(
        f"{STREAMS} open streams; portal 2 workers x {PORTAL_THREADS} threads (gthread); "
        f"worker poll {env.get('INSTORE_OFFERS_POLL_MS', '100')} ms"
    )
    for line in machine_info("gunicorn gthread"):
        print(line)
    print(
        f"reproduce: cd {REPO} && .venv/bin/python bench/feed_latency.py --samples {args.samples}"
    )


if __name__ == "__main__":
    main()
