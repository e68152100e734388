"""The demo store: a manager and a few members with known passwords, on a local database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlite_utils

from instore import members
from instore.clock import to_iso, utcnow

# How long the demo's accounts have been members (longer than community.new_member_days).
DEMO_MEMBERS_SINCE = timedelta(days=60)


@dataclass(frozen=True)
class DemoAccount:
    email: str
    display_name: str
    password: str
    role: str
    # A phone the simulated store sees walking around, with location consent, so members show
    # up in zone events as they would after signing in on the store WiFi.
    demo_phone: str | None = None


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("manager@demo.store", "Morgan", "manage-the-store", "manager"),
    DemoAccount("staff@demo.store", "Sam", "help-the-shoppers", "staff"),
    DemoAccount("ana@demo.store", "Ana", "ana-loves-shoes", "shopper", "02:de:00:00:00:0a"),
    DemoAccount("ben@demo.store", "Ben", "ben-likes-denim", "shopper", "02:de:00:00:00:0b"),
    DemoAccount("chloe@demo.store", "Chloe", "chloe-shops-late", "shopper"),
)


def seed_demo(db: sqlite_utils.Database, terms_version: str) -> list[tuple[DemoAccount, str]]:
    """Create the demo accounts that are missing; returns (account, loyalty number) for all."""
    seeded = []
    for account in DEMO_ACCOUNTS:
        member = members.find_by_identifier(db, account.email)
        if member is None:
            member = members.create_member(
                db,
                display_name=account.display_name,
                password=account.password,
                email=account.email,
                role=account.role,
            )
            # Regulars, not sign-ups of a minute ago: the community's new-member limits (a few
            # posts a minute, no links) are for real newcomers, not for someone trying the demo.
            db.conn.execute(
                "UPDATE members SET created_at = ? WHERE id = ?",
                (to_iso(utcnow() - DEMO_MEMBERS_SINCE), member.id),
            )
            db.conn.commit()
            if account.demo_phone:
                members.record_consents(db, member.id, {"location": True}, terms_version)
                members.link_device(db, account.demo_phone, member.id)
        seeded.append((account, member.loyalty_number))
    return seeded
