"""Tables the offers package owns: the offers themselves and the decision log.

The decision log is how a manager answers "why didn't Ana get the shoe offer?": every evaluation of
an offer for a member writes one row with its outcome and a sentence of reason, sent or not.
"""

from __future__ import annotations

from instore import hookimpl
from instore.migrations import Migration

# Every outcome an evaluation can have; the CHECK below and the engine use exactly these.
DECISION_OUTCOMES: tuple[str, ...] = (
    "sent",
    "capped",
    "cooldown",
    "quiet_hours",
    "out_of_schedule",
    "no_consent",
    "not_in_audience",
    "holdout",
    "budget_spent",
    "lower_priority",
)

_OUTCOMES_SQL = ", ".join(f"'{outcome}'" for outcome in DECISION_OUTCOMES)

OFFERS_MIGRATIONS: list[Migration] = [
    Migration(
        "offers",
        1,
        "offers and the decision log",
        (
            # JSON columns hold small lists/maps the engine reads whole (zones, hours, variants);
            # times are UTC ISO text like every other table, hours are store-local "HH:MM".
            """CREATE TABLE offers (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'live', 'paused')),
                title TEXT NOT NULL,
                body TEXT NOT NULL DEFAULT '',
                image TEXT,
                benefit_kind TEXT NOT NULL CHECK (benefit_kind IN
                    ('percent_off', 'fixed_off', 'fixed_price', 'multibuy', 'points')),
                benefit_value INTEGER NOT NULL,
                benefit_quantity INTEGER,
                product TEXT NOT NULL,
                product_tags TEXT NOT NULL DEFAULT '[]',
                base_price_cents INTEGER NOT NULL CHECK (base_price_cents >= 0),
                zones TEXT NOT NULL DEFAULT '[]',
                valid_from TEXT NOT NULL,
                valid_to TEXT NOT NULL,
                store_hours TEXT,
                quiet_hours TEXT,
                audience TEXT NOT NULL DEFAULT '',
                trigger_kind TEXT NOT NULL CHECK (trigger_kind IN
                    ('zone_enter', 'zone_dwell', 'revisit', 'portal_login')),
                trigger_params TEXT NOT NULL DEFAULT '{}',
                per_member_cap INTEGER,
                cap_window_seconds INTEGER,
                cooldown_seconds INTEGER NOT NULL DEFAULT 0,
                max_issued INTEGER,
                max_redeemed INTEGER,
                max_discount_cents INTEGER,
                priority INTEGER NOT NULL DEFAULT 0,
                exclusive INTEGER NOT NULL DEFAULT 0 CHECK (exclusive IN (0, 1)),
                holdout_percent INTEGER NOT NULL DEFAULT 0
                    CHECK (holdout_percent BETWEEN 0 AND 100),
                variants TEXT NOT NULL DEFAULT '[]',
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX offers_status ON offers(status, priority)",
            # One row per evaluation. event_id is the outbox event that triggered it, so a replay
            # of the same event can be recognised; variant is NULL when the offer has none.
            f"""CREATE TABLE decisions (
                id INTEGER PRIMARY KEY,
                ts TEXT NOT NULL,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                offer_id INTEGER NOT NULL REFERENCES offers(id) ON DELETE CASCADE,
                event_id INTEGER,
                variant TEXT,
                outcome TEXT NOT NULL CHECK (outcome IN ({_OUTCOMES_SQL})),
                reason TEXT NOT NULL DEFAULT ''
            )""",
            # Caps, cooldowns and "why" all ask: this member, this offer, recent first.
            "CREATE INDEX decisions_member_offer ON decisions(member_id, offer_id, ts)",
        ),
    ),
    Migration(
        "offers",
        2,
        "decision log indexes for replays, budgets and the global cooldown",
        (
            # "Was this event already decided?" is asked once per zone event.
            "CREATE INDEX decisions_event ON decisions(event_id)",
            # Budgets count an offer's sends across all members; partial, as sends are the few.
            "CREATE INDEX decisions_sent_offer ON decisions(offer_id) WHERE outcome = 'sent'",
            # The global cooldown asks for a member's last send of any offer.
            "CREATE INDEX decisions_sent_member ON decisions(member_id, ts) WHERE outcome = 'sent'",
        ),
    ),
]


@hookimpl
def instore_migrations() -> list[Migration]:
    """The offers package's schema steps."""
    return OFFERS_MIGRATIONS
