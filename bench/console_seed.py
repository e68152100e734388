"""90 days of a 5,000-visits/day store in a fresh database, for timing the manager console.

What a quarter of real running would leave behind, written straight into the tables with
``executemany`` (going through the tracker and the offers worker would take hours and measure
them, not the console): the demo floor plan; 20,000 members with consents; per day 5,000 store
visits between 09:00 and 21:00 with a midday and an evening peak, each a device walking through
one to four zones (store_enter, zone_enter, zone_dwell after 30 s, zone_exit, store_exit events
with the payloads presence.track writes); hourly footfall rows; a ``visits`` row for every member
visit; and, for those, offer decisions with a plausible spread of outcomes, notifications, openings,
redemptions, loyalty purchases and friend notes.

Used by ``bench/console_pages.py``; on its own: ``.venv/bin/python bench/console_seed.py DB``
(the file must not exist yet).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlite_utils

from instore import members
from instore.clock import to_iso, utcnow
from instore.db import open_database, transaction
from offers.model import save_offer, validate_offer
from presence.floorplan_demo import seed_demo_floorplan
from presence.reports import catch_up_dwell

DAYS = 90
VISITS_PER_DAY = 5_000
MEMBERS = 20_000
SEED = 6
MANAGER_EMAIL = "manager@example.com"
MANAGER_PASSWORD = "bench manager password"
# Share of visits by a phone linked to a loyalty member (signed in on the WiFi once).
MEMBER_SHARE = 0.3
# Opening hours and the relative busyness of each hour (midday and after-work peaks).
OPEN_HOUR, CLOSE_HOUR = 9, 21
HOUR_WEIGHTS = (3, 5, 8, 10, 9, 7, 6, 7, 9, 10, 8, 4)
# Zone visits: median dwell ~3 min, long tail; walking between zones; exit timeouts as in track.
DWELL_MEDIAN_S, DWELL_SIGMA = 180.0, 1.0
WALK_S = 15
DWELL_EVENT_AFTER_S = 30
STORE_EXIT_AFTER_S = 180
# Footfall counts every phone heard, also passers-by and randomized-MAC phones never tracked.
FOOTFALL_EXTRA_DEVICES = 1.25
ADDRESSES_PER_DEVICE = 1.6  # MAC rotation: more addresses than devices
# Offer outcomes of a member's zone_enter into an offer's zone, with weights.
OUTCOMES = (
    ("sent", 20),
    ("not_in_audience", 25),
    ("no_consent", 15),
    ("capped", 10),
    ("cooldown", 12),
    ("lower_priority", 8),
    ("holdout", 6),
    ("quiet_hours", 2),
    ("budget_spent", 2),
)
OPEN_RATE, REDEEM_RATE = 0.45, 0.12
# Loyalty-scanned purchases of the offer's product within the week after a decision.
BUY_RATE_SENT, BUY_RATE_HOLDOUT = 0.10, 0.06
FRIEND_NOTE_RATE = 0.04  # member visits that note a friend


# The columns each generated row fills, in order (named, so a column added later keeps its default).
_COLUMNS = {
    "visits": "id, member_id, event_id, ts",
    "decisions": "id, ts, member_id, offer_id, friend_id, event_id, variant, outcome, reason",
    "notifications": "id, ts, member_id, kind, decision_id, offer_id, variant, title, body, data,"
    " price_cents, code, expires_at, opened_at",
    "redemptions": "id, code, notification_id, offer_id, member_id, till_id, ts, discount_cents",
    "purchases": "id, member_id, product, till_id, ts, amount_cents",
}


@dataclass(frozen=True)
class SeedSummary:
    days: int
    visits: int
    events: int
    decisions: int
    notifications: int
    seconds: float
    rollup_seconds: float


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _payload(
    device: str, member: int | None, zone: str | None, zone_id: int | None, ts: str
) -> str:
    """The JSON presence.track writes (keys sorted, as events.append dumps them)."""
    member_json = "null" if member is None else str(member)
    zone_json = "null" if zone is None else f'"{zone}"'
    zone_id_json = "null" if zone_id is None else str(zone_id)
    return (
        f'{{"device": "{device}", "member_id": {member_json}, "zone": {zone_json}, '
        f'"zone_id": {zone_id_json}, "ts": "{ts}"}}'
    )


def _seed_people(db: sqlite_utils.Database, rng: random.Random) -> int:
    """Members in bulk (argon2 for each would take an hour), one manager, one till."""
    now = to_iso(utcnow())
    rows = [(n, f"9{n:011d}", f"M{n}", "member", f"t{n}", now) for n in range(1, MEMBERS + 1)]
    consents = [
        (n, kind, int(rng.random() < 0.8), now)
        for n in range(1, MEMBERS + 1)
        for kind in ("marketing", "location")
    ]
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO members (id, loyalty_number, display_name, tier, login_token, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.conn.executemany(
            "INSERT INTO consents (member_id, kind, granted, terms_version, ts)"
            " VALUES (?, ?, ?, 'v1', ?)",
            consents,
        )
        db.conn.execute(
            "INSERT INTO tills (name, key_hash, created_at) VALUES ('till 1', 'bench', ?)", (now,)
        )
    manager = members.create_member(
        db, display_name="Manager", password=MANAGER_PASSWORD, email=MANAGER_EMAIL, role="manager"
    )
    return manager.id


def _seed_offers(db: sqlite_utils.Database, start: datetime) -> list[tuple[int, str, list[int]]]:
    """Four live offers, each on one or two zones: (id, product, zone ids)."""
    specs = (("Trainers", [2]), ("Jeans", [3]), ("Dresses", [5]), ("Checkout socks", [4, 1]))
    made = []
    with transaction(db):
        for number, (product, zones) in enumerate(specs):
            offer = validate_offer(
                {
                    "name": f"{product} deal",
                    "status": "live",
                    "title": f"20% off {product.lower()}",
                    "benefit_kind": "percent_off",
                    "benefit_value": 20,
                    "product": product,
                    "base_price_cents": 4000 + 1000 * number,
                    "valid_from": to_iso(start),
                    "valid_to": to_iso(start + timedelta(days=DAYS + 30)),
                    "trigger_kind": "zone_enter",
                    "zones": zones,
                    "holdout_percent": 10,
                }
            )
            made.append((save_offer(db, offer), product, zones))
    return made


def seed(path: Path, days: int = DAYS, visits_per_day: int = VISITS_PER_DAY) -> SeedSummary:
    """Fill a fresh database at ``path`` with ``days`` days ending yesterday (UTC)."""
    began = time.perf_counter()
    rng = random.Random(SEED)  # noqa: S311 - reproducible data, not secrets
    db = open_database(path)
    try:
        zones = [(zone.id, zone.name) for zone in seed_demo_floorplan(db).zones.values()]
        _seed_people(db, rng)
        today = utcnow().replace(hour=0, minute=0, second=0)
        first = today - timedelta(days=days)
        offers = _seed_offers(db, first)
        state = _State(rng, zones, offers)
        for day in range(days):
            state.day(db, (first + timedelta(days=day)).timestamp(), visits_per_day)
        seeded = time.perf_counter()
        catch_up_dwell(db)
        db.conn.execute("ANALYZE")
        return SeedSummary(
            days,
            days * visits_per_day,
            state.next_event - 1,
            state.next_decision - 1,
            state.next_notification - 1,
            seeded - began,
            time.perf_counter() - seeded,
        )
    finally:
        db.conn.close()


class _State:
    """Ids and random choices carried from one seeded day to the next."""

    def __init__(
        self,
        rng: random.Random,
        zones: Sequence[tuple[int, str]],
        offers: Sequence[tuple[int, str, list[int]]],
    ) -> None:
        self.rng, self.zones, self.offers = rng, list(zones), list(offers)
        self.next_event = self.next_decision = self.next_notification = 1
        self.outcomes = [name for name, _ in OUTCOMES]
        self.weights = [weight for _, weight in OUTCOMES]

    def day(self, db: sqlite_utils.Database, midnight: float, visits: int) -> None:
        """One day's rows, in one transaction."""
        rng = self.rng
        raw: list[tuple[float, str, str]] = []  # (epoch, kind, payload)
        member_visits: list[tuple[float, int, list[tuple[float, int]]]] = []
        present = [0] * 24
        hours = rng.choices(range(OPEN_HOUR, CLOSE_HOUR), HOUR_WEIGHTS, k=visits)
        for hour in hours:
            start = midnight + hour * 3600 + rng.random() * 3600
            member = rng.randint(1, MEMBERS) if rng.random() < MEMBER_SHARE else None
            device = f"m:{member}" if member else f"h:{rng.getrandbits(64):016x}"
            raw.append((start, "store_enter", _payload(device, member, None, None, _iso(start))))
            now, entered = start + WALK_S, []
            for zone_id, zone in rng.sample(self.zones, rng.randint(1, 4)):
                dwell = rng.lognormvariate(0, DWELL_SIGMA) * DWELL_MEDIAN_S
                raw.append((now, "zone_enter", _payload(device, member, zone, zone_id, _iso(now))))
                entered.append((now, zone_id))
                if dwell >= DWELL_EVENT_AFTER_S:
                    at = now + DWELL_EVENT_AFTER_S
                    raw.append(
                        (at, "zone_dwell", _payload(device, member, zone, zone_id, _iso(at)))
                    )
                now += dwell
                raw.append((now, "zone_exit", _payload(device, member, zone, zone_id, _iso(now))))
                now += WALK_S
            end = now + STORE_EXIT_AFTER_S
            raw.append((end, "store_exit", _payload(device, member, None, None, _iso(end))))
            for h in range(
                int((start - midnight) // 3600), min(24, int((end - midnight) // 3600) + 1)
            ):
                present[h] += 1
            if member:
                member_visits.append((start, member, entered))
        raw.sort(key=lambda row: row[0])
        event_rows, ids = [], {}
        for epoch, kind, payload in raw:
            event_rows.append((self.next_event, _iso(epoch), kind, payload))
            if kind == "store_enter":
                ids[payload] = self.next_event
            self.next_event += 1
        footfall = [
            (
                _iso(midnight + h * 3600),
                round(count * FOOTFALL_EXTRA_DEVICES),
                round(count * FOOTFALL_EXTRA_DEVICES * ADDRESSES_PER_DEVICE),
                round(count * 0.5),
            )
            for h, count in enumerate(present)
            if count
        ]
        offer_rows = self._offer_rows(member_visits, ids)
        with transaction(db):
            conn = db.conn
            conn.executemany(
                "INSERT INTO events (id, ts, kind, payload) VALUES (?, ?, ?, ?)", event_rows
            )
            conn.executemany(
                "INSERT INTO footfall (hour, devices, addresses, randomized_addresses)"
                " VALUES (?, ?, ?, ?)",
                footfall,
            )
            for table, rows in offer_rows.items():
                if rows:
                    columns = _COLUMNS[table]
                    marks = ", ".join("?" for _ in columns.split(","))
                    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
                    conn.executemany(sql, rows)

    def _offer_rows(
        self,
        member_visits: list[tuple[float, int, list[tuple[float, int]]]],
        ids: dict[str, int],
    ) -> dict[str, list[tuple[object, ...]]]:
        """visits, decisions, notifications, redemptions, purchases of the day's member visits."""
        rng = self.rng
        out: dict[str, list[tuple[object, ...]]] = {
            k: [] for k in ("visits", "decisions", "notifications", "redemptions", "purchases")
        }
        for start, member, entered in member_visits:
            device = f"m:{member}"
            enter_id = ids[_payload(device, member, None, None, _iso(start))]
            out["visits"].append((None, member, enter_id, _iso(start)))
            if rng.random() < FRIEND_NOTE_RATE:
                friend = rng.randint(1, MEMBERS)
                if friend != member:
                    self._decide(out, start + 5, member, None, friend, "sent", enter_id, "")
            for at, zone_id in entered:
                for offer_id, product, zones in self.offers:
                    if zone_id not in zones:
                        continue
                    outcome = rng.choices(self.outcomes, self.weights)[0]
                    self._decide(out, at, member, offer_id, None, outcome, enter_id, product)
        return out

    def _decide(
        self,
        out: dict[str, list[tuple[object, ...]]],
        at: float,
        member: int,
        offer_id: int | None,
        friend: int | None,
        outcome: str,
        event_id: int,
        product: str,
    ) -> None:
        rng, decision = self.rng, self.next_decision
        self.next_decision += 1
        ts = _iso(at)
        out["decisions"].append(
            (decision, ts, member, offer_id, friend, event_id, None, outcome, "bench")
        )
        buy_rate = {"sent": BUY_RATE_SENT, "holdout": BUY_RATE_HOLDOUT}.get(outcome, 0.0)
        if offer_id is not None and rng.random() < buy_rate:
            out["purchases"].append((None, member, product, 1, _iso(at + 600), 4000))
        if outcome != "sent":
            return
        note = self.next_notification
        self.next_notification += 1
        code = f"S001-{note:09d}" if offer_id else None
        opened = _iso(at + 120) if rng.random() < OPEN_RATE else None
        kind = "offer" if offer_id else "friend"
        out["notifications"].append(
            (
                note,
                ts,
                member,
                kind,
                decision,
                offer_id,
                None,
                "t",
                "",
                "{}",
                None,
                code,
                None,
                opened,
            )
        )
        if code and opened and rng.random() < REDEEM_RATE / OPEN_RATE:
            out["redemptions"].append((None, code, note, offer_id, member, 1, _iso(at + 900), 500))


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
