"""Two weeks of simulated history for a new demo store: the console's analytics show data at once.

``instore demo`` seeds accounts, the floor plan and the offers, then calls ``seed_demo_history``:
``instore.history_sim`` writes 14 days of visits by anonymous phones, a few hundred bulk members
("Member 12") and the demo shoppers (Ana, Ben and Chloe, so "Why not?" has something to explain),
decided against the demo's live offers. It lives in ``offers`` because it reads those offers,
adds the till their codes are redeemed at, and moves the offers worker's cursor past the history,
so the running worker neither decides it again nor stalls on it. The presence dwell rollup has its
own cursor; the caller catches it up (``presence.reports.catch_up_dwell``), as offers does not
import presence.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlite_utils

from instore import events, members
from instore.clock import utcnow
from instore.config import Config
from instore.db import transaction
from instore.history_sim import (
    HistoryOffer,
    HistoryPlan,
    HistorySummary,
    create_bulk_members,
    simulate_history,
)
from offers.demo import DEMO_OFFER_PAST_DAYS, DEMO_SHOPPERS
from offers.model import list_offers
from offers.tills import create_till, get_till
from offers.worker import CONSUMER

# A fortnight: two of each weekday, and the analytics page's default week is full.
DEMO_HISTORY_DAYS = 14
# Modest, so ``instore demo`` starts in about a second: ~4,000 visits, ~30,000 events.
DEMO_HISTORY_VISITS_PER_DAY = 300
# Enough members that most come back once or twice in two weeks (new vs returning).
DEMO_HISTORY_MEMBERS = 400
DEMO_HISTORY_SEED = 14
DEMO_TILL = "Demo till"
# The demo shoppers' simulated visits end a day before now: the visitor walking Ana's phone
# should see today's offers, not caps and cooldowns from a visit an hour ago.
REGULAR_REST = timedelta(days=1)
assert DEMO_HISTORY_DAYS < DEMO_OFFER_PAST_DAYS, "history older than the demo offers' valid_from"


def seed_demo_history(
    db: sqlite_utils.Database,
    config: Config,
    now: datetime | None = None,
    *,
    days: int = DEMO_HISTORY_DAYS,
    visits_per_day: int = DEMO_HISTORY_VISITS_PER_DAY,
    bulk_members: int = DEMO_HISTORY_MEMBERS,
) -> HistorySummary:
    """Simulate ``days`` days before ``now`` on the demo's zones and live offers.

    Run it once, on a new demo store: a second run adds another history on top. Afterwards the
    offers worker's cursor is at the history's last event, so only later events are decided.
    """
    now = now or utcnow()
    zones = [(int(i), str(name)) for i, name in db.conn.execute("SELECT id, name FROM zones")]
    offers = [
        HistoryOffer(offer.id, offer.title, offer.product, offer.zones, offer.base_price_cents)
        for offer in list_offers(db, "live")
        if offer.id is not None
    ]
    regulars = [
        member.id
        for email in DEMO_SHOPPERS
        if (member := members.find_by_identifier(db, email)) is not None
    ]
    member_ids = create_bulk_members(
        db,
        bulk_members,
        seed=DEMO_HISTORY_SEED,
        terms_version=config["portal"]["terms_version"],
    )
    with transaction(db):
        till = get_till(db, DEMO_TILL) or create_till(db, DEMO_TILL, now)[0]
    plan = HistoryPlan(
        zones=zones,
        members=member_ids,
        offers=offers,
        till_id=till.id,
        end=now,
        days=days,
        visits_per_day=visits_per_day,
        seed=DEMO_HISTORY_SEED,
        timezone=config["store"]["timezone"],
        store_id=config["store"]["id"],
        code_valid_hours=int(config["offers"]["code_valid_hours"]),
        regulars=regulars,
        regular_rest=REGULAR_REST,
    )
    summary = simulate_history(db, plan)
    if summary.last_event_id:
        with transaction(db):
            events.advance(db, CONSUMER, summary.last_event_id)
    return summary
