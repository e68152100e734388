"""What an offer will look like and what it would have done: the offer page's preview and backtest.

The preview is the card the shopper's store page shows (``captive/store.html``), with the price a
chosen member would really see: ``offers.pricing.personal_price_cents`` with their tier and stated
interests, and the A/B variant they would be shown. The backtest replays the store's last week
through the real engine (``offers.backtest``) for the offer as it stands in the form, saved or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils
from flask import current_app
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from instore.clock import utcnow
from instore.members import get_member
from offers.attributes import member_interests, preview_members
from offers.backtest import BacktestReport, backtest
from offers.experiments import choose_variant
from offers.model import Offer
from offers.pricing import personal_price_cents
from portal.feed import money

# Members offered in the preview's "for" list: enough to compare tiers and interests, short
# enough to scan.
PREVIEW_MEMBERS_SHOWN = 8
# The "member" choice that is nobody in particular: standard tier, no stated interests.
ANY_MEMBER = "0"
# SQLite integers are 64-bit: a longer "id" from a tampered form is nobody, not an error.
MAX_ID_DIGITS = 18
# "Last week" for the backtest button: today and the six store-local days before it.
BACKTEST_DAYS = 7


@dataclass(frozen=True)
class SampleMember:
    """A member to preview for: who they are and what the personal price reads."""

    id: int
    label: str
    tier: str
    interests: tuple[str, ...]


def sample_members(db: sqlite_utils.Database) -> list[SampleMember]:
    """ "Any member" first, then recent shoppers (those with stated interests first)."""
    found = [SampleMember(0, _("Any member (no tier, no interests)"), "member", ())]
    for member_id, name, tier in preview_members(db, PREVIEW_MEMBERS_SHOWN):
        interests = member_interests(db, member_id)
        label = f"{name} ({tier}" + (f"; {', '.join(interests)})" if interests else ")")
        found.append(SampleMember(member_id, label, tier, interests))
    return found


def sample_member(db: sqlite_utils.Database, choice: str | None) -> SampleMember:
    """The member chosen in the form; unknown or empty choices preview for "any member"."""
    if choice and choice.isdigit() and len(choice) <= MAX_ID_DIGITS and choice != ANY_MEMBER:
        member = get_member(db, int(choice))
        if member is not None:
            interests = member_interests(db, member.id)
            return SampleMember(member.id, member.display_name, member.tier, interests)
    return sample_members(db)[0]


@dataclass(frozen=True)
class PreviewCard:
    """The store page's card for one member, as text the template and offers.js both show."""

    title: str
    body: str
    price: str | None  # "Your price: 55,50 €", or None for a points offer (no price is shown)
    was: str | None  # the crossed-out base price when the member pays less
    expires: str
    member: str
    variant: str | None
    note: str | None  # why the card looks as it does (a points offer, a variant)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def preview_card(db: sqlite_utils.Database, offer: Offer, member: SampleMember) -> PreviewCard:
    """The card ``member`` would see for ``offer`` if it were sent now (as the worker writes it)."""
    offer_id = offer.id or _next_offer_id(db)
    variant_name = choose_variant(offer_id, member.id, offer.variants) if member.id else None
    variant = next((v for v in offer.variants if v["name"] == variant_name), {})
    note = None
    price = was = None
    if offer.benefit_kind == "points":
        note = _("A points offer shows no price on the phone.")
    else:
        cents = personal_price_cents(offer, member.tier, member.interests)
        price = _("Your price: %(price)s", price=money(cents))
        if offer.base_price_cents > cents:
            was = _("was %(price)s", price=money(offer.base_price_cents))
    if variant_name is not None:
        note = _("This member is shown variant %(name)s.", name=variant_name)
    code_hours = int(current_app.config["INSTORE"]["offers"]["code_valid_hours"])
    expires = min(utcnow() + timedelta(hours=code_hours), offer.valid_to)
    return PreviewCard(
        title=str(variant.get("title") or offer.title),
        body=str(variant.get("body") or offer.body),
        price=price,
        was=was,
        expires=_("Valid until %(time)s", time=format_datetime(expires, "short")),
        member=member.label,
        variant=variant_name,
        note=note,
    )


def _next_offer_id(db: sqlite_utils.Database) -> int:
    """The id a new offer will get, so a draft's variant split is the one it will really have."""
    return int(db.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM offers").fetchone()[0])


def last_week_backtest(db: sqlite_utils.Database, offer: Offer) -> BacktestReport:
    """The offer replayed over the store's last seven local days, today included."""
    config = current_app.config["INSTORE"]
    timezone = config["store"]["timezone"]
    today = utcnow().astimezone(ZoneInfo(timezone)).date()
    return backtest(
        db,
        offer,
        today - timedelta(days=BACKTEST_DAYS - 1),
        today,
        timezone,
        int(config["offers"]["global_cooldown_seconds"]),
    )


# The backtest's outcomes (offers.backtest.OUTCOMES) in a manager's words.
OUTCOME_LABELS: dict[str, Any] = {
    "sent": _l("sent"),
    "no_consent": _l("not allowed (no marketing or location consent)"),
    "out_of_schedule": _l("outside the dates or opening hours"),
    "quiet_hours": _l("in quiet hours"),
    "not_in_audience": _l("not in the audience"),
    "budget_spent": _l("budget spent"),
    "capped": _l("member cap reached"),
    "cooldown": _l("too soon after the last send"),
    "holdout": _l("held out (control group)"),
}
