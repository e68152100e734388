"""What a draft offer would have done: recorded events replayed through the real engine.

A manager asks "if this offer had been live last week, who would have got it, how often, and what
would it cost?" before making it live. The answer replays the events the store recorded in that
period through ``offers.decide.decide`` — the same consent, schedule, audience, budget, cap,
cooldown and holdout checks the worker runs — with each event decided at its own recorded time.

Nothing real is touched: decisions are written to a scratch in-memory database holding copies of
just what the engine reads (members, their interests, visits, consents, and its own decision log),
so the real decision log and notifications stay as they were. Because the scratch log holds only
the draft's decisions, the global one-push-per-member cooldown counts the draft's sends alone;
the other live offers, which would compete for the same pushes, are not replayed.

Consents are replayed from the consent history: each event sees the consents as they were
recorded at that moment, so a member who only said yes to marketing on Thursday is not counted
as reachable on Monday.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from instore.clock import from_iso, to_iso
from instore.events import Event, cursor_position
from offers import attributes as member_info
from offers.decide import decide, is_triggered
from offers.model import Offer
from offers.pricing import personal_price_cents
from offers.worker import CONSUMER as WORKER_CONSUMER
from offers.worker import TRIGGER_FOR_EVENT, engine_event

# How much of what is sent gets redeemed, when neither the manager (``--redemption-rate``) nor the
# store's own history says. CodeBroker's study of retail mobile coupons (reported by
# pointofsale.com, "Study Shows ROI for Mobile Coupon Redemption") saw 8-16 % for coupons pushed
# to a smartphone app; 10 % sits near the cautious end of that range.
DEFAULT_REDEMPTION_RATE = 0.10
# Below this many sends the store's own redemption share is noise; the default is used instead.
MIN_SENDS_FOR_STORE_RATE = 200
# Presence stamps an event's payload with the observation time and writes the row when it flushes
# (seconds later, minutes after a busy spell); rows this far outside the period are read too, and
# then kept or dropped by their recorded time.
EVENT_ROW_MARGIN = timedelta(hours=1)
# The refusals a manager asks about, in the order the engine checks them; "sent" comes first.
OUTCOMES: tuple[str, ...] = (
    "sent",
    "no_consent",
    "out_of_schedule",
    "quiet_hours",
    "not_in_audience",
    "budget_spent",
    "capped",
    "cooldown",
    "holdout",
)
WEEKDAY_LABELS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Tables the engine (decide, member_attributes) reads; copied into the scratch database.
# ``redemptions`` stays empty: nothing is redeemed in a replay (see the assumptions).
SCRATCH_TABLES: tuple[str, ...] = (
    "members",
    "member_interests",
    "visits",
    "consents",
    "decisions",
    "redemptions",
)

# ``offers.attributes.member_attributes``'s shape: the member as audiences see them at ``now``.
AttributesFunction = Callable[[sqlite_utils.Database, int, datetime], Mapping[str, Any]]


class BacktestError(ValueError):
    """A backtest that cannot run as asked (bad period); the message says what to change."""


@dataclass
class BacktestReport:
    """Everything a backtest found; ``to_json`` is the ``--json`` output."""

    offer: Offer
    first_day: date
    last_day: date
    store_timezone: str
    events_read: int = 0
    not_members: int = 0
    not_triggered: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    sends_per_member: Counter[int] = field(default_factory=Counter)
    sends_by_hour: list[int] = field(default_factory=lambda: [0] * 24)
    sends_by_weekday: list[int] = field(default_factory=lambda: [0] * 7)
    discount_if_all_redeemed_cents: int = 0
    redemption_rate: float = DEFAULT_REDEMPTION_RATE
    redemption_rate_source: str = ""
    seconds: float = 0.0
    assumptions: list[str] = field(default_factory=list)

    @property
    def evaluated(self) -> int:
        """Events that matched the trigger and were decided for a member."""
        return sum(self.outcomes.values())

    @property
    def sends(self) -> int:
        return self.outcomes["sent"]

    @property
    def members_reached(self) -> int:
        return len(self.sends_per_member)

    def per_member(self) -> dict[str, float] | None:
        """min / median / max sends over the members reached (None when nobody was)."""
        counts = list(self.sends_per_member.values())
        if not counts:
            return None
        return {"min": min(counts), "median": statistics.median(counts), "max": max(counts)}

    @property
    def expected_redemptions(self) -> float:
        return self.sends * self.redemption_rate

    @property
    def expected_discount_cents(self) -> int:
        return round(self.discount_if_all_redeemed_cents * self.redemption_rate)

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (the same numbers the text output shows)."""
        return {
            "offer": {
                "name": self.offer.name,
                "id": self.offer.id,
                "trigger_kind": self.offer.trigger_kind,
                "zones": list(self.offer.zones),
            },
            "period": {
                "from": self.first_day.isoformat(),
                "to": self.last_day.isoformat(),
                "timezone": self.store_timezone,
            },
            "events": {
                "read": self.events_read,
                "not_members": self.not_members,
                "not_triggered": self.not_triggered,
                "evaluated": self.evaluated,
            },
            "members_reached": self.members_reached,
            "sends": self.sends,
            "sends_per_member": self.per_member(),
            "outcomes": {outcome: self.outcomes[outcome] for outcome in OUTCOMES},
            "sends_by_hour": {f"{hour:02d}": n for hour, n in enumerate(self.sends_by_hour)},
            "sends_by_weekday": dict(zip(WEEKDAY_LABELS, self.sends_by_weekday, strict=True)),
            "budget": {
                "issued": self.sends,
                "max_issued": self.offer.max_issued,
                "max_redeemed": self.offer.max_redeemed,
                "max_discount_cents": self.offer.max_discount_cents,
                "discount_if_all_redeemed_cents": self.discount_if_all_redeemed_cents,
                "redemption_rate": self.redemption_rate,
                "redemption_rate_source": self.redemption_rate_source,
                "expected_redemptions": round(self.expected_redemptions, 1),
                "expected_discount_cents": self.expected_discount_cents,
            },
            "assumptions": self.assumptions,
            "seconds": round(self.seconds, 3),
        }


def period_bounds(
    first_day: date, last_day: date, store_timezone: str
) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of store-local days ``first_day`` … ``last_day`` inclusive."""
    if last_day < first_day:
        raise BacktestError(f"--from {first_day} is after --to {last_day}")
    zone = ZoneInfo(store_timezone)
    start = datetime.combine(first_day, datetime.min.time(), zone)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def backtest(
    db: sqlite_utils.Database,
    offer: Offer,
    first_day: date,
    last_day: date,
    store_timezone: str,
    global_cooldown_seconds: int,
    *,
    redemption_rate: float | None = None,
    attributes: AttributesFunction | None = None,
) -> BacktestReport:
    """Replay the recorded events of the store-local days ``first_day`` … ``last_day``.

    ``offer`` is taken as if it were live (whatever its status) with its id, or, unsaved, with
    the id it would get next, so its holdout group is the one it would really have. ``db`` is
    only read. ``attributes`` defaults to ``offers.attributes.member_attributes``.
    """
    started = time.perf_counter()
    start, end = period_bounds(first_day, last_day, store_timezone)
    if redemption_rate is not None and not 0 <= redemption_rate <= 1:
        raise BacktestError(f"--redemption-rate must be between 0 and 1, not {redemption_rate}")
    offer_id = offer.id or _next_offer_id(db)
    live = replace(offer, id=offer_id, status="live")
    report = BacktestReport(live, first_day, last_day, store_timezone)
    scratch = _scratch_database(db, end)
    try:
        _replay(
            db,
            scratch,
            live,
            start,
            end,
            report,
            attributes or member_info.member_attributes,
            global_cooldown_seconds,
        )
    finally:
        scratch.conn.close()
    report.redemption_rate, report.redemption_rate_source = _redemption_rate(db, redemption_rate)
    report.assumptions = _assumptions(live, offer.id is None, global_cooldown_seconds)
    report.seconds = time.perf_counter() - started
    return report


def _replay(
    db: sqlite_utils.Database,
    scratch: sqlite_utils.Database,
    live: Offer,
    start: datetime,
    end: datetime,
    report: BacktestReport,
    attributes_of: AttributesFunction,
    global_cooldown_seconds: int,
) -> None:
    """Decide every recorded event of the period in ``scratch``, counting into ``report``."""
    kinds = [kind for kind, trigger in TRIGGER_FOR_EVENT.items() if trigger == live.trigger_kind]
    triggered: list[tuple[datetime, int, Event]] = []
    for happened, event in _recorded_events(db, kinds, start, end):
        report.events_read += 1
        member_id = event.payload.get("member_id")
        if member_id is None:
            report.not_members += 1  # anonymous devices count towards footfall only
            continue
        decided = engine_event(scratch, event, int(member_id), happened)  # as the worker does
        if not is_triggered(live, decided):
            report.not_triggered += 1  # another zone, or too short a dwell
            continue
        triggered.append((happened, int(member_id), decided))
    consents = _consent_history(db, {member_id for _, member_id, _ in triggered}, end)
    next_consent = 0
    scratch.conn.execute("BEGIN")  # one transaction; decide then uses a savepoint per event
    for happened, member_id, decided_event in triggered:
        now_text = to_iso(happened)
        while next_consent < len(consents) and consents[next_consent][5] <= now_text:
            scratch.conn.execute(
                """INSERT INTO consents (id, member_id, kind, granted, terms_version, ts)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                consents[next_consent],
            )
            next_consent += 1
        member = attributes_of(scratch, member_id, happened) if live.audience else {}
        for decision in decide(
            scratch,
            decided_event,
            [live],
            member,
            happened,
            report.store_timezone,
            global_cooldown_seconds,
        ):
            report.outcomes[decision.outcome] += 1
    _count_sends(scratch, report, member_info.member_interests)
    scratch.conn.execute("COMMIT")


def _next_offer_id(db: sqlite_utils.Database) -> int:
    """The id ``save_offer`` gives the next offer (SQLite's rowid: one past the largest)."""
    return int(db.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM offers").fetchone()[0])


def _scratch_database(db: sqlite_utils.Database, end: datetime) -> sqlite_utils.Database:
    """An in-memory copy of the engine's tables: the real schema, members, interests, visits.

    Consents start empty (the replay adds them as they were recorded) and so does the decision
    log. Foreign keys are off: the draft offer has no row in a scratch ``offers`` table.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = OFF")
    marks = ", ".join("?" for _ in SCRATCH_TABLES)
    schema = db.conn.execute(
        f"""SELECT sql FROM sqlite_master WHERE tbl_name IN ({marks}) AND sql IS NOT NULL
            ORDER BY type = 'index'""",  # noqa: S608 - placeholders only
        SCRATCH_TABLES,
    ).fetchall()
    for (statement,) in schema:
        conn.execute(statement)
    conn.execute("BEGIN")
    for table, where, params in (
        ("members", "", ()),
        ("member_interests", "", ()),
        ("visits", "WHERE ts < ?", (to_iso(end),)),
    ):
        # Table names are the constants above; rows are copied with their own column order.
        rows = db.conn.execute(f"SELECT * FROM {table} {where}", params).fetchall()  # noqa: S608
        if rows:
            marks = ", ".join("?" for _ in rows[0])
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608
    # The worker records a visit for each member's store_enter as it reaches it; do the same for
    # the ones it has not reached (all of them where no worker ran: a test store, a copied file).
    # SQLite reads the payloads (json_extract in C): a store whose worker never ran has a
    # store_enter per visit for months, and parsing each in Python took seconds.
    unrecorded = db.conn.execute(
        """SELECT member_id, id, happened FROM (
             SELECT json_extract(payload, '$.member_id') AS member_id, id,
                    COALESCE(json_extract(payload, '$.ts'), ts) AS happened
             FROM events WHERE kind = 'store_enter' AND id > ? AND ts < ?)
           WHERE member_id IS NOT NULL AND happened < ?""",
        (cursor_position(db, WORKER_CONSUMER), to_iso(end + EVENT_ROW_MARGIN), to_iso(end)),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO visits (member_id, event_id, ts) VALUES (?, ?, ?)", unrecorded
    )
    conn.execute("COMMIT")
    return sqlite_utils.Database(conn)


def _recorded_events(
    db: sqlite_utils.Database, kinds: list[str], start: datetime, end: datetime
) -> list[tuple[datetime, Event]]:
    """Outbox events of these kinds recorded in [start, end), by recorded time then id.

    The recorded time is the payload's ``ts`` (presence: when the phone was seen), else the row's.
    """
    if not kinds:
        return []
    marks = ", ".join("?" for _ in kinds)
    rows = db.conn.execute(
        f"""SELECT id, ts, kind, payload FROM events
            WHERE kind IN ({marks}) AND ts >= ? AND ts < ?""",  # noqa: S608 - placeholders only
        (*kinds, to_iso(start - EVENT_ROW_MARGIN), to_iso(end + EVENT_ROW_MARGIN)),
    )
    found = []
    for event_id, ts, kind, payload_text in rows:
        payload = json.loads(payload_text)
        happened = from_iso(payload.get("ts") or ts)
        if start <= happened < end:
            found.append((happened, Event(event_id, ts, kind, payload)))
    found.sort(key=lambda item: (item[0], item[1].id))
    return found


def _consent_history(
    db: sqlite_utils.Database, member_ids: set[int], end: datetime
) -> list[tuple[Any, ...]]:
    """Consent rows of these members recorded before ``end``, in the order they were given."""
    rows = db.conn.execute(
        "SELECT id, member_id, kind, granted, terms_version, ts FROM consents WHERE ts < ?",
        (to_iso(end),),
    ).fetchall()
    return sorted((row for row in rows if row[1] in member_ids), key=lambda row: (row[5], row[0]))


def _count_sends(
    scratch: sqlite_utils.Database,
    report: BacktestReport,
    interests_of: Callable[[sqlite_utils.Database, int], tuple[str, ...]],
) -> None:
    """Sends per member, by local hour and weekday, and their discount at personal prices."""
    zone = ZoneInfo(report.store_timezone)
    tiers = dict(scratch.conn.execute("SELECT id, tier FROM members").fetchall())
    prices: dict[int, int] = {}
    for member_id, ts in scratch.conn.execute(
        "SELECT member_id, ts FROM decisions WHERE outcome = 'sent'"
    ):
        report.sends_per_member[member_id] += 1
        local = from_iso(ts).astimezone(zone)
        report.sends_by_hour[local.hour] += 1
        report.sends_by_weekday[local.weekday()] += 1
        if member_id not in prices:
            tier = tiers.get(member_id, "member")
            prices[member_id] = personal_price_cents(
                report.offer, tier, interests_of(scratch, member_id)
            )
        report.discount_if_all_redeemed_cents += report.offer.base_price_cents - prices[member_id]


def _redemption_rate(db: sqlite_utils.Database, given: float | None) -> tuple[float, str]:
    """The rate to estimate with, and where it came from (the manager, the store, the default)."""
    if given is not None:
        return given, "given with --redemption-rate"
    sent = db.conn.execute(
        "SELECT COUNT(*) FROM decisions WHERE outcome = 'sent' AND offer_id IS NOT NULL"
    ).fetchone()[0]
    if sent >= MIN_SENDS_FOR_STORE_RATE:
        redeemed = db.conn.execute("SELECT COUNT(*) FROM redemptions").fetchone()[0]
        return redeemed / sent, f"this store's history: {redeemed} redemptions of {sent} sends"
    return DEFAULT_REDEMPTION_RATE, (
        f"default: retail app coupons redeem at 8-16 % (CodeBroker study); this store has "
        f"{sent} sends, fewer than the {MIN_SENDS_FOR_STORE_RATE} needed to use its own rate"
    )


def _assumptions(offer: Offer, unsaved: bool, global_cooldown_seconds: int) -> list[str]:
    """What the numbers take for granted, printed with them."""
    notes = [
        "each event is decided at its own recorded time, with consents as recorded at that time",
        f"the global cooldown ({global_cooldown_seconds} s) counts this offer's sends only; "
        "other live offers are not replayed and would take some of these pushes",
        "budgets and caps count from zero at the start of the period",
        "discounts are per unit, at each member's personal price (tier and interests as now)",
    ]
    if offer.holdout_percent:
        which = "the id it would get when added" if unsaved else "its id"
        notes.append(f"holdout groups are those of offer id {offer.id} ({which})")
    if offer.max_redeemed is not None or offer.max_discount_cents is not None:
        notes.append(
            "nothing is redeemed in a replay, so max_redeemed and max_discount_cents never "
            "stop a send here: compare them with the expected redemptions and discount"
        )
    return notes
