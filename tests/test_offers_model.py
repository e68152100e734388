"""Offer validation names the bad field; offers survive a round trip through a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlite_utils

from offers.model import InvalidOffer, get_offer, list_offers, save_offer, validate_offer


def offer_data(**changes: Any) -> dict[str, Any]:
    """A valid running-shoe offer; tests change one field at a time."""
    data: dict[str, Any] = {
        "name": "Spring runners",
        "title": "25% off trail shoes",
        "body": "Today only in Shoes.",
        "benefit_kind": "percent_off",
        "benefit_value": 25,
        "product": "TR-200 trail shoe",
        "product_tags": ["running", "outdoor"],
        "base_price_cents": 8000,
        "valid_from": "2025-03-01T08:00:00Z",
        "valid_to": "2025-04-01T08:00:00Z",
        "trigger_kind": "zone_dwell",
        "trigger_params": {"seconds": 30},
    }
    data.update(changes)
    return data


def test_a_valid_offer_is_accepted() -> None:
    offer = validate_offer(offer_data())
    assert offer.title == "25% off trail shoes"
    assert offer.valid_from == datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert offer.trigger_params == {"seconds": 30}
    assert offer.status == "draft"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"title": "  "}, "title must not be empty"),
        ({"title": "x" * 81}, "title is 81 characters long; at most 80 fit"),
        ({"name": None}, "name is required"),
        ({"colour": "red"}, "unknown field(s): colour"),
        ({"status": "archived"}, "status 'archived' is unknown"),
        ({"base_price_cents": -1}, "base_price_cents must be at least 0, not -1"),
        ({"base_price_cents": 12.5}, "base_price_cents must be a whole number"),
        ({"benefit_value": 120}, "benefit_value for percent_off must be between 1 and 100"),
        ({"benefit_kind": "bogof"}, "benefit_kind 'bogof' is unknown"),
        (
            {"benefit_kind": "fixed_price", "benefit_value": 9000},
            "benefit_value for fixed_price must be below the base price",
        ),
        (
            {"benefit_kind": "fixed_off", "benefit_value": 9000},
            "benefit_value for fixed_off must be between 1 cent and the base price",
        ),
        ({"benefit_kind": "multibuy", "benefit_value": 2}, "benefit_quantity is required"),
        (
            {"benefit_kind": "multibuy", "benefit_value": 3, "benefit_quantity": 3},
            "benefit_value for multibuy must be from 1 to 2",
        ),
        ({"benefit_quantity": 3}, "benefit_quantity is only for multibuy offers"),
        ({"valid_to": "2025-02-01T08:00:00Z"}, "valid_to must be after valid_from"),
        ({"valid_from": "next monday"}, "valid_from must be a UTC time like"),
        ({"trigger_kind": "zone_exit"}, "trigger_kind 'zone_exit' is unknown"),
        ({"trigger_params": {}}, "trigger_params.seconds is required for a zone_dwell trigger"),
        ({"trigger_params": {"seconds": 0}}, "seconds must be at least 1, not 0"),
        (
            {"trigger_kind": "revisit", "trigger_params": {"count": 3}},
            "trigger_params.window_seconds is required for a revisit trigger",
        ),
        (
            {"trigger_kind": "zone_enter"},
            "trigger_params for zone_enter do not take seconds",
        ),
        ({"audience": 'tierr == "gold"'}, "audience: unknown attribute 'tierr' at position 1"),
        ({"audience": "visits > 'five'"}, "audience: data type mismatch"),
        ({"quiet_hours": ["22:00"]}, "quiet_hours must be [start, end]"),
        ({"quiet_hours": ["10pm", "08:00"]}, "quiet_hours: '10pm' is not a time like '09:30'"),
        ({"store_hours": {"monday": ["09:00", "21:00"]}}, "store_hours: unknown weekday 'monday'"),
        (
            {"store_hours": {"mon": ["21:00", "09:00"]}},
            "store_hours.mon: the store must close after it opens",
        ),
        ({"per_member_cap": 2}, "per_member_cap and cap_window_seconds go together"),
        ({"holdout_percent": 101}, "holdout_percent must be between 0 and 100, not 101"),
        ({"exclusive": "yes"}, "exclusive must be true or false"),
        ({"zones": ["Shoes"]}, "zones must be a list of zone ids"),
        (
            {"variants": [{"name": "a"}, {"name": "a"}]},
            "variants[2]: the name 'a' is used twice",
        ),
    ],
)
def test_each_bad_field_is_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidOffer) as caught:
        validate_offer(offer_data(**changes))
    assert message in str(caught.value)


def test_unknown_zone_ids_are_refused_against_the_floor_plan(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        "INSERT INTO zones (id, name, polygon, created_at) VALUES (7, 'Shoes', '[]', ?)",
        ("2025-01-01T00:00:00Z",),
    )
    assert validate_offer(offer_data(zones=[7]), db).zones == (7,)
    with pytest.raises(InvalidOffer, match="zones: no zone with id 8, 9"):
        validate_offer(offer_data(zones=[7, 9, 8]), db)


def test_save_and_load_round_trip(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        "INSERT INTO zones (id, name, polygon, created_at) VALUES (3, 'Shoes', '[]', ?)",
        ("2025-01-01T00:00:00Z",),
    )
    offer = validate_offer(
        offer_data(
            zones=[3],
            store_hours={"mon": ["09:00", "21:00"], "sat": ["10:00", "14:00"]},
            quiet_hours=["22:00", "08:00"],
            audience='tier == "gold" and consents["marketing"]',
            per_member_cap=2,
            cap_window_seconds=86400,
            cooldown_seconds=3600,
            max_issued=500,
            max_discount_cents=100_000,
            priority=5,
            exclusive=True,
            holdout_percent=10,
            variants=[{"name": "a", "weight": 1}, {"name": "b", "weight": 3, "title": "B!"}],
            image="shoe.jpg",
        ),
        db,
    )
    offer_id = save_offer(db, offer)
    loaded = get_offer(db, offer_id)
    assert loaded is not None
    assert loaded.id == offer_id
    assert loaded.created_at and loaded.updated_at
    for name in ("title", "zones", "store_hours", "quiet_hours", "audience", "trigger_params"):
        assert getattr(loaded, name) == getattr(offer, name), name
    for name in ("valid_from", "valid_to", "exclusive", "variants", "per_member_cap", "image"):
        assert getattr(loaded, name) == getattr(offer, name), name
    assert loaded.schedule().quiet_hours is not None
    assert get_offer(db, offer_id + 1) is None


def test_save_updates_and_list_filters_by_status(db: sqlite_utils.Database) -> None:
    first = save_offer(db, validate_offer(offer_data(name="low", priority=1)))
    second = save_offer(db, validate_offer(offer_data(name="high", priority=9, status="live")))
    assert [o.name for o in list_offers(db)] == ["high", "low"]
    assert [o.id for o in list_offers(db, status="live")] == [second]

    db.conn.execute("UPDATE offers SET created_at = '2025-01-01T00:00:00Z' WHERE id = ?", (first,))
    changed = validate_offer({**offer_data(name="low", status="paused"), "id": first})
    assert save_offer(db, changed) == first
    assert [o.name for o in list_offers(db, status="paused")] == ["low"]
    reloaded = get_offer(db, first)
    assert reloaded is not None and reloaded.created_at == "2025-01-01T00:00:00Z"
    with pytest.raises(InvalidOffer, match="there is no offer with id 99"):
        save_offer(db, validate_offer({**offer_data(), "id": 99}))
    with pytest.raises(InvalidOffer, match="status 'gone' is unknown"):
        list_offers(db, status="gone")
