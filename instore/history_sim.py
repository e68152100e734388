"""Simulated store history: days of visits written straight into the tables, for demos and benches.

What running a store for some days would leave behind, written with ``executemany`` (going through
the tracker and the offers worker would take hours, and would measure them rather than make data):
per day, store visits between opening and closing time (store-local) with a midday and an evening
peak, each a device walking through one to four zones (store_enter, zone_enter, zone_dwell after
30 s, zone_exit, store_exit events with the payloads ``presence.track`` writes); hourly footfall;
a ``visits`` row for each member's visit; and, for those, offer decisions with a plausible spread
of outcomes, notifications, openings, redemptions, loyalty purchases and friend notes.

It works on whatever the database already holds: the caller passes the zones, members, live offers
and till to use (``HistoryPlan``), and every row gets an id after the table's current largest (or
one SQLite assigns), so it can run on a store that already has accounts, offers, events and
decisions. It touches no outbox cursor: a caller whose processes must not replay the history
advances theirs to ``HistorySummary.last_event_id``.

Why in ``instore`` although it writes presence and offers tables: both ``instore demo`` and
``bench/console_seed.py`` need it, and the history spans packages (presence's events and footfall,
offers' decisions), so no one of them owns it, and neither may import the other. It therefore
imports only ``instore.*`` and works on plain rows; the payload keys and table columns it fills
are those of ``presence.track`` and the offers migrations, which ``tests/test_history_sim.py``
checks by running the real read models over what it writes.
"""

from __future__ import annotations

import json
import random
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlite_utils

from instore.clock import to_iso, utcnow
from instore.db import transaction
from instore.members import LOYALTY_NUMBER_DIGITS, luhn_check_digit

# Share of visits by a phone linked to a loyalty member (signed in on the WiFi once).
MEMBER_SHARE = 0.3
# Opening hours (store-local) and the relative busyness of each hour (midday, after-work peaks).
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
# Offer outcomes of a member's entry into an offer's zone (or the store), with weights, and the
# sentence the decision log keeps for each ("Why not?" shows it, marked as simulated).
OUTCOMES = (
    ("sent", 20, "the only offer that passed every check"),
    ("not_in_audience", 25, "the member is not in the offer's audience"),
    ("no_consent", 15, "no marketing consent: an offer is a marketing message"),
    ("capped", 10, "sent to this member as often as the offer's cap allows"),
    ("cooldown", 12, "this offer went to the member recently; its cooldown has not passed"),
    ("lower_priority", 8, "another offer with a higher priority went out instead"),
    ("holdout", 6, "the member is in this offer's holdout (control) group"),
    ("quiet_hours", 2, "the store's quiet hours"),
    ("budget_spent", 2, "the offer's budget is spent"),
)
FRIEND_REASON = "every check passed: both consented, visible to this friend"
REASON_PREFIX = "simulated history: "
OPEN_RATE, REDEEM_RATE = 0.45, 0.12
DISCOUNT_CENTS = 500
# Loyalty-scanned purchases of the offer's product within the week after a decision.
BUY_RATE_SENT, BUY_RATE_HOLDOUT = 0.10, 0.06
FRIEND_NOTE_RATE = 0.04  # member visits that note a friend
REGULAR_VISIT_CHANCE = 0.4  # a regular comes in on this share of days
CONSENT_SHARE = 0.8  # bulk members who said yes to marketing (and to location)

# The columns each generated row fills, in order (named, so a column added later keeps its default).
_COLUMNS = {
    "visits": "id, member_id, event_id, ts",
    "decisions": "id, ts, member_id, offer_id, friend_id, event_id, variant, outcome, reason",
    "notifications": "id, ts, member_id, kind, decision_id, offer_id, variant, title, body, data,"
    " price_cents, code, expires_at, opened_at",
    "redemptions": "id, code, notification_id, offer_id, member_id, till_id, ts, discount_cents",
    "purchases": "id, member_id, product, till_id, ts, amount_cents",
}
# Rows to insert, by table.
_Rows = dict[str, list[tuple[object, ...]]]


@dataclass(frozen=True)
class HistoryOffer:
    """A live offer as the simulation decides it: on entering one of its zones, or at the door
    when it has none (a revisit offer)."""

    id: int
    title: str
    product: str
    zone_ids: tuple[int, ...]
    price_cents: int = 0


@dataclass(frozen=True)
class HistoryPlan:
    """What to simulate: ``days`` before ``end`` (aware), with what the store already has."""

    zones: Sequence[tuple[int, str]]  # (id, name)
    members: Sequence[int]  # members whose phones may visit, and may be noted as friends
    offers: Sequence[HistoryOffer]
    till_id: int  # where redemptions and purchases are scanned
    end: datetime
    days: int
    visits_per_day: int
    seed: int = 6
    timezone: str = "UTC"  # opening hours are store-local
    store_id: str = "S001"  # codes are "<store id>-<notification id>"
    code_valid_hours: int = 72
    # Members who come in every few days (the demo's named shoppers), no visit later than
    # ``end - regular_rest`` so that their caps and cooldowns are clear at ``end``.
    regulars: Sequence[int] = field(default=())
    regular_rest: timedelta = timedelta(0)


@dataclass(frozen=True)
class HistorySummary:
    visits: int
    events: int
    first_event_id: int  # 0 when no event was written
    last_event_id: int
    decisions: int
    notifications: int


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_bulk_members(
    db: sqlite_utils.Database,
    count: int,
    *,
    seed: int = 6,
    terms_version: str = "v1",
    consent_share: float = CONSENT_SHARE,
) -> list[int]:
    """``count`` members named "Member <id>" without passwords (argon2 for each would take
    minutes), ``consent_share`` of them with marketing and location consent; returns their ids."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    now = to_iso(utcnow())
    with transaction(db):
        first = int(db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM members").fetchone()[0]) + 1
        ids = list(range(first, first + count))
        rows = []
        for member_id in ids:
            # A valid (Luhn) number made from the id, so unique among these; one issued at
            # random (members.new_loyalty_number) matches it by a one in 10^11 chance only.
            body = f"8{member_id:0{LOYALTY_NUMBER_DIGITS - 2}d}"
            rows.append(
                (
                    member_id,
                    body + luhn_check_digit(body),
                    f"Member {member_id}",
                    secrets.token_urlsafe(24),  # a login token is a credential: never guessable
                    now,
                )
            )
        db.conn.executemany(
            "INSERT INTO members (id, loyalty_number, display_name, login_token, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        db.conn.executemany(
            "INSERT INTO consents (member_id, kind, granted, terms_version, ts)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (member_id, kind, int(granted), terms_version, now)
                for member_id in ids
                for granted in [rng.random() < consent_share]
                for kind in ("marketing", "location")
            ],
        )
    return ids


def simulate_history(db: sqlite_utils.Database, plan: HistoryPlan) -> HistorySummary:
    """Write the plan's days of history, one transaction per day; returns what was written.

    Visits fall in ``[end - days, end)``: the first and last store days may be partial.
    """
    if plan.end.tzinfo is None:
        raise ValueError("simulate_history needs a timezone-aware end, not a naive one")
    if not plan.zones:
        raise ValueError("simulate_history needs at least one zone")
    state = _State(plan)
    zone = ZoneInfo(plan.timezone)
    start = plan.end - timedelta(days=plan.days)
    day = start.astimezone(zone).date()
    while datetime.combine(day, time(), zone) < plan.end:
        state.day(db, day, zone, start.timestamp(), plan.end.timestamp())
        day += timedelta(days=1)
    return HistorySummary(
        state.visits,
        state.events,
        state.first_event,
        state.last_event,
        state.decisions,
        state.notifications,
    )


def _next_id(db: sqlite_utils.Database, table: str) -> int:
    """One past the largest id the table has had (AUTOINCREMENT tables remember deleted ones)."""
    used = int(db.conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])  # noqa: S608
    row = db.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return max(used, int(row[0]) if row else 0) + 1


@dataclass
class _Visit:
    start: float
    member: int | None
    entered: list[tuple[float, int, int]]  # (when, zone id, index of its zone_enter in raw)
    enter_index: int  # index of its store_enter in raw


class _State:
    """Random choices and counts carried from one simulated day to the next."""

    def __init__(self, plan: HistoryPlan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)  # noqa: S311 - reproducible data, not secrets
        self.members = list(plan.members)
        self.zones = [(zone_id, name, json.dumps(name)) for zone_id, name in plan.zones]
        self.outcomes = [(name, REASON_PREFIX + reason) for name, _, reason in OUTCOMES]
        self.weights = [weight for _, weight, _ in OUTCOMES]
        self.visits = self.events = self.decisions = self.notifications = 0
        self.first_event = self.last_event = 0
        self.next_decision = self.next_notification = 0

    def _walk(
        self, raw: list[tuple[float, str, str]], start: float, member: int | None
    ) -> tuple[_Visit, float]:
        """One visit's events appended to ``raw``; returns it and when the store_exit is."""
        rng = self.rng
        device = f"m:{member}" if member else f"h:{rng.getrandbits(64):016x}"
        member_json = "null" if member is None else str(member)

        def payload(zone: str, zone_id: str, at: float) -> str:
            # The JSON presence.track writes (keys sorted, as events.append dumps them).
            return (
                f'{{"device": "{device}", "member_id": {member_json}, "zone": {zone}, '
                f'"zone_id": {zone_id}, "ts": "{_iso(at)}"}}'
            )

        visit = _Visit(start, member, [], len(raw))
        raw.append((start, "store_enter", payload("null", "null", start)))
        now = start + WALK_S
        for zone_id, _, zone_json in rng.sample(
            self.zones, rng.randint(1, min(4, len(self.zones)))
        ):
            dwell = rng.lognormvariate(0, DWELL_SIGMA) * DWELL_MEDIAN_S
            visit.entered.append((now, zone_id, len(raw)))
            raw.append((now, "zone_enter", payload(zone_json, str(zone_id), now)))
            if dwell >= DWELL_EVENT_AFTER_S:
                at = now + DWELL_EVENT_AFTER_S
                raw.append((at, "zone_dwell", payload(zone_json, str(zone_id), at)))
            now += dwell
            raw.append((now, "zone_exit", payload(zone_json, str(zone_id), now)))
            now += WALK_S
        end = now + STORE_EXIT_AFTER_S
        raw.append((end, "store_exit", payload("null", "null", end)))
        return visit, end

    def day(
        self, db: sqlite_utils.Database, day: date, zone: ZoneInfo, first: float, last: float
    ) -> None:
        """One store-local day's rows in ``[first, last)`` (epochs), in one transaction."""
        rng, plan = self.rng, self.plan
        hours = rng.choices(range(OPEN_HOUR, CLOSE_HOUR), HOUR_WEIGHTS, k=plan.visits_per_day)
        arrivals: list[tuple[int, int | None, float]] = []
        for hour in hours:
            member = (
                rng.choice(self.members) if self.members and rng.random() < MEMBER_SHARE else None
            )
            arrivals.append((hour, member, last))
        regulars_until = last - plan.regular_rest.total_seconds()
        for member in plan.regulars:
            if rng.random() < REGULAR_VISIT_CHANCE:
                hour = rng.choices(range(OPEN_HOUR, CLOSE_HOUR), HOUR_WEIGHTS)[0]
                arrivals.append((hour, member, regulars_until))
        raw: list[tuple[float, str, str]] = []  # (epoch, kind, payload)
        visits: list[_Visit] = []
        present: Counter[int] = Counter()  # devices per UTC hour (epoch // 3600)
        for hour, member, until in arrivals:
            opening = datetime.combine(day, time(hour), zone).timestamp()
            start = opening + rng.random() * 3600
            mark = len(raw)
            visit, end = self._walk(raw, start, member)
            if start < first or end >= until:
                del raw[mark:]  # outside the simulated window
                continue
            visits.append(visit)
            for hour_number in range(int(start // 3600), int(end // 3600) + 1):
                present[hour_number] += 1
        if not visits:
            return
        order = sorted(range(len(raw)), key=lambda index: raw[index][0])
        with transaction(db):
            self._write(db, raw, order, visits, present)

    def _write(
        self,
        db: sqlite_utils.Database,
        raw: list[tuple[float, str, str]],
        order: list[int],
        visits: list[_Visit],
        present: Counter[int],
    ) -> None:
        """The day's rows with ids after each table's largest, read inside the transaction."""
        conn = db.conn
        next_event = _next_id(db, "events")
        event_ids = [0] * len(raw)
        event_rows = []
        for offset, index in enumerate(order):
            epoch, kind, payload = raw[index]
            event_ids[index] = next_event + offset
            event_rows.append((next_event + offset, _iso(epoch), kind, payload))
        self.first_event = self.first_event or next_event
        self.last_event = next_event + len(event_rows) - 1
        self.events += len(event_rows)
        self.visits += len(visits)
        self.next_decision = _next_id(db, "decisions")
        self.next_notification = _next_id(db, "notifications")
        footfall = [
            (
                _iso(hour * 3600),
                round(count * FOOTFALL_EXTRA_DEVICES),
                round(count * FOOTFALL_EXTRA_DEVICES * ADDRESSES_PER_DEVICE),
                round(count * 0.5),
            )
            for hour, count in sorted(present.items())
        ]
        offer_rows = self._offer_rows(visits, event_ids)
        conn.executemany(
            "INSERT INTO events (id, ts, kind, payload) VALUES (?, ?, ?, ?)", event_rows
        )
        # Added to what the presence daemon may have counted in the same hour.
        conn.executemany(
            """INSERT INTO footfall (hour, devices, addresses, randomized_addresses)
               VALUES (?, ?, ?, ?) ON CONFLICT(hour) DO UPDATE SET
                 devices = devices + excluded.devices,
                 addresses = addresses + excluded.addresses,
                 randomized_addresses = randomized_addresses + excluded.randomized_addresses""",
            footfall,
        )
        for table, rows in offer_rows.items():
            if rows:
                columns = _COLUMNS[table]
                marks = ", ".join("?" for _ in columns.split(","))
                sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
                conn.executemany(sql, rows)

    def _offer_rows(self, visits: list[_Visit], event_ids: list[int]) -> _Rows:
        """visits, decisions, notifications, redemptions, purchases of the day's member visits."""
        rng = self.rng
        regulars = set(self.plan.regulars)
        out: _Rows = {table: [] for table in _COLUMNS}
        for visit in visits:
            member = visit.member
            if member is None:
                continue
            enter_id = event_ids[visit.enter_index]
            out["visits"].append((None, member, enter_id, _iso(visit.start)))
            if member not in regulars and self.members and rng.random() < FRIEND_NOTE_RATE:
                # Regulars are real people with real friends: no notes about strangers.
                friend = rng.choice(self.members)
                if friend != member:
                    self._friend_note(out, visit.start + 5, member, friend, enter_id)
            for offer in self.plan.offers:
                if not offer.zone_ids:
                    self._decide(out, visit.start + 1, member, offer, enter_id)
            for at, zone_id, index in visit.entered:
                for offer in self.plan.offers:
                    if zone_id in offer.zone_ids:
                        self._decide(out, at, member, offer, event_ids[index])
        return out

    def _log(
        self,
        out: _Rows,
        at: float,
        member: int,
        about: tuple[int | None, int | None],
        event_id: int,
        outcome: str,
        reason: str,
    ) -> int:
        """A decision row about (offer id, friend id); returns its id."""
        self.decisions += 1
        self.next_decision += 1
        decision = self.next_decision - 1
        out["decisions"].append(
            (decision, _iso(at), member, *about, event_id, None, outcome, reason)
        )
        return decision

    def _notify(
        self,
        out: _Rows,
        at: float,
        member: int,
        decision: int,
        kind: str,
        offer: HistoryOffer | None,
        data: str,
    ) -> tuple[int, str | None]:
        """The notification of a sent decision; returns its id and when it was opened (or None)."""
        self.notifications += 1
        self.next_notification += 1
        note, plan = self.next_notification - 1, self.plan
        opened = _iso(at + 120) if self.rng.random() < OPEN_RATE else None
        title, price, code, expires = "A friend of yours is in the store", None, None, None
        if offer is not None:
            title, price = offer.title, offer.price_cents or None
            code = f"{plan.store_id}-{note:09d}"
            expires = _iso(at + plan.code_valid_hours * 3600)
        offer_id = None if offer is None else offer.id
        about = (note, _iso(at), member, kind, decision, offer_id)
        content = (None, title, "", data, price, code, expires, opened)  # variant None first
        out["notifications"].append((*about, *content))
        return note, opened

    def _friend_note(self, out: _Rows, at: float, member: int, friend: int, event_id: int) -> None:
        decision = self._log(
            out, at, member, (None, friend), event_id, "sent", REASON_PREFIX + FRIEND_REASON
        )
        self._notify(out, at, member, decision, "friend", None, json.dumps({"friend_id": friend}))

    def _decide(
        self, out: _Rows, at: float, member: int, offer: HistoryOffer, event_id: int
    ) -> None:
        rng, plan = self.rng, self.plan
        outcome, reason = rng.choices(self.outcomes, self.weights)[0]
        decision = self._log(out, at, member, (offer.id, None), event_id, outcome, reason)
        buy_rate = {"sent": BUY_RATE_SENT, "holdout": BUY_RATE_HOLDOUT}.get(outcome, 0.0)
        if rng.random() < buy_rate:
            out["purchases"].append(
                (None, member, offer.product, plan.till_id, _iso(at + 600), offer.price_cents)
            )
        if outcome != "sent":
            return
        note, opened = self._notify(out, at, member, decision, "offer", offer, "{}")
        if opened and rng.random() < REDEEM_RATE / OPEN_RATE:
            code = f"{plan.store_id}-{note:09d}"
            out["redemptions"].append(
                (None, code, note, offer.id, member, plan.till_id, _iso(at + 900), DISCOUNT_CENTS)
            )
