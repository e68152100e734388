"""Tables the offers package owns: the offers themselves and the decision log.

The decision log is how a manager answers "why didn't Ana get the shoe offer?": every evaluation of
an offer for a member writes one row with its outcome and a sentence of reason, sent or not.
"""

from __future__ import annotations

from instore import hookimpl
from instore.member_data import MemberTable
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

# Friend-in-store notes share the decision log; these are the refusals only a friend note has.
FRIEND_OUTCOMES: tuple[str, ...] = ("not_visible", "ghost_mode", "blocked")
# What a notification is about: an offer, a friend who came into the store, a staff answer in
# the member's support thread, or community news (a friend request, a comment on their board, a
# reply, a staff answer to their review or suggestion; ``data`` says which and links to it).
NOTIFICATION_KINDS: tuple[str, ...] = ("offer", "friend", "support", "community")
# The kinds version 5 allowed.
NOTIFICATION_KINDS_V5: tuple[str, ...] = ("offer", "friend", "support")
# The kinds before version 5: version 3 created the table with exactly these.
NOTIFICATION_KINDS_V3: tuple[str, ...] = ("offer", "friend")
# How one channel's attempt at one notification ended; "gone" is a subscription the push service
# says no longer exists (HTTP 404/410), which is then removed.
DELIVERY_STATUSES: tuple[str, ...] = ("sent", "failed", "gone")

_OUTCOMES_SQL = ", ".join(f"'{outcome}'" for outcome in DECISION_OUTCOMES)
_ALL_OUTCOMES_SQL = ", ".join(f"'{o}'" for o in DECISION_OUTCOMES + FRIEND_OUTCOMES)


def _notifications_table(name: str, kinds: tuple[str, ...]) -> str:
    """The notifications table as v3 made it, allowing ``kinds``; v5 rebuilds it with more."""
    allowed = ", ".join(f"'{kind}'" for kind in kinds)
    return f"""CREATE TABLE {name} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                ts TEXT NOT NULL,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                kind TEXT NOT NULL CHECK (kind IN ({allowed})),
                decision_id INTEGER UNIQUE REFERENCES decisions(id) ON DELETE SET NULL,
                offer_id INTEGER REFERENCES offers(id) ON DELETE SET NULL,
                variant TEXT,
                title TEXT NOT NULL,
                body TEXT NOT NULL DEFAULT '',
                data TEXT NOT NULL DEFAULT '{{}}',
                price_cents INTEGER,
                code TEXT UNIQUE,
                expires_at TEXT,
                opened_at TEXT
            )"""


def _rebuild_notifications(version: int, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """Statements that rebuild notifications allowing ``kinds``, keeping every row and link.

    SQLite cannot alter a CHECK: rebuild notifications with the wider kind list, as v3 rebuilt
    decisions. Ids are copied as they are (they are SSE event ids phones resume from). Other
    tables point here: with foreign keys on (they cannot be turned off inside the migration's
    transaction) dropping the old table deletes its rows first, which would cascade to
    deliveries and unlink redemptions. So both are kept aside in temp tables and put back once
    the new table has the same ids.
    """
    new = f"notifications_v{version}"
    kept_deliveries = f"v{version}_deliveries"
    kept_links = f"v{version}_redemption_links"
    return (
        f"CREATE TEMP TABLE {kept_deliveries} AS SELECT * FROM deliveries",
        f"""CREATE TEMP TABLE {kept_links} AS
           SELECT id, notification_id FROM redemptions WHERE notification_id IS NOT NULL""",
        _notifications_table(new, kinds),
        f"""INSERT INTO {new} (id, ts, member_id, kind, decision_id, offer_id,
                                  variant, title, body, data, price_cents, code,
                                  expires_at, opened_at)
           SELECT id, ts, member_id, kind, decision_id, offer_id, variant, title, body, data,
                  price_cents, code, expires_at, opened_at
           FROM notifications""",
        # AUTOINCREMENT's counter carries over: the copy alone would only raise it to the
        # highest id still there, and an id erased since must never be handed out again.
        f"DELETE FROM sqlite_sequence WHERE name = '{new}'",
        f"""INSERT INTO sqlite_sequence (name, seq)
           SELECT '{new}', seq FROM sqlite_sequence WHERE name = 'notifications'""",
        "DROP TABLE notifications",
        f"ALTER TABLE {new} RENAME TO notifications",
        "CREATE INDEX notifications_member ON notifications(member_id, id)",
        "CREATE INDEX notifications_kind_ts ON notifications(kind, ts)",
        f"""INSERT INTO deliveries (id, notification_id, channel, target, ts, status, detail)
           SELECT id, notification_id, channel, target, ts, status, detail
           FROM temp.{kept_deliveries}""",
        f"""UPDATE redemptions SET notification_id = (
               SELECT link.notification_id FROM temp.{kept_links} AS link
               WHERE link.id = redemptions.id)
           WHERE id IN (SELECT id FROM temp.{kept_links})""",
        f"DROP TABLE temp.{kept_deliveries}",
        f"DROP TABLE temp.{kept_links}",
    )


_STATUSES_SQL = ", ".join(f"'{status}'" for status in DELIVERY_STATUSES)

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
    Migration(
        "offers",
        3,
        "friend notes in the decision log; notifications, deliveries, push subscriptions, "
        "visits, tills, redemptions and purchases",
        (
            # SQLite cannot relax NOT NULL in place: rebuild decisions so a row is about an offer
            # or about a friend (the member whose arrival is noted), never both, never neither.
            f"""CREATE TABLE decisions_v3 (
                id INTEGER PRIMARY KEY,
                ts TEXT NOT NULL,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                offer_id INTEGER REFERENCES offers(id) ON DELETE CASCADE,
                friend_id INTEGER REFERENCES members(id) ON DELETE CASCADE,
                event_id INTEGER,
                variant TEXT,
                outcome TEXT NOT NULL CHECK (outcome IN ({_ALL_OUTCOMES_SQL})),
                reason TEXT NOT NULL DEFAULT '',
                CHECK ((offer_id IS NULL) != (friend_id IS NULL))
            )""",
            """INSERT INTO decisions_v3 (id, ts, member_id, offer_id, event_id, variant, outcome,
                                        reason)
               SELECT id, ts, member_id, offer_id, event_id, variant, outcome, reason
               FROM decisions""",
            "DROP TABLE decisions",
            "ALTER TABLE decisions_v3 RENAME TO decisions",
            "CREATE INDEX decisions_member_offer ON decisions(member_id, offer_id, ts)",
            "CREATE INDEX decisions_event ON decisions(event_id)",
            "CREATE INDEX decisions_sent_offer ON decisions(offer_id) WHERE outcome = 'sent'",
            "CREATE INDEX decisions_sent_member ON decisions(member_id, ts) WHERE outcome = 'sent'",
            # The per-pair cooldown asks when this friend was last noted to this member.
            """CREATE INDEX decisions_sent_friend ON decisions(member_id, friend_id, ts)
               WHERE outcome = 'sent' AND friend_id IS NOT NULL""",
            # What a member's phone shows. AUTOINCREMENT: the id is the SSE event id a phone
            # resumes from (Last-Event-ID), so an id must never be reused after an erasure.
            # title/body are rendered once, in the member's language, when the decision is made.
            _notifications_table("notifications", NOTIFICATION_KINDS_V3),
            "CREATE INDEX notifications_member ON notifications(member_id, id)",
            # One row per channel attempt, so a worker restart does not push twice and a manager
            # can see what reached a phone.
            f"""CREATE TABLE deliveries (
                id INTEGER PRIMARY KEY,
                notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
                channel TEXT NOT NULL,
                target TEXT NOT NULL DEFAULT '',
                ts TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ({_STATUSES_SQL})),
                detail TEXT NOT NULL DEFAULT '',
                UNIQUE (notification_id, channel, target)
            )""",
            # A browser's Web Push subscription (the PushSubscription JSON, split up).
            """CREATE TABLE push_subscriptions (
                id INTEGER PRIMARY KEY,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                endpoint TEXT NOT NULL UNIQUE,
                p256dh TEXT NOT NULL,
                auth TEXT NOT NULL,
                user_agent TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                last_success_at TEXT,
                failures INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX push_subscriptions_member ON push_subscriptions(member_id)",
            # A member's visits, one per store_enter event: visits, is_new, days since the last
            # visit and the revisit trigger all count these rows.
            """CREATE TABLE visits (
                id INTEGER PRIMARY KEY,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                event_id INTEGER NOT NULL UNIQUE,
                ts TEXT NOT NULL
            )""",
            "CREATE INDEX visits_member ON visits(member_id, ts)",
            # A till's API key is stored hashed (SHA-256 of a long random key): a copied database
            # does not give away working keys.
            """CREATE TABLE tills (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                key_hash TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL,
                revoked_at TEXT
            )""",
            # Keyed by code, not notification: a member's erasure removes the notification but
            # the redemption still counts against the offer's budget (without the member).
            """CREATE TABLE redemptions (
                id INTEGER PRIMARY KEY,
                code TEXT NOT NULL UNIQUE,
                notification_id INTEGER REFERENCES notifications(id) ON DELETE SET NULL,
                offer_id INTEGER REFERENCES offers(id) ON DELETE SET NULL,
                member_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
                till_id INTEGER NOT NULL REFERENCES tills(id),
                ts TEXT NOT NULL,
                discount_cents INTEGER NOT NULL DEFAULT 0 CHECK (discount_cents >= 0)
            )""",
            "CREATE INDEX redemptions_offer ON redemptions(offer_id)",
            # A loyalty purchase scanned at a till (no code): how the holdout group's buying is
            # seen, so lift compares like with like.
            """CREATE TABLE purchases (
                id INTEGER PRIMARY KEY,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                product TEXT NOT NULL,
                till_id INTEGER NOT NULL REFERENCES tills(id),
                ts TEXT NOT NULL,
                amount_cents INTEGER NOT NULL DEFAULT 0 CHECK (amount_cents >= 0)
            )""",
            "CREATE INDEX purchases_member ON purchases(member_id, product, ts)",
        ),
    ),
    Migration(
        "offers",
        4,
        "indexes and a per-day cache for the console's analytics and holdout lift",
        (
            # The offer funnel reads one day's decisions at a time, by time; covering, so the
            # table itself is not touched.
            "CREATE INDEX decisions_ts ON decisions(ts, offer_id, outcome)",
            # Holdout lift (offers.attribution) gathers an offer's sent and held-out members.
            # Partial, so the engine's ~70 other decisions per event do not pay for it; the
            # "sent" one also serves what decisions_sent_offer did, which goes.
            """CREATE INDEX decisions_lift_sent ON decisions(offer_id, member_id, ts)
               WHERE outcome = 'sent'""",
            """CREATE INDEX decisions_lift_holdout ON decisions(offer_id, member_id, ts)
               WHERE outcome = 'holdout'""",
            "DROP INDEX decisions_sent_offer",
            # Friend notes per day.
            "CREATE INDEX notifications_kind_ts ON notifications(kind, ts)",
            # New vs returning members per day.
            "CREATE INDEX visits_ts ON visits(ts, member_id)",
            # "Was this notification's code redeemed?" (funnel) and "did this member redeem
            # this offer in their window?" (lift).
            "CREATE INDEX redemptions_notification ON redemptions(notification_id)",
            "CREATE INDEX redemptions_member ON redemptions(member_id, offer_id, ts)",
            # A report's figures for one store-local day, as JSON, kept once nothing can change
            # them any more (offers.reports): a quarter's page then reads ~90 small rows.
            # Keyed by time zone too, as a day's bounds depend on it.
            """CREATE TABLE report_days (
                report TEXT NOT NULL,
                timezone TEXT NOT NULL,
                day TEXT NOT NULL,
                figures TEXT NOT NULL,
                PRIMARY KEY (report, timezone, day)
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        "offers",
        5,
        "notifications may also be a staff answer in a support thread",
        _rebuild_notifications(5, NOTIFICATION_KINDS_V5),
    ),
    Migration(
        "offers",
        6,
        "notifications may also be community news: friend requests, comments, replies, answers",
        _rebuild_notifications(6, NOTIFICATION_KINDS),
    ),
]


@hookimpl
def instore_migrations() -> list[Migration]:
    """The offers package's schema steps."""
    return OFFERS_MIGRATIONS


@hookimpl
def member_data_tables() -> list[MemberTable]:
    """The decision log, notifications and their deliveries, push, visits, till records."""
    return [
        MemberTable("decisions", "member_id = :member_id"),
        # Notes to friends about this member: the friends' records, erased but not exported.
        MemberTable("decisions", "friend_id = :member_id", export=False),
        MemberTable(
            "deliveries",
            "notification_id IN (SELECT id FROM notifications WHERE member_id = :member_id)",
        ),
        MemberTable("notifications", "member_id = :member_id"),
        MemberTable(
            "notifications",
            "kind = 'friend' AND json_extract(data, '$.friend_id') = :member_id",
            export=False,
        ),
        MemberTable("push_subscriptions", "member_id = :member_id"),
        MemberTable("visits", "member_id = :member_id"),
        # A redemption still counts against its offer's budget, without the member.
        MemberTable("redemptions", "member_id = :member_id", anonymise="member_id = NULL"),
        MemberTable("purchases", "member_id = :member_id"),
    ]
