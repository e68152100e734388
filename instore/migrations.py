"""The kernel's own tables and the ``Migration`` type every package uses for its steps.

The kernel owns the tables every process reads: the events outbox and consumer cursors, and the
member and client-session records (members, credentials, consents, devices, sessions). Those
last are not business rules — they are the shared facts the portal writes, the gatekeeper
enforces, presence links to sightings and offers targets — so they live here, where every package
may import them, rather than in ``portal`` which nothing may import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from instore import hookimpl

if TYPE_CHECKING:
    from instore.member_data import MemberTable


@dataclass(frozen=True)
class Migration:
    """One schema step of one package, applied once, in version order, inside a transaction."""

    package: str
    version: int
    description: str
    statements: tuple[str, ...]


KERNEL_MIGRATIONS: list[Migration] = [
    Migration(
        "instore",
        1,
        "outbox, cursors, members, credentials, consents, devices, sessions",
        (
            """CREATE TABLE events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                ts TEXT NOT NULL,
                kind TEXT NOT NULL,
                payload TEXT NOT NULL DEFAULT '{}'
            )""",
            "CREATE INDEX events_kind ON events(kind, id)",
            """CREATE TABLE cursors (
                consumer TEXT PRIMARY KEY,
                last_id INTEGER NOT NULL DEFAULT 0,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE members (
                id INTEGER PRIMARY KEY,
                email TEXT UNIQUE,
                loyalty_number TEXT NOT NULL UNIQUE,
                display_name TEXT NOT NULL,
                role TEXT NOT NULL DEFAULT 'shopper'
                    CHECK (role IN ('shopper', 'staff', 'manager', 'admin')),
                tier TEXT NOT NULL DEFAULT 'member',
                login_token TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL
            )""",
            """CREATE TABLE credentials (
                member_id INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
                password_hash TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE consents (
                id INTEGER PRIMARY KEY,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
                terms_version TEXT NOT NULL,
                ts TEXT NOT NULL
            )""",
            "CREATE INDEX consents_member ON consents(member_id, kind, id)",
            """CREATE TABLE devices (
                mac TEXT PRIMARY KEY,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                first_seen TEXT NOT NULL,
                last_seen TEXT NOT NULL
            )""",
            """CREATE TABLE sessions (
                id INTEGER PRIMARY KEY,
                mac TEXT NOT NULL,
                ip TEXT NOT NULL,
                member_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
                started_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                revoked_at TEXT
            )""",
            "CREATE INDEX sessions_live ON sessions(ip, mac, revoked_at, expires_at)",
        ),
    ),
    Migration(
        "instore",
        2,
        "idle deadline and revoke reason on sessions; preferred language on members",
        (
            "ALTER TABLE sessions ADD COLUMN idle_deadline TEXT",
            # Sessions made before idle timeouts existed keep running until they expire.
            "UPDATE sessions SET idle_deadline = expires_at WHERE idle_deadline IS NULL",
            "ALTER TABLE sessions ADD COLUMN revoked_reason TEXT",
            "ALTER TABLE members ADD COLUMN locale TEXT",
            "CREATE INDEX sessions_member ON sessions(member_id)",
        ),
    ),
    Migration(
        "instore",
        3,
        "the audit log of console actions; WiFi terms published from the console",
        (
            # Who did what to which thing, with the thing's state before and after as JSON, so a
            # manager can answer "who paused the shoe offer?" and put it back. actor_id is kept
            # as a plain number (no foreign key) so erasing a staff account keeps its history;
            # actor_name is what they were called then.
            """CREATE TABLE audit_log (
                id INTEGER PRIMARY KEY,
                ts TEXT NOT NULL,
                actor_id INTEGER,
                actor_name TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                before TEXT,
                after TEXT
            )""",
            "CREATE INDEX audit_log_ts ON audit_log(ts)",
            # WiFi terms an admin published from the console; the newest is in force and
            # replaces the built-in text and [portal] terms_version. Shoppers accept it again
            # at their next sign-in because their consent names an older version.
            """CREATE TABLE wifi_terms (
                id INTEGER PRIMARY KEY,
                version TEXT NOT NULL UNIQUE,
                body TEXT NOT NULL,
                published_at TEXT NOT NULL,
                published_by TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        "instore",
        4,
        "the chain uplink: headquarters messages applied, offers headquarters sent",
        (
            # One row per message headquarters sent to this store (instore.uplink_apply): the
            # broker redelivers a message whose acknowledgement was lost, and this row is how
            # the second copy is recognised and skipped. A rejected message is recorded too, so
            # a bad message is reported once, not on every redelivery.
            """CREATE TABLE uplink_applied (
                message_id TEXT PRIMARY KEY,
                topic TEXT NOT NULL,
                outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'rejected')),
                detail TEXT NOT NULL DEFAULT '',
                applied_at TEXT NOT NULL
            )""",
            # Headquarters names its offers by its own id; this maps that id to the store's offer,
            # so a catalogue sent again updates the offer instead of adding a copy. offer_id has no
            # foreign key: the offers table belongs to the offers package, migrated after this.
            """CREATE TABLE uplink_offers (
                external_id TEXT PRIMARY KEY,
                offer_id INTEGER NOT NULL,
                updated_at TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        "instore",
        5,
        "feature flags",
        (
            # instore.flags: a flag is on for `percent` of members (0 off, 100 on), read by
            # every process. No member data: who is in a rollout is computed, never stored.
            """CREATE TABLE feature_flags (
                name TEXT PRIMARY KEY,
                percent INTEGER NOT NULL CHECK (percent BETWEEN 0 AND 100),
                updated_at TEXT NOT NULL
            )""",
        ),
    ),
]


@hookimpl
def instore_migrations() -> list[Migration]:
    """The kernel's schema steps."""
    return KERNEL_MIGRATIONS


@hookimpl
def member_data_tables() -> list[MemberTable]:
    """The kernel's member data: credentials, consents, devices, sessions, outbox, audit log."""
    # Imported here: instore.member_data needs instore.db, which needs this module's Migration.
    from instore.member_data import MemberTable

    return [
        MemberTable("credentials", "member_id = :member_id", hidden=("password_hash",)),
        MemberTable("consents", "member_id = :member_id"),
        MemberTable("devices", "member_id = :member_id"),
        # Revoked first by the erasure itself; the rows stay so the gatekeeper's view of what it
        # removed stays consistent, without saying whose they were.
        MemberTable("sessions", "member_id = :member_id", anonymise="member_id = NULL"),
        # Other consumers may still be behind on these events: keep them, without the member.
        MemberTable(
            "events",
            "json_extract(payload, '$.member_id') = :member_id"
            " OR json_extract(payload, '$.device') = :device",
            anonymise="payload = json_replace(payload, '$.member_id', NULL,"
            " '$.device', :anonymous_device, '$.mac', NULL)",
        ),
        # The store keeps who-did-what, no longer saying who.
        MemberTable(
            "audit_log",
            "actor_id = :member_id",
            anonymise="actor_id = NULL, actor_name = :deleted_member",
        ),
        MemberTable(
            "audit_log",
            "target = :target",
            anonymise="target = :deleted_member, before = NULL, after = NULL",
        ),
    ]
