"""What the live store's tests share: the demo zones, and rows committed the way the presence
tracker and the offers engine write them (through the test's own connection, as another process
would). ``bench/live_store_latency.py`` and ``bench/feed_latency.py`` write theirs with these too.
"""

from __future__ import annotations

from datetime import timedelta

import sqlite_utils

from instore import members
from instore.clock import to_iso, utcnow
from offers.model import save_offer, validate_offer
from presence.floorplan_demo import DEMO_SENSORS, DEMO_ZONES
from presence.zones import seed_floorplan

PASSWORD = "correct horse battery"


def seed_zones(db: sqlite_utils.Database) -> dict[str, int]:
    """The demo shop's six zones (no picture), by name."""
    with db.conn:
        seed_floorplan(db, DEMO_ZONES, DEMO_SENSORS)
    return {name: int(zone_id) for zone_id, name in db.conn.execute("SELECT id, name FROM zones")}


def place(
    db: sqlite_utils.Database,
    device: str,
    zone_id: int | None,
    *,
    member_id: int | None = None,
    seen_ago: float = 0.0,
    entered_ago: float = 60.0,
) -> None:
    """Commit a presence_state row as the tracker writes it (upsert per device)."""
    now = utcnow()
    entered_at = to_iso(now - timedelta(seconds=entered_ago))
    last_seen_at = to_iso(now - timedelta(seconds=seen_ago))
    with db.conn:
        write_presence(db, device, member_id, zone_id, entered_at, last_seen_at)


def write_presence(
    db: sqlite_utils.Database,
    device: str,
    member_id: int | None,
    zone_id: int | None,
    entered_at: str,
    last_seen_at: str,
) -> None:
    """Upsert the device's presence_state row as ``presence.track`` does; the caller commits."""
    db.conn.execute(
        """INSERT INTO presence_state (device, member_id, zone_id, entered_at, last_seen_at)
           VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(device) DO UPDATE SET member_id = excluded.member_id,
             zone_id = excluded.zone_id, entered_at = excluded.entered_at,
             last_seen_at = excluded.last_seen_at""",
        (device, member_id, zone_id, entered_at, last_seen_at),
    )


def shopper(db: sqlite_utils.Database, name: str, **consents: bool) -> members.Member:
    member = members.create_member(db, display_name=name, password=PASSWORD)
    if consents:
        members.record_consents(db, member.id, consents, "v1")
    return member


def live_offer(db: sqlite_utils.Database, name: str = "Shoe week") -> int:
    """Commit a live offer for anyone entering any zone, valid from yesterday to tomorrow."""
    now = utcnow()
    offer = {
        "name": name,
        "status": "live",
        "title": "10% off trainers",
        "benefit_kind": "percent_off",
        "benefit_value": 10,
        "product": "trainers",
        "base_price_cents": 5000,
        "valid_from": to_iso(now - timedelta(days=1)),
        "valid_to": to_iso(now + timedelta(days=1)),
        "trigger_kind": "zone_enter",
    }
    with db.conn:
        return int(save_offer(db, validate_offer(offer)))


def decide(
    db: sqlite_utils.Database,
    member_id: int,
    outcome: str,
    reason: str,
    *,
    offer_id: int | None = None,
    friend_id: int | None = None,
) -> int:
    """A decisions row as offers.decide / offers.friends log it."""
    with db.conn:
        cursor = db.conn.execute(
            """INSERT INTO decisions (ts, member_id, offer_id, friend_id, outcome, reason)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (to_iso(utcnow()), member_id, offer_id, friend_id, outcome, reason),
        )
    return int(cursor.lastrowid or 0)
