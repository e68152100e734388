"""What a till records: a member's offer code redeemed, or a loyalty purchase made without one.

``redeem`` answers with what the member saves, or refuses with a ``RedemptionRefused`` carrying an
HTTP status, a machine-readable error code and a sentence for the cashier. The checks run in the
order a cashier needs to hear them:

1. 400 ``malformed_code``: not shaped like a code at all (a typo, the wrong barcode).
2. 422 ``other_store``: another store's prefix. Refused before any lookup, since the code is not
   ours to judge; the sentence names the store the shopper can take it to. 422, not 404: the code
   may well be real, just not here.
3. 404 ``unknown_code``: no such code was issued here (or its member has erased their data).
4. 409 ``already_redeemed``: with when and at which till, so the cashier can sort it out.
5. 410 ``expired``: with when it expired, in store time. Gone for good, hence 410.
6. 410 ``offer_withdrawn``: the offer behind the code was deleted (codes of a *paused* offer stay
   redeemable until they expire: the code was a promise to the member).
7. 409 ``budget_spent``: the offer's ``max_redeemed`` or ``max_discount_cents`` would be exceeded.
   409, not 410: nothing is wrong with the code and the offer's state can change (a manager can
   raise the budget), which is what Conflict means.

Race-safety: two tills scanning one code at once can both pass checks 1-7, since each reads before
either writes. The write (budget check, then insert) is one ``BEGIN IMMEDIATE`` transaction, so
budgets are counted one redemption at a time, and the UNIQUE(code) constraint on ``redemptions``
decides the code itself: the second insert fails and that till gets the same 409 as a late one.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from instore.clock import from_iso, to_iso
from instore.db import transaction
from instore.members import find_by_identifier, normalize_identifier
from offers.codes import ALPHABET, CODE_CHARS, GROUP, normalize_code, store_of
from offers.model import Offer, get_offer
from offers.tills import Till

log = logging.getLogger(__name__)

# The shape a cashier is told to look for when a code is malformed.
CODE_EXAMPLE = "S001-7KQ2-M9XD"
# A single till line above 100,000.00 is a typo (an extra zero), not a purchase.
AMOUNT_MAX_CENTS = 10_000_000


class TillRefusal(Exception):
    """A till request that cannot be done: an HTTP status, a machine code and a human sentence."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def to_json(self) -> dict[str, str]:
        """The error body every till endpoint answers with."""
        return {"error": self.error_code, "message": self.message}


class RedemptionRefused(TillRefusal):
    """A code that cannot be redeemed (see the module docstring for the statuses)."""


class PurchaseRefused(TillRefusal):
    """A loyalty purchase that cannot be recorded."""


@dataclass(frozen=True)
class Redemption:
    """One redeemed code: which offer, whose, where, and what the member saved."""

    id: int
    code: str
    offer_id: int
    offer_title: str
    member_id: int
    member_name: str
    till_id: int
    ts: str
    discount_cents: int

    def to_json(self) -> dict[str, Any]:
        """What the till shows: the offer, the saving and the member's name (no member id)."""
        return {
            "redeemed": True,
            "code": self.code,
            "offer": {"id": self.offer_id, "title": self.offer_title},
            "discount_cents": self.discount_cents,
            "member": self.member_name,
            "redeemed_at": self.ts,
        }


@dataclass(frozen=True)
class Purchase:
    """One loyalty purchase scanned at a till without a code."""

    id: int
    member_id: int
    member_name: str
    product: str
    amount_cents: int
    till_id: int
    ts: str

    def to_json(self) -> dict[str, Any]:
        """What the till shows back (no member id)."""
        return {
            "recorded": True,
            "member": self.member_name,
            "product": self.product,
            "amount_cents": self.amount_cents,
            "purchased_at": self.ts,
        }


@dataclass(frozen=True)
class _Issued:
    """The notification that carried a code: whose it is, for which offer, at what price."""

    notification_id: int
    member_id: int
    member_name: str
    offer_id: int | None
    price_cents: int | None
    expires_at: str | None


def _local(stored: str, timezone: str) -> str:
    """A stored UTC time as the cashier reads it: store-local, to the minute, zone named."""
    moment = from_iso(stored).astimezone(ZoneInfo(timezone))
    return f"{moment:%Y-%m-%d %H:%M} ({timezone})"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def canonical_code(text: str) -> str:
    """A code as typed or scanned, in its stored form, or ``RedemptionRefused`` (400).

    On top of ``normalize_code`` this accepts the body without its middle dash
    (``S001-7KQ2M9XD``), as some scanners and hurried cashiers drop it.
    """
    code = normalize_code(text)
    store = store_of(code)
    body = code.partition("-")[2].replace("-", "")
    if not store or len(body) != CODE_CHARS or any(char not in ALPHABET for char in body):
        raise RedemptionRefused(
            400,
            "malformed_code",
            f"{text.strip()!r} is not a redemption code; codes look like {CODE_EXAMPLE}.",
        )
    groups = [body[i : i + GROUP] for i in range(0, CODE_CHARS, GROUP)]
    return "-".join([store, *groups])


def discount_cents(offer: Offer, price_cents: int | None) -> int:
    """What the member saves with one redemption: base price minus their personal price.

    A points offer saves no money (0). A multibuy's stored price is the unit price within the
    bundle and a code buys one bundle, so the saving is per unit times the bundle size ("buy 4,
    pay for 2" at 10.00 saves 20.00). No stored price saves 0 rather than a guess.
    """
    if offer.benefit_kind == "points" or price_cents is None:
        return 0
    per_unit = max(0, offer.base_price_cents - price_cents)
    if offer.benefit_kind == "multibuy" and offer.benefit_quantity:
        return per_unit * offer.benefit_quantity
    return per_unit


def redeemed_totals(db: sqlite_utils.Database, offer_id: int) -> tuple[int, int]:
    """How many codes of this offer were redeemed and the discount given away, in cents.

    Counts redemptions of erased members too: the money was spent whoever it went to.
    """
    count, spent = db.conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(discount_cents), 0) FROM redemptions WHERE offer_id = ?",
        (offer_id,),
    ).fetchone()
    return int(count), int(spent)


def _issued(db: sqlite_utils.Database, code: str) -> _Issued | None:
    row = db.conn.execute(
        """SELECT n.id, n.member_id, m.display_name, n.offer_id, n.price_cents, n.expires_at
           FROM notifications n JOIN members m ON m.id = n.member_id
           WHERE n.code = ? AND n.kind = 'offer'""",
        (code,),
    ).fetchone()
    return None if row is None else _Issued(*row)


def _existing_redemption(db: sqlite_utils.Database, code: str) -> tuple[str, str] | None:
    """When and at which till (by name) this code was redeemed, or None."""
    row = db.conn.execute(
        """SELECT r.ts, t.name FROM redemptions r JOIN tills t ON t.id = r.till_id
           WHERE r.code = ?""",
        (code,),
    ).fetchone()
    return None if row is None else (row[0], row[1])


def _already_redeemed(code: str, previous: tuple[str, str], timezone: str) -> RedemptionRefused:
    when, till_name = previous
    return RedemptionRefused(
        409,
        "already_redeemed",
        f"Code {code} was already redeemed on {_local(when, timezone)} at till {till_name!r}; "
        "a code can be used once.",
    )


def _check_budget(db: sqlite_utils.Database, offer: Offer, saving: int) -> None:
    """Refuse (409) when this redemption would go past the offer's redemption budget."""
    assert offer.id is not None
    count, spent = redeemed_totals(db, offer.id)
    if offer.max_redeemed is not None and count >= offer.max_redeemed:
        raise RedemptionRefused(
            409,
            "budget_spent",
            f"Offer {offer.title!r} has reached its limit of {offer.max_redeemed} redemptions; "
            "no more codes for it can be redeemed unless a manager raises the limit.",
        )
    # A hard cap: the redemption that would go past it is refused, not the one after.
    if offer.max_discount_cents is not None and spent + saving > offer.max_discount_cents:
        left = max(0, offer.max_discount_cents - spent)
        raise RedemptionRefused(
            409,
            "budget_spent",
            f"Offer {offer.title!r} has {_money(left)} left of its "
            f"{_money(offer.max_discount_cents)} discount budget, less than this code's "
            f"{_money(saving)}; it cannot be redeemed unless a manager raises the budget.",
        )


def _claim(
    db: sqlite_utils.Database,
    code: str,
    issued: _Issued,
    offer: Offer,
    till: Till,
    now: datetime,
    saving: int,
    timezone: str,
) -> Redemption:
    """Check the budget and insert, as one write; the UNIQUE(code) constraint settles races."""
    assert offer.id is not None
    ts = to_iso(now)
    try:
        with transaction(db):
            _check_budget(db, offer, saving)
            cursor = db.conn.execute(
                """INSERT INTO redemptions (code, notification_id, offer_id, member_id, till_id,
                                            ts, discount_cents)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (code, issued.notification_id, offer.id, issued.member_id, till.id, ts, saving),
            )
    except sqlite3.IntegrityError:
        # Another till inserted this code between our checks and our write: it won.
        previous = _existing_redemption(db, code)
        if previous is None:
            raise
        raise _already_redeemed(code, previous, timezone) from None
    log.info(
        "code redeemed",
        extra={"offer_id": offer.id, "till_id": till.id, "discount_cents": saving},
    )
    return Redemption(
        id=int(cursor.lastrowid or 0),
        code=code,
        offer_id=offer.id,
        offer_title=offer.title,
        member_id=issued.member_id,
        member_name=issued.member_name,
        till_id=till.id,
        ts=ts,
        discount_cents=saving,
    )


def redeem(
    db: sqlite_utils.Database,
    code: str,
    till: Till,
    now: datetime,
    store_id: str,
    *,
    timezone: str = "UTC",
) -> Redemption:
    """Redeem a code at ``till``, or raise ``RedemptionRefused`` (see the module docstring).

    ``store_id`` is this store's code prefix (``[store] id``); ``timezone`` is the store's, for
    the times in refusal sentences.
    """
    canonical = canonical_code(code)
    store = store_of(canonical)
    if store != store_id.upper():
        raise RedemptionRefused(
            422,
            "other_store",
            f"Code {canonical} was issued by store {store}, not by this store "
            f"({store_id.upper()}); the shopper can redeem it at store {store}.",
        )
    issued = _issued(db, canonical)
    if issued is None:
        raise RedemptionRefused(
            404,
            "unknown_code",
            f"There is no code {canonical} at this store; check it and scan or type it again.",
        )
    previous = _existing_redemption(db, canonical)
    if previous is not None:
        raise _already_redeemed(canonical, previous, timezone)
    if issued.expires_at is not None and now > from_iso(issued.expires_at):
        raise RedemptionRefused(
            410,
            "expired",
            f"Code {canonical} expired on {_local(issued.expires_at, timezone)}; "
            "it can no longer be redeemed.",
        )
    offer = None if issued.offer_id is None else get_offer(db, issued.offer_id)
    if offer is None:
        raise RedemptionRefused(
            410,
            "offer_withdrawn",
            f"The offer behind code {canonical} has been withdrawn; it can no longer be redeemed.",
        )
    saving = discount_cents(offer, issued.price_cents)
    return _claim(db, canonical, issued, offer, till, now, saving, timezone)


def record_purchase(
    db: sqlite_utils.Database,
    loyalty_number: str,
    product: str,
    amount_cents: int,
    till: Till,
    now: datetime,
) -> Purchase:
    """Record a loyalty card scanned at a till with no code, or raise ``PurchaseRefused``.

    These purchases are how the holdout group's buying is seen, so lift compares like with like
    (see ``offers.attribution``). An unknown loyalty number is a 404 that says nothing more: the
    till learns only that the card is not a member's.
    """
    kind, digits = normalize_identifier(loyalty_number)
    if kind != "loyalty":
        raise PurchaseRefused(
            400,
            "bad_loyalty_number",
            "loyalty_number must be the digits printed on the member's card.",
        )
    name = " ".join(product.split())
    if not name:
        raise PurchaseRefused(400, "missing_field", "product must name what was bought.")
    if not 0 <= amount_cents <= AMOUNT_MAX_CENTS:
        raise PurchaseRefused(
            400,
            "bad_amount",
            f"amount_cents must be between 0 and {AMOUNT_MAX_CENTS} (whole cents), "
            f"not {amount_cents}.",
        )
    member = find_by_identifier(db, digits)
    if member is None:
        raise PurchaseRefused(
            404,
            "unknown_member",
            "No member has that loyalty number; check the card and scan it again.",
        )
    ts = to_iso(now)
    cursor = db.conn.execute(
        """INSERT INTO purchases (member_id, product, till_id, ts, amount_cents)
           VALUES (?, ?, ?, ?, ?)""",
        (member.id, name, till.id, ts, amount_cents),
    )
    return Purchase(
        id=int(cursor.lastrowid or 0),
        member_id=member.id,
        member_name=member.display_name,
        product=name,
        amount_cents=amount_cents,
        till_id=till.id,
        ts=ts,
    )


def issued_and_redeemed_counts(db: sqlite_utils.Database) -> dict[int, tuple[int, int]]:
    """Offer id -> (sends, redemptions), for every offer with either; the console's offer list.

    Sends are the engine's ``sent`` decisions (what ``max_issued`` counts); two grouped queries
    instead of two per offer.
    """
    counts: dict[int, tuple[int, int]] = {}
    for offer_id, sent in db.conn.execute(
        """SELECT offer_id, COUNT(*) FROM decisions
           WHERE outcome = 'sent' AND offer_id IS NOT NULL GROUP BY offer_id"""
    ):
        counts[int(offer_id)] = (int(sent), 0)
    for offer_id, redeemed in db.conn.execute(
        "SELECT offer_id, COUNT(*) FROM redemptions WHERE offer_id IS NOT NULL GROUP BY offer_id"
    ):
        counts[int(offer_id)] = (counts.get(int(offer_id), (0, 0))[0], int(redeemed))
    return counts
