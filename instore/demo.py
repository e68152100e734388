"""The demo store: a manager and a few members with known passwords, on a local database."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from instore import members


@dataclass(frozen=True)
class DemoAccount:
    email: str
    display_name: str
    password: str
    role: str


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("manager@demo.store", "Morgan (manager)", "manage-the-store", "manager"),
    DemoAccount("ana@demo.store", "Ana", "ana-loves-shoes", "shopper"),
    DemoAccount("ben@demo.store", "Ben", "ben-likes-denim", "shopper"),
    DemoAccount("chloe@demo.store", "Chloe", "chloe-shops-late", "shopper"),
)


def seed_demo(db: sqlite_utils.Database) -> list[tuple[DemoAccount, str]]:
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
        seeded.append((account, member.loyalty_number))
    return seeded
