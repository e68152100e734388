"""Experiments on an offer: a holdout group and A/B variants, both by sticky hash buckets.

A member's bucket is a hash of (offer id, member id), never a random draw, so the same member is in
the same group and sees the same variant every time, on every worker and after a restart, with
nothing stored. Holdout and variant hashes use different salts: who is held out says nothing about
which variant the others see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

# Holdout is given in whole percent, so one bucket per percent is exactly fine enough.
HOLDOUT_BUCKETS = 100


def sticky_hash(salt: str, offer_id: int, member_id: int) -> int:
    """A stable, well-spread 64-bit number for this offer and member (not ``hash()``: salted)."""
    digest = hashlib.sha256(f"{salt}:{offer_id}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def holdout_bucket(offer_id: int, member_id: int) -> int:
    """The member's holdout bucket for this offer, 0 to 99."""
    return sticky_hash("holdout", offer_id, member_id) % HOLDOUT_BUCKETS


def is_held_out(offer_id: int, member_id: int, holdout_percent: int) -> bool:
    """True for the ``holdout_percent`` % of members who never get this offer (the control)."""
    return holdout_bucket(offer_id, member_id) < holdout_percent


def choose_variant(
    offer_id: int, member_id: int, variants: Sequence[Mapping[str, Any]]
) -> str | None:
    """The name of the variant this member sees, in proportion to the weights; None if none."""
    if not variants:
        return None
    total = sum(int(variant.get("weight", 1)) for variant in variants)
    point = sticky_hash("variant", offer_id, member_id) % total
    for variant in variants:
        point -= int(variant.get("weight", 1))
        if point < 0:
            return str(variant["name"])
    raise AssertionError("unreachable: the point is below the total weight")
