"""Offers engine throughput: decisions per second with 500 live offers and 100,000 members.

Issue 5's figure (goal ≥ 5,000 decisions/s on one core). A fresh SQLite file gets 100,000 members
(most with marketing and location consent, some gold, some with interests and past visits) and
500 live offers spread over the six demo zones with the mix of triggers, audiences, caps,
cooldowns, holdouts and budgets a real catalogue has. Then zone events of random members go
through the real outbox and the real worker (``OffersWorker.run_once``: attributes, triggers,
consent, schedule, audience, budget, caps, cooldowns, holdout, ranking, the decision log, the
notification with its code), pinned to one CPU. A "decision" is one row in ``decisions``: one
offer evaluated for one member.

Baseline on the same machine, same run: plain ``sqlite3`` inserting decision-shaped rows, one
transaction per event with as many rows as the engine wrote per event — the cost of just
writing the log. The ratio says how much of the budget deciding takes on top of writing.

Prints figures, asserts nothing: ``.venv/bin/python bench/offers_decisions.py [--events N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchlib import machine_info

from instore import events
from instore.clock import to_iso, utcnow
from instore.db import open_database, transaction
from offers.model import save_offer, validate_offer
from offers.worker import OffersWorker, WorkerSettings
from presence.floorplan_demo import ZONE_NAMES, seed_demo_floorplan

MEMBERS = 100_000
OFFERS = 500
GOAL_DECISIONS_PER_S = 5_000
# Share of members who allowed marketing and location: most loyalty members who join the WiFi do.
CONSENTING = 0.8
INTERESTS = ("running", "trail", "denim", "work", "party", "kids", "outdoor", "formal")
AUDIENCES = (
    "",
    "",
    'tier == "gold"',
    '"running" in interests',
    "visits > 3",
    "is_new",
    'tier != "member" or "denim" in interests',
)
SEED = 5


def seed_members(db: Any, rng: random.Random) -> None:
    """100,000 members in bulk SQL (argon2 per member would take an hour and test nothing)."""
    now = to_iso(utcnow())
    members, consents, interests, visits = [], [], [], []
    for member_id in range(1, MEMBERS + 1):
        tier = rng.choices(("member", "silver", "gold"), (80, 15, 5))[0]
        members.append(
            (member_id, f"9{member_id:011d}", f"M{member_id}", tier, f"t{member_id}", now)
        )
        granted = int(rng.random() < CONSENTING)
        consents += [(member_id, "marketing", granted, now), (member_id, "location", granted, now)]
        interests += [(member_id, word) for word in rng.sample(INTERESTS, rng.randint(0, 3))]
        for day in rng.sample(range(1, 90), rng.randint(0, 4)):
            visits.append((member_id, -len(visits) - 1, to_iso(utcnow() - timedelta(days=day))))
    with transaction(db):
        db.conn.executemany(
            """INSERT INTO members (id, loyalty_number, display_name, tier, login_token,
                                    created_at) VALUES (?, ?, ?, ?, ?, ?)""",
            members,
        )
        db.conn.executemany(
            "INSERT INTO consents (member_id, kind, granted, terms_version, ts)"
            " VALUES (?, ?, ?, 'v1', ?)",
            consents,
        )
        db.conn.executemany("INSERT INTO member_interests VALUES (?, ?)", interests)
        db.conn.executemany("INSERT INTO visits (member_id, event_id, ts) VALUES (?, ?, ?)", visits)


def seed_offers(db: Any, rng: random.Random) -> None:
    """500 live offers with the variety of a real catalogue."""
    start, end = utcnow() - timedelta(days=1), utcnow() + timedelta(days=30)
    zone_ids = list(range(1, len(ZONE_NAMES) + 1))
    with transaction(db):
        for number in range(OFFERS):
            trigger = rng.choices(
                ("zone_enter", "zone_dwell", "revisit", "portal_login"), (70, 20, 5, 5)
            )[0]
            params = {
                "zone_dwell": {"seconds": 30},
                "revisit": {"count": 2, "window_seconds": 604800},
            }
            data: dict[str, Any] = {
                "name": f"offer {number}",
                "status": "live",
                "title": f"Deal {number}",
                "benefit_kind": "percent_off",
                "benefit_value": rng.choice((10, 15, 20, 25, 30)),
                "product": f"SKU-{number}",
                "product_tags": rng.sample(INTERESTS, 2),
                "base_price_cents": rng.randrange(1000, 20000, 100),
                "valid_from": to_iso(start),
                "valid_to": to_iso(end),
                "trigger_kind": trigger,
                "trigger_params": params.get(trigger, {}),
                "zones": rng.sample(zone_ids, rng.randint(1, 2)),
                "audience": rng.choice(AUDIENCES),
                "priority": rng.randint(0, 10),
                "cooldown_seconds": rng.choice((0, 3600, 86400)),
                "holdout_percent": rng.choice((0, 0, 10)),
            }
            if rng.random() < 0.5:
                data.update(per_member_cap=rng.randint(1, 3), cap_window_seconds=86400)
            if rng.random() < 0.3:
                data["max_issued"] = rng.randint(100, 5000)
            save_offer(db, validate_offer(data))


def append_events(db: Any, rng: random.Random, count: int) -> None:
    """Zone events of random members, stamped now, committed to the outbox."""
    with transaction(db):
        for _ in range(count):
            zone = rng.randint(1, len(ZONE_NAMES))
            kind = rng.choices(("zone_enter", "zone_dwell"), (75, 25))[0]
            member = rng.randint(1, MEMBERS)
            events.append(
                db,
                kind,
                {
                    "device": f"m:{member}",
                    "member_id": member,
                    "zone": ZONE_NAMES[zone - 1],
                    "zone_id": zone,
                    "ts": to_iso(utcnow()),
                },
            )


def baseline_rows_per_second(path: Path, events_count: int, rows_per_event: float) -> float:
    """Plain sqlite3 writing the same number of decision-shaped rows, one transaction per event."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE d (id INTEGER PRIMARY KEY, ts, member_id, offer_id, event_id, variant,"
        " outcome, reason)"
    )
    per_event = max(1, round(rows_per_event))
    began = time.perf_counter()
    for event in range(events_count):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO d (ts, member_id, offer_id, event_id, variant, outcome, reason)"
            " VALUES (?, ?, ?, ?, NULL, 'capped', 'sent to this member 1 time in the last 1 day')",
            [(to_iso(utcnow()), event, offer, event) for offer in range(per_event)],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return events_count * per_event / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="zone events to decide")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    rng = random.Random(SEED)  # noqa: S311 - reproducible data, not secrets
    with tempfile.TemporaryDirectory(prefix="instore-bench-") as tmp:
        db = open_database(Path(tmp) / "instore.db")
        seed_demo_floorplan(db)
        began = time.perf_counter()
        seed_members(db, rng)
        seed_offers(db, rng)
        print(
            f"seeded {MEMBERS:,} members and {OFFERS} live offers "
            f"in {time.perf_counter() - began:.1f} s"
        )
        append_events(db, rng, args.events)
        worker = OffersWorker(db, WorkerSettings(global_cooldown_seconds=900))
        worker.live_offers()  # the first load of 500 offers is start-up, not per event
        began = time.perf_counter()
        handled = 0
        while batch := worker.run_once():
            handled += batch
        elapsed = time.perf_counter() - began
        decisions = db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
        sent = db.conn.execute("SELECT COUNT(*) FROM notifications").fetchone()[0]
        outcomes = db.conn.execute(
            "SELECT outcome, COUNT(*) FROM decisions GROUP BY outcome ORDER BY 2 DESC"
        ).fetchall()
        rate = decisions / elapsed
        per_event = decisions / max(1, handled)
        baseline = baseline_rows_per_second(Path(tmp) / "baseline.db", handled, per_event)
    print(
        f"events decided:      {handled:,} in {elapsed:.2f} s ({handled / elapsed:,.0f} events/s)"
    )
    print(f"decisions logged:    {decisions:,} ({per_event:.1f} per event), notifications {sent:,}")
    print("outcomes:            " + ", ".join(f"{o} {n:,}" for o, n in outcomes))
    verdict = "meets" if rate >= GOAL_DECISIONS_PER_S else "MISSES"
    print(f"decisions/s:         {rate:,.0f}  (goal ≥ {GOAL_DECISIONS_PER_S:,}: {verdict})")
    print(
        f"baseline (sqlite3 inserts of the same rows): {baseline:,.0f} rows/s; "
        f"engine/baseline = {rate / baseline:.2f}x"
    )
    for line in machine_info(f"sqlite {sqlite3.sqlite_version}"):
        print(line)
    print("reproduce: .venv/bin/python bench/offers_decisions.py --events", args.events)


if __name__ == "__main__":
    main()
