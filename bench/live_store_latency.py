"""Presence change committed → snapshot on the console's open live-store stream: its latency.

Issue 6's figure "live store update latency" (goal p95 < 1 s). The portal runs under gunicorn
(``deploy/gunicorn.conf.py``, 2 workers, gthread) on a SQLite file seeded with the demo floor
plan, a shop already busy (``--present`` devices, a fifth of them consenting members) and a
decision log with a few thousand rows. A staff member signs in through the console's real sign-in
form (CSRF and all) and keeps ``GET /manage/live/stream`` open, as a manager's tablet keeps the
page open. Then, one at a time, a device moves to another zone the way the presence tracker
writes it: a ``zone_enter`` event appended to the outbox and the device's ``presence_state`` row
upserted, in one transaction. One sample is the time from that commit to the first snapshot on
the stream whose per-zone counts show the move.

Beside it, for scale: a bare Flask ``return "", 204`` (``bench/bare_app.py``) under the same
gunicorn settings, one request at a time, the machine's floor for any HTTP answer.

Prints figures, asserts nothing: ``.venv/bin/python bench/live_store_latency.py [--samples N]``.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import queue
import random
import re
import secrets
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import sqlite_utils
from benchlib import LOOPBACK, BenchError, run_guarded, tests_importable
from feed_latency import (
    GAP_S,
    PORTAL_THREADS,
    START_TIMEOUT_S,
    WAIT_S,
    SseReader,
    bare_round_trips,
    gunicorn_server,
    report,
    scratch_dir,
)
from probe_load import Target
from probe_servers import running

from instore import events, members
from instore.clock import to_iso, utcnow
from instore.config import load_config
from instore.db import open_database, transaction
from presence.floorplan_demo import seed_demo_floorplan

tests_importable()
from tests.live_store_helpers import live_offer, write_presence  # noqa: E402

GOAL_P95_MS = 1000.0
# A busy hour in a mid-sized shop: a few hundred phones on the floor, some of them members'.
DEFAULT_PRESENT = 300
MEMBER_SHARE = 5  # one device in this many is a consenting member's (the list the page shows)
# Decision-log rows already there: the refusals list reads the newest, whatever the log's length.
DECISIONS = 5000
STAFF_EMAIL = "bench-staff@example.com"


def seed(env: dict[str, str], present: int) -> tuple[str, list[int], dict[str, int | None]]:
    """The demo plan, a staff account, devices on the floor and a decision log.

    Returns the staff password, the zone ids and where each device is now.
    """
    config = load_config(environ=env)
    db = open_database(config.database_path)
    seed_demo_floorplan(db)
    zone_ids = [int(row[0]) for row in db.conn.execute("SELECT id FROM zones ORDER BY id")]
    password = secrets.token_urlsafe(16)
    members.create_member(
        db, display_name="Bench staff", password=password, email=STAFF_EMAIL, role="staff"
    )
    offer_id = live_offer(db, "bench")
    where: dict[str, int | None] = {}
    member_ids: list[int] = []
    with transaction(db):
        for number in range(present):
            member_id = None
            if number % MEMBER_SHARE == 0:
                member = members.create_member(
                    db, display_name=f"Shopper {number}", password="x" * 12
                )
                members.record_consents(db, member.id, {"location": True}, "v1")
                member_id = member.id
                member_ids.append(member.id)
            device = f"m:{member_id}" if member_id else f"h:{secrets.token_hex(8)}"
            zone_id = zone_ids[number % len(zone_ids)]
            write_move(db, device, member_id, zone_id)
            where[device] = zone_id
        # Hashing members' passwords above takes a while; a tracker's flush would have kept every
        # row fresh meanwhile, so none may count as stale when measuring starts.
        db.conn.execute("UPDATE presence_state SET last_seen_at = ?", (to_iso(utcnow()),))
        decided_at = to_iso(utcnow())
        for number in range(DECISIONS):
            db.conn.execute(
                """INSERT INTO decisions (ts, member_id, offer_id, outcome, reason)
                   VALUES (?, ?, ?, 'cooldown', 'one push per member per 10 min')""",
                (decided_at, member_ids[number % len(member_ids)], offer_id),
            )
    db.conn.close()
    return password, zone_ids, where


def write_move(db: sqlite_utils.Database, device: str, member_id: int | None, zone_id: int) -> None:
    """What presence.track.Tracker._write does for a zone_enter: the event and the state row
    (the caller holds the transaction)."""
    ts = to_iso(utcnow())
    events.append(
        db,
        "zone_enter",
        {"device": device, "member_id": member_id, "zone": None, "zone_id": zone_id, "ts": ts},
    )
    write_presence(db, device, member_id, zone_id, ts, ts)


def sign_in(port: int, password: str) -> str:
    """The console session cookie, got through the real sign-in form (CSRF token included)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar)
    )
    base = f"http://{LOOPBACK}:{port}"
    page = opener.open(f"{base}/manage/signin", timeout=10).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if token is None:
        raise BenchError("the console sign-in page has no CSRF token")
    form = {"csrf_token": token.group(1), "identifier": STAFF_EMAIL, "password": password}
    opener.open(f"{base}/manage/signin", urllib.parse.urlencode(form).encode(), timeout=10)
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    if "session" not in cookies:
        raise BenchError("the console sign-in did not set a session cookie")
    return cookies


class LiveStream(SseReader):
    """The open live-store stream: puts (arrival time, {zone id: count}) of each snapshot."""

    def __init__(self, port: int, cookie: str) -> None:
        super().__init__(port, "/manage/live/stream", {"Cookie": cookie})
        self.snapshots: queue.Queue[tuple[float, dict[int, int]]] = queue.Queue()

    def received(self, arrived: float, data: Any) -> None:
        self.snapshots.put((arrived, {int(z["id"]): int(z["count"]) for z in data["zones"]}))


def expected_counts(where: dict[str, int | None], zone_ids: list[int]) -> dict[int, int]:
    counts = dict.fromkeys(zone_ids, 0)
    for zone_id in where.values():
        if zone_id is not None:
            counts[zone_id] += 1
    return counts


def measure(
    db_path: Path, stream: LiveStream, where: dict[str, int | None], zone_ids: list[int], n: int
) -> list[float | None]:
    """Move one random device per sample; milliseconds until a snapshot shows the new counts."""
    db = open_database(db_path)
    devices = sorted(where)
    results: list[float | None] = []
    try:
        for _ in range(n):
            device = random.choice(devices)  # noqa: S311 - load shape, not secrets
            zone_id = random.choice([z for z in zone_ids if z != where[device]])  # noqa: S311
            where[device] = zone_id
            wanted = expected_counts(where, zone_ids)
            member_id = int(device[2:]) if device.startswith("m:") else None
            began = time.perf_counter()
            with transaction(db):
                write_move(db, device, member_id, zone_id)
            results.append(wait_for(stream, wanted, began))
            time.sleep(random.uniform(*GAP_S))  # noqa: S311
    finally:
        db.conn.close()
    return results


def wait_for(stream: LiveStream, wanted: dict[int, int], began: float) -> float | None:
    deadline = time.perf_counter() + WAIT_S
    while (left := deadline - time.perf_counter()) > 0:
        try:
            arrived, counts = stream.snapshots.get(timeout=left)
        except queue.Empty:
            return None
        if counts == wanted:
            return (arrived - began) * 1000
    return None


def run(args: argparse.Namespace) -> int:
    with scratch_dir("instore-live-") as tmp:
        portal = gunicorn_server("portal", "portal.wsgi:app", tmp, "portal.log")
        password, zone_ids, where = seed(portal.env, args.present)
        with running(portal, Target("signin", "/manage/signin", LOOPBACK, 200), START_TIMEOUT_S):
            stream = LiveStream(portal.port, sign_in(portal.port, password))
            stream.start()
            stream.wait_open(portal)
            # The first snapshot is the state before any move; wait for it, then measure.
            if wait_for(stream, expected_counts(where, zone_ids), time.perf_counter()) is None:
                raise BenchError(f"no first snapshot; {portal.log_tail()}")
            live = measure(tmp / "instore.db", stream, where, zone_ids, args.samples)
        bare = bare_round_trips(tmp, args.samples)
    report(
        [("presence commit -> live snapshot", live)],
        bare,
        ("live store", GOAL_P95_MS),
        f"{args.present} devices on the floor ({args.present // MEMBER_SHARE} consenting members), "
        f"{DECISIONS} decisions logged; portal 2 workers x {PORTAL_THREADS} threads (gthread)",
        f"bench/live_store_latency.py --samples {args.samples} --present {args.present}",
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="moves to time")
    parser.add_argument(
        "--present", type=int, default=DEFAULT_PRESENT, help="devices already on the floor"
    )
    args = parser.parse_args()
    return run_guarded(
        "live_store_latency", lambda: run(args), interrupted="the portal was stopped"
    )


if __name__ == "__main__":
    sys.exit(main())
