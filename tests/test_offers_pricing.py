"""Personal prices: worked examples of the one formula in offers.pricing."""

from __future__ import annotations

from typing import Any

import pytest

from offers.model import Offer, validate_offer
from offers.pricing import interest_match_bp, personal_price_cents, published_sale_price_cents


def offer(kind: str, value: int, base: int = 8000, **extra: Any) -> Offer:
    return validate_offer(
        {
            "name": "example",
            "title": "example",
            "benefit_kind": kind,
            "benefit_value": value,
            "product": "TR-200",
            "product_tags": ["running", "outdoor"],
            "base_price_cents": base,
            "valid_from": "2025-03-01T00:00:00Z",
            "valid_to": "2025-04-01T00:00:00Z",
            "trigger_kind": "zone_enter",
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("kind", "value", "base", "extra", "sale"),
    [
        ("percent_off", 25, 8000, {}, 6000),
        ("percent_off", 15, 999, {}, 849),  # 849.15 -> 849
        ("percent_off", 50, 1001, {}, 501),  # 500.5 -> 501, halves up
        ("fixed_off", 1500, 8000, {}, 6500),
        ("fixed_price", 4999, 8000, {}, 4999),
        ("multibuy", 2, 900, {"benefit_quantity": 3}, 600),  # 3 for 2: unit price of the bundle
        ("multibuy", 1, 1000, {"benefit_quantity": 3}, 333),  # 333.33 -> 333
        ("points", 200, 8000, {}, 8000),  # points do not change the price
    ],
)
def test_published_sale_price(
    kind: str, value: int, base: int, extra: dict[str, Any], sale: int
) -> None:
    assert published_sale_price_cents(offer(kind, value, base, **extra)) == sale


# (benefit kind, value, base, tier, interests, expected personal price, why)
WORKED_EXAMPLES = [
    ("percent_off", 25, 8000, "member", [], 6000, "member, no interests: the sale price"),
    ("percent_off", 25, 8000, "silver", [], 5820, "6000 less 3 %"),
    ("percent_off", 25, 8000, "gold", [], 5700, "6000 less 5 %"),
    ("percent_off", 25, 8000, "gold", ["running"], 5550, "5 % + half of 5 % = 7.5 %"),
    ("percent_off", 25, 8000, "gold", ["Running", "outdoor", "yoga"], 5400, "5 % + 5 % = 10 %"),
    ("percent_off", 25, 8000, "member", ["outdoor", "running"], 5700, "interest part alone"),
    ("percent_off", 25, 8000, "platinum", [], 6000, "unknown tier gets no tier discount"),
    ("fixed_price", 4100, 8000, "gold", ["running", "outdoor"], 4000, "3690 clamped to floor"),
    ("percent_off", 60, 8000, "gold", ["running"], 3200, "sale below floor: sale wins"),
    ("percent_off", 10, 999, "silver", [], 872, "899 less 3 % = 872.03 -> 872"),
    ("percent_off", 10, 1003, "gold", [], 858, "903 less 5 % = 857.85 -> 858"),
    ("fixed_price", 1100, 1999, "gold", ["running", "outdoor"], 1000, "990 < floor 999.5 -> 1000"),
]


@pytest.mark.parametrize(
    ("kind", "value", "base", "tier", "interests", "expected", "why"), WORKED_EXAMPLES
)
def test_personal_price_worked_examples(
    kind: str, value: int, base: int, tier: str, interests: list[str], expected: int, why: str
) -> None:
    assert personal_price_cents(offer(kind, value, base), tier, interests) == expected, why


def test_personal_price_never_above_the_published_sale_price() -> None:
    for tier in ("member", "silver", "gold", "unknown"):
        for interests in ([], ["running"], ["running", "outdoor"]):
            item = offer("percent_off", 5, 1234)
            assert personal_price_cents(item, tier, interests) <= published_sale_price_cents(item)


def test_interest_match_is_a_share_of_the_product_tags() -> None:
    assert interest_match_bp([], ["running"]) == 0
    assert interest_match_bp(["running", "outdoor"], []) == 0
    assert interest_match_bp(["running", "outdoor"], ["RUNNING"]) == 5000
    assert interest_match_bp(["a", "b", "c"], ["a", "b", "c", "d"]) == 10_000
