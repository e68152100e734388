"""90 days of a 5,000-visits/day store in a fresh database, for timing the manager console.

What a quarter of real running would leave behind: the demo floor plan, 20,000 members with
consents, a manager, a till and four live offers, then ``instore.history_sim`` writes the days
(store visits with the events presence.track writes, hourly footfall, member visits, offer
decisions, notifications, openings, redemptions, loyalty purchases and friend notes) straight into
the tables, and the dwell rollup catches up once.

Used by ``bench/console_pages.py``; on its own: ``.venv/bin/python bench/console_seed.py DB``
(the file must not exist yet).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlite_utils

from instore import members
from instore.clock import to_iso, utcnow
from instore.db import open_database, transaction
from instore.history_sim import HistoryOffer, HistoryPlan, create_bulk_members, simulate_history
from offers.model import save_offer, validate_offer
from offers.tills import create_till
from presence.floorplan_demo import seed_demo_floorplan
from presence.reports import catch_up_dwell

DAYS = 90
VISITS_PER_DAY = 5_000
MEMBERS = 20_000
SEED = 6
MANAGER_EMAIL = "manager@example.com"
MANAGER_PASSWORD = "bench manager password"


@dataclass(frozen=True)
class SeedSummary:
    days: int
    visits: int
    events: int
    decisions: int
    notifications: int
    seconds: float
    rollup_seconds: float


def _seed_offers(db: sqlite_utils.Database, start: datetime, days: int) -> list[HistoryOffer]:
    """Four live offers, each on one or two zones (the demo plan's ids)."""
    specs = (("Trainers", (2,)), ("Jeans", (3,)), ("Dresses", (5,)), ("Checkout socks", (4, 1)))
    made = []
    with transaction(db):
        for number, (product, zones) in enumerate(specs):
            price = 4000 + 1000 * number
            offer = validate_offer(
                {
                    "name": f"{product} deal",
                    "status": "live",
                    "title": f"20% off {product.lower()}",
                    "benefit_kind": "percent_off",
                    "benefit_value": 20,
                    "product": product,
                    "base_price_cents": price,
                    "valid_from": to_iso(start),
                    "valid_to": to_iso(start + timedelta(days=days + 30)),
                    "trigger_kind": "zone_enter",
                    "zones": list(zones),
                    "holdout_percent": 10,
                }
            )
            offer_id = save_offer(db, offer)
            made.append(HistoryOffer(offer_id, offer.title, product, zones, price))
    return made


def seed(path: Path, days: int = DAYS, visits_per_day: int = VISITS_PER_DAY) -> SeedSummary:
    """Fill a fresh database at ``path`` with ``days`` days ending yesterday (UTC)."""
    began = time.perf_counter()
    db = open_database(path)
    try:
        zones = [(zone.id, zone.name) for zone in seed_demo_floorplan(db).zones.values()]
        # Members in bulk (argon2 for each would take an hour), one manager, one till.
        member_ids = create_bulk_members(db, MEMBERS, seed=SEED)
        members.create_member(
            db,
            display_name="Manager",
            password=MANAGER_PASSWORD,
            email=MANAGER_EMAIL,
            role="manager",
        )
        with transaction(db):
            till, _ = create_till(db, "till 1")
        today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        offers = _seed_offers(db, today - timedelta(days=days), days)
        plan = HistoryPlan(
            zones=zones,
            members=member_ids,
            offers=offers,
            till_id=till.id,
            end=today,
            days=days,
            visits_per_day=visits_per_day,
            seed=SEED,
        )
        history = simulate_history(db, plan)
        seeded = time.perf_counter()
        catch_up_dwell(db)
        db.conn.execute("ANALYZE")
        return SeedSummary(
            days,
            history.visits,
            history.events,
            history.decisions,
            history.notifications,
            seeded - began,
            time.perf_counter() - seeded,
        )
    finally:
        db.conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", type=Path, help="a path that does not exist yet")
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--visits", type=int, default=VISITS_PER_DAY, help="store visits per day")
    args = parser.parse_args()
    if args.database.exists():
        print(f"console_seed.py: {args.database} exists; give a new path", file=sys.stderr)
        return 2
    summary = seed(args.database, args.days, args.visits)
    print(
        f"seeded {summary.days} days, {summary.visits:,} visits, {summary.events:,} events, "
        f"{summary.decisions:,} decisions, {summary.notifications:,} notifications in "
        f"{summary.seconds:.1f} s; dwell rollup of every event {summary.rollup_seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
