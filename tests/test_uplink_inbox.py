"""Headquarters' messages to a store, applied once each (``instore.uplink_apply``).

Real SQLite with every migration and the demo floor plan (zones "Shoes", …); the broker's part
(delivery, redelivery) is in tests/test_uplink.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlite_utils

from instore import members
from instore.uplink_apply import APPLIED_EVENT, HQ_ACTOR, handle_inbox_message
from offers.model import get_offer
from presence.floorplan_demo import seed_demo_floorplan

TRAIL_SHOES: dict[str, Any] = {
    "external_id": "hq-trail-shoes",
    "name": "Spring trail shoes",
    "title": "25% off trail shoes today",
    "product": "TR-200 trail shoe",
    "base_price_cents": 8000,
    "benefit_kind": "percent_off",
    "benefit_value": 25,
    "zones": ["Shoes"],
    "trigger_kind": "zone_enter",
    "valid_from": "2025-03-01T08:00:00Z",
    "valid_to": "2026-12-31T23:00:00Z",
}


def send(db: sqlite_utils.Database, kind: str, body: Any) -> tuple[str, str]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = handle_inbox_message(db, kind, raw)
    return result.outcome, result.detail


def offer_for(db: sqlite_utils.Database, external_id: str) -> Any:
    row = db.conn.execute(
        "SELECT offer_id FROM uplink_offers WHERE external_id = ?", (external_id,)
    ).fetchone()
    return None if row is None else get_offer(db, row[0])


@pytest.fixture
def store(db: sqlite_utils.Database) -> sqlite_utils.Database:
    seed_demo_floorplan(db)
    return db


def test_a_catalogue_adds_offers_once_however_often_it_is_delivered(
    store: sqlite_utils.Database,
) -> None:
    message = {"message_id": "cat-1", "offers": [TRAIL_SHOES]}
    assert send(store, "offers", message) == ("applied", "1 new, 0 updated, 0 withdrawn")
    assert send(store, "offers", message) == ("duplicate", "")
    offer = offer_for(store, "hq-trail-shoes")
    assert offer.status == "draft" and offer.name == "Spring trail shoes"
    assert store.conn.execute("SELECT COUNT(*) FROM offers").fetchone()[0] == 1
    audit = store.conn.execute("SELECT actor_name, action, target FROM audit_log").fetchall()
    assert audit == [(HQ_ACTOR, "offer.create", f"offer:{offer.id}")]
    reported = store.conn.execute(
        "SELECT payload FROM events WHERE kind = ?", (APPLIED_EVENT,)
    ).fetchall()
    assert [json.loads(row[0])["outcome"] for row in reported] == ["applied"]


def test_a_new_catalogue_updates_by_external_id_and_keeps_the_stores_status(
    store: sqlite_utils.Database,
) -> None:
    send(store, "offers", {"message_id": "cat-1", "offers": [TRAIL_SHOES]})
    first = offer_for(store, "hq-trail-shoes")
    store.conn.execute("UPDATE offers SET status = 'live' WHERE id = ?", (first.id,))
    cheaper = {**TRAIL_SHOES, "benefit_value": 30}
    assert send(store, "offers", {"message_id": "cat-2", "offers": [cheaper]}) == (
        "applied",
        "0 new, 1 updated, 0 withdrawn",
    )
    second = offer_for(store, "hq-trail-shoes")
    assert (second.id, second.benefit_value, second.status) == (first.id, 30, "live")
    paused = {"message_id": "cat-3", "offers": [{**cheaper, "status": "paused"}]}
    send(store, "offers", paused)
    assert offer_for(store, "hq-trail-shoes").status == "paused"


def test_withdraw_pauses_and_a_refused_offer_does_not_block_the_rest(
    store: sqlite_utils.Database,
) -> None:
    send(store, "offers", {"message_id": "cat-1", "offers": [{**TRAIL_SHOES, "status": "live"}]})
    nowhere = {**TRAIL_SHOES, "external_id": "hq-garden", "zones": ["Garden"]}
    coats = {**TRAIL_SHOES, "external_id": "hq-denim", "name": "Denim", "zones": ["Denim"]}
    outcome, detail = send(
        store,
        "offers",
        {"message_id": "cat-2", "offers": [nowhere, coats], "withdraw": ["hq-trail-shoes"]},
    )
    assert outcome == "applied"
    assert detail.startswith("1 new, 0 updated, 1 withdrawn; 1 refused: hq-garden: zones:")
    assert offer_for(store, "hq-trail-shoes").status == "paused"
    assert offer_for(store, "hq-denim") is not None
    assert offer_for(store, "hq-garden") is None


@pytest.mark.parametrize(
    ("kind", "raw", "reason"),
    [
        ("offers", b"\xff not json", "not JSON"),
        ("offers", b"[1, 2]", "must be a JSON object"),
        ("offers", b'{"offers": []}', "message_id must be a non-empty string"),
        ("offers", b'{"message_id": "m1"}', "a catalogue needs offers or withdraw"),
        ("offers", b'{"message_id": "m2", "offers": {}}', "offers must be a list"),
        ("prices", b'{"message_id": "m3"}', "no such inbox topic 'prices'"),
        ("members", b'{"message_id": "m4", "members": [{"tier": "gold"}]}', "loyalty_number"),
        (
            "members",
            b'{"message_id": "m5", "members": [{"loyalty_number": "1", "role": "admin"}]}',
            "fields must be among: tier",
        ),
    ],
)
def test_bad_messages_are_rejected_with_a_reason_and_change_nothing(
    store: sqlite_utils.Database, kind: str, raw: bytes, reason: str
) -> None:
    outcome, detail = send(store, kind, raw)
    assert outcome == "rejected" and reason in detail
    assert store.conn.execute("SELECT COUNT(*) FROM offers").fetchone()[0] == 0
    assert store.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == 0


def test_a_rejected_message_is_recorded_once(store: sqlite_utils.Database) -> None:
    bad = {"message_id": "m1", "members": "gold for all"}
    assert send(store, "members", bad)[0] == "rejected"
    assert send(store, "members", bad) == ("duplicate", "")
    rows = store.conn.execute("SELECT message_id, outcome FROM uplink_applied").fetchall()
    assert rows == [("m1", "rejected")]


def test_member_updates_set_tiers_by_loyalty_number(store: sqlite_utils.Database) -> None:
    ana = members.create_member(store, display_name="Ana", password="x" * 12, email="a@x.com")
    bea = members.create_member(store, display_name="Bea", password="x" * 12, email="b@x.com")
    message = {
        "message_id": "tiers-1",
        "members": [
            {"loyalty_number": ana.loyalty_number, "tier": "gold"},
            {"loyalty_number": bea.loyalty_number, "tier": "member"},
            {"loyalty_number": "000000000000", "tier": "gold"},
        ],
    }
    assert send(store, "members", message) == (
        "applied",
        "1 changed, 1 unchanged, 1 not members here",
    )
    assert members.get_member(store, ana.id).tier == "gold"  # type: ignore[union-attr]
    audit = store.conn.execute("SELECT actor_name, action, target, after FROM audit_log").fetchall()
    assert audit == [(HQ_ACTOR, "member.tier", f"member:{ana.id}", '{"tier": "gold"}')]
    # The same update again (a redelivery) is recognised by its id and changes nothing.
    store.conn.execute("UPDATE members SET tier = 'silver' WHERE id = ?", (ana.id,))
    assert send(store, "members", message)[0] == "duplicate"
    assert members.get_member(store, ana.id).tier == "silver"  # type: ignore[union-attr]


def test_a_member_update_is_all_or_nothing(store: sqlite_utils.Database) -> None:
    ana = members.create_member(store, display_name="Ana", password="x" * 12, email="a@x.com")
    message = {
        "message_id": "tiers-2",
        "members": [
            {"loyalty_number": ana.loyalty_number, "tier": "gold"},
            {"loyalty_number": ana.loyalty_number, "tier": ""},
        ],
    }
    outcome, detail = send(store, "members", message)
    assert outcome == "rejected" and "tier must be a non-empty string" in detail
    assert members.get_member(store, ana.id).tier == "member"  # type: ignore[union-attr]
