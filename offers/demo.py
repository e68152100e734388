"""The demo store's offers and friendships, so ``make demo`` shows offers and friend notes.

Ana and Ben (whose simulated phones walk the store) are friends who share their visits, and both
said yes to marketing; Ana likes running, Ben denim, so their personal prices differ. The offers
cover every trigger on the demo zones, have been live since before the demo's two weeks of
simulated history (``offers.demo_history``) and stay live for a year from the first run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from community.catalogue_import import seed_demo_catalogue
from community.friends import befriend
from instore import members
from instore.clock import to_iso, utcnow
from instore.db import transaction
from offers.model import list_offers, save_offer, validate_offer

# How long the seeded offers stay live: a demo database is usually thrown away long before.
DEMO_OFFER_DAYS = 365
# How long the seeded offers have been live: longer than the simulated history, so its decisions
# fall inside the offers' dates.
DEMO_OFFER_PAST_DAYS = 15

# (email, interests): the demo members with stated interests (the personal price uses them).
DEMO_INTERESTS: dict[str, tuple[str, ...]] = {
    "ana@demo.store": ("running", "trail"),
    "ben@demo.store": ("denim",),
}
# Pairs of demo members who are friends and share their visits with each other.
DEMO_FRIENDS: tuple[tuple[str, str], ...] = (
    ("ana@demo.store", "ben@demo.store"),
    ("ana@demo.store", "chloe@demo.store"),
)
DEMO_SHOPPERS = ("ana@demo.store", "ben@demo.store", "chloe@demo.store")


def _offers(zones: dict[str, int]) -> list[dict[str, Any]]:
    """The demo catalogue, by zone name."""
    return [
        {
            "name": "Trail shoes spring",
            "title": "25% off TR-200 trail shoes",
            "body": "Show this code at the till. Your size is in the back row.",
            "benefit_kind": "percent_off",
            "benefit_value": 25,
            "product": "TR-200 trail shoe",
            "product_tags": ["running", "trail"],
            "base_price_cents": 8000,
            "zones": [zones["Shoes"]],
            "trigger_kind": "zone_enter",
            "priority": 5,
            "cooldown_seconds": 3600,
            "per_member_cap": 2,
            "cap_window_seconds": 86400,
            "holdout_percent": 10,
        },
        {
            "name": "Denim 3 for 2",
            "title": "Jeans: 3 for the price of 2",
            "body": "Mix any fits. Today only at this store.",
            "benefit_kind": "multibuy",
            "benefit_value": 2,
            "benefit_quantity": 3,
            "product": "Jeans, any fit",
            "product_tags": ["denim"],
            "base_price_cents": 5000,
            "zones": [zones["Denim"]],
            "trigger_kind": "zone_dwell",
            "trigger_params": {"seconds": 30},
            "priority": 3,
            "cooldown_seconds": 3600,
        },
        {
            "name": "Women's new season",
            "title": "Linen dresses at 39.00",
            "body": "New season linen, in store only.",
            "benefit_kind": "fixed_price",
            "benefit_value": 3900,
            "product": "Linen dress",
            "product_tags": ["linen", "summer"],
            "base_price_cents": 5900,
            "zones": [zones["Women"]],
            "trigger_kind": "zone_enter",
            "priority": 2,
            "cooldown_seconds": 3600,
            "variants": [
                {"name": "a", "weight": 1},
                {"name": "b", "weight": 1, "title": "Linen season: dresses now 39.00"},
            ],
        },
        {
            "name": "Welcome back",
            "title": "Welcome back: 200 bonus points",
            "body": "Twice this month — thank you. Points are added when you pay.",
            "benefit_kind": "points",
            "benefit_value": 200,
            "product": "Any purchase",
            "base_price_cents": 0,
            "trigger_kind": "revisit",
            "trigger_params": {"count": 2, "window_seconds": 30 * 86400},
            "priority": 1,
            "per_member_cap": 1,
            "cap_window_seconds": 7 * 86400,
        },
    ]


def seed_demo_offers(
    db: sqlite_utils.Database, terms_version: str, now: datetime | None = None
) -> int:
    """Seed the demo catalogue, friendships, interests and consents once; return offers added."""
    now = now or utcnow()
    ids = {
        email: member.id
        for email in DEMO_SHOPPERS
        if (member := members.find_by_identifier(db, email)) is not None
    }
    for email in ids:  # record_consents is its own transaction
        granted = members.current_consents(db, ids[email])
        wanted = {
            kind: True
            for kind in ("marketing", "friend_visibility")
            if not granted.get(kind, {}).get("granted")
        }
        if wanted:
            members.record_consents(db, ids[email], wanted, terms_version)
    seed_demo_catalogue(db)  # the products boards show; their categories are the interests
    with transaction(db):
        for email, interests in DEMO_INTERESTS.items():
            if email in ids:
                db.conn.executemany(
                    "INSERT OR IGNORE INTO member_interests (member_id, interest) VALUES (?, ?)",
                    [(ids[email], interest) for interest in interests],
                )
        for one, other in DEMO_FRIENDS:
            if one in ids and other in ids:
                befriend(db, ids[one], ids[other], now)
                befriend(db, ids[other], ids[one], now)  # asking back accepts
        if list_offers(db):
            return 0
        zones = {name: zone_id for zone_id, name in db.conn.execute("SELECT id, name FROM zones")}
        window = {
            "status": "live",
            "valid_from": to_iso(now - timedelta(days=DEMO_OFFER_PAST_DAYS)),
            "valid_to": to_iso(now + timedelta(days=DEMO_OFFER_DAYS)),
        }
        added = 0
        for data in _offers(zones):
            save_offer(db, validate_offer({**data, **window}, db))
            added += 1
    return added
