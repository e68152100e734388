"""The personal price a member sees for an offer: one formula, in one function.

Money is integer cents throughout; shares are integer basis points (1/100 of a percent) so the
arithmetic is exact and the only rounding is the one stated, once per step.
"""

from __future__ import annotations

from collections.abc import Iterable

from offers.model import Offer

BASIS_POINTS = 10_000  # 100.00 %

# Extra discount on the published sale price by loyalty tier. Small on purpose: the published
# price is the promise to everyone; the tier only rewards loyalty on top of it. Unknown tiers get 0.
TIER_DISCOUNT_BP: dict[str, int] = {
    "member": 0,
    "silver": 300,  # 3 %
    "gold": 500,  # 5 %
}
# At most this much extra when every tag of the product is among the member's stated interests;
# a partial match earns the same share of it (2 of 4 tags -> half).
INTEREST_DISCOUNT_MAX_BP = 500  # 5 %
# Never below half the base price, whatever the adjustments: protects the margin.
PRICE_FLOOR_BP = 5_000  # 50 % of base_price_cents


def _round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator to the nearest whole number, halves up (both non-negative)."""
    return (2 * numerator + denominator) // (2 * denominator)


def published_sale_price_cents(offer: Offer) -> int:
    """The price per unit everyone is promised, from the offer's benefit.

    percent_off: base * (100 - p) / 100; fixed_off: base - value; fixed_price: value;
    multibuy "buy q pay for v": base * v / q (the unit price of the bundle); points: base (the
    benefit is points, not money). Rounded to the nearest cent, halves up.
    """
    base = offer.base_price_cents
    value = offer.benefit_value
    kind = offer.benefit_kind
    if kind == "percent_off":
        return _round_half_up(base * (100 - value), 100)
    if kind == "fixed_off":
        return max(0, base - value)
    if kind == "fixed_price":
        return value
    if kind == "multibuy":
        assert offer.benefit_quantity, "validated offers always have a multibuy quantity"
        return _round_half_up(base * value, offer.benefit_quantity)
    return base  # points


def interest_match_bp(product_tags: Iterable[str], interests: Iterable[str]) -> int:
    """Share of the product's tags among the member's interests, in basis points (0 if no tags)."""
    tags = {tag.strip().lower() for tag in product_tags}
    if not tags:
        return 0
    wanted = {interest.strip().lower() for interest in interests}
    return len(tags & wanted) * BASIS_POINTS // len(tags)


def personal_price_cents(offer: Offer, tier: str, interests: Iterable[str]) -> int:
    """The price this member sees, in cents.

    1. ``sale`` = the published sale price (``published_sale_price_cents``).
    2. ``discount`` = TIER_DISCOUNT_BP[tier] + INTEREST_DISCOUNT_MAX_BP * match, where ``match`` is
       the share of the product's tags that are among the member's interests (0 … 1),
       so the interest part is capped at INTEREST_DISCOUNT_MAX_BP; rounded down to a basis point.
    3. ``personal`` = sale * (1 - discount), rounded to the nearest cent, halves up.
    4. Clamped: never below ``floor`` = base * PRICE_FLOOR_BP (rounded up to the cent, so the floor
       is never undercut), and never above ``sale`` — the published price is a promise, so when the
       sale price is itself below the floor the member still pays the sale price.

    Example: base 8000, 25 % off → sale 6000; gold (5 %) with 1 of 2 tags matching (2.5 %) →
    7.5 % off → 5550 cents; floor 4000, so 5550.
    """
    sale = published_sale_price_cents(offer)
    match_bp = interest_match_bp(offer.product_tags, interests)
    discount_bp = (
        TIER_DISCOUNT_BP.get(tier, 0) + INTEREST_DISCOUNT_MAX_BP * match_bp // BASIS_POINTS
    )
    personal = _round_half_up(sale * (BASIS_POINTS - discount_bp), BASIS_POINTS)
    floor = -(-offer.base_price_cents * PRICE_FLOOR_BP // BASIS_POINTS)  # ceiling division
    return min(sale, max(personal, floor))
