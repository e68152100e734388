"""The offer form: every field of ``offers.model.Offer`` in a manager's own units.

A manager thinks in the store's money ("79.90"), its wall clock ("1 March, 08:00" in the store),
zone names and durations like "4h"; the engine stores cents, UTC instants, zone ids and seconds.
This module converts one way (``offer_data`` → the mapping ``validate_offer`` takes) and back
(``form_values`` → what an edit form shows). Only the *shape* of each field is checked here (is it
a number, a time); every rule about what an offer may be is left to ``validate_offer``, so the
console and ``instore offers add`` refuse exactly the same offers, and its message is put under
the field it names (``field_for_message``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length

from instore.clock import to_iso
from offers.model import (
    BENEFIT_KINDS,
    BODY_MAX_CHARS,
    STATUSES,
    TITLE_MAX_CHARS,
    TRIGGER_KINDS,
    TRIGGER_REQUIRED_PARAMS,
    Offer,
)
from offers.schedule import WEEKDAYS
from portal.manage.offers_units import (
    format_duration,
    format_money,
    format_variants,
    parse_duration,
    parse_money,
    parse_variants,
    parse_whole,
)

# Benefits whose value is money: entered like the base price ("15.00"), stored in cents.
MONEY_BENEFITS: frozenset[str] = frozenset({"fixed_off", "fixed_price"})
# The shape a browser's <input type="datetime-local"> sends (seconds only with a step attribute).
LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"
# Offers run around now: a year outside these is a typo ("0205"), and staying well inside
# datetime's range means converting to UTC can never overflow.
EARLIEST_YEAR, LATEST_YEAR = 2000, 9000
# Names, products and pictures: a line on a phone; the offers table itself has no limit.
MAX_LINE_CHARS = 200
# The whole A/B variants box: a few variants of a title and body each; keeps a POST under 16 KB.
MAX_VARIANTS_CHARS = 4000
# An audience expression longer than this is no longer readable by the next manager.
MAX_AUDIENCE_CHARS = 1000
BENEFIT_LABELS: dict[str, Any] = {
    "percent_off": _l("Percent off"),
    "fixed_off": _l("Amount off"),
    "fixed_price": _l("Fixed sale price"),
    "multibuy": _l("Multibuy (buy N, pay for fewer)"),
    "points": _l("Loyalty points"),
}
TRIGGER_LABELS: dict[str, Any] = {
    "zone_enter": _l("Entering a zone"),
    "zone_dwell": _l("Staying in a zone"),
    "revisit": _l("Coming back (a repeat visit)"),
    "portal_login": _l("Signing in to the WiFi"),
}
STATUS_LABELS: dict[str, Any] = {
    "draft": _l("Draft (not sent)"),
    "live": _l("Live"),
    "paused": _l("Paused"),
}
WEEKDAY_LABELS: dict[str, Any] = {
    "mon": _l("Monday"),
    "tue": _l("Tuesday"),
    "wed": _l("Wednesday"),
    "thu": _l("Thursday"),
    "fri": _l("Friday"),
    "sat": _l("Saturday"),
    "sun": _l("Sunday"),
}


def _text(label: Any, limit: int = MAX_LINE_CHARS) -> StringField:
    return StringField(label, validators=[Length(max=limit)])


def _choice(label: Any, values: Iterable[str], labels: Mapping[str, Any]) -> SelectField:
    """A select of ``values`` that accepts any value, so that the engine's message names a wrong
    one (the console and ``instore offers add`` refuse the same offers)."""
    choices = [SelectChoice(value, labels[value]) for value in values]
    return SelectField(label, choices=choices, validate_choice=False)


class OfferForm(FlaskForm):
    """Every offer field; selects accept any value so that the engine's message names it."""

    name = _text(_l("Name (for staff; shoppers never see it)"))
    status = _choice(_l("Status"), STATUSES, STATUS_LABELS)
    title = _text(_l("Title on the shopper's phone"), TITLE_MAX_CHARS * 2)
    body = TextAreaField(_l("Text under the title"), validators=[Length(max=BODY_MAX_CHARS * 2)])
    image = _text(_l("Picture (address of an image; optional)"))
    product = _text(_l("Product"))
    product_tags = _text(_l("Product tags (comma-separated, e.g. running, outdoor)"))
    base_price = _text(_l("Base price (before the offer)"), 20)
    benefit_kind = _choice(_l("Benefit"), BENEFIT_KINDS, BENEFIT_LABELS)
    benefit_value = _text(_l("Benefit value"), 20)
    benefit_quantity = _text(_l("Multibuy: buy how many"), 20)
    zones = SelectMultipleField(_l("Zones"), validate_choice=False, render_kw={"size": 6})
    valid_from = _text(_l("Valid from (store time)"), 40)
    valid_to = _text(_l("Valid until (store time)"), 40)
    quiet_start = _text(_l("Quiet hours from"), 10)
    quiet_end = _text(_l("Quiet hours until"), 10)
    audience = TextAreaField(_l("Audience"), validators=[Length(max=MAX_AUDIENCE_CHARS)])
    trigger_kind = _choice(_l("Sent when a shopper is"), TRIGGER_KINDS, TRIGGER_LABELS)
    trigger_seconds = _text(_l("Staying at least (e.g. 45s, 2m)"), 40)
    trigger_count = _text(_l("Visit number (e.g. 3 for the third visit)"), 20)
    trigger_window = _text(_l("Within (e.g. 30d)"), 40)
    per_member_cap = _text(_l("At most this many per member"), 20)
    cap_window = _text(_l("… per (e.g. 1d, 7d)"), 40)
    cooldown = _text(_l("Wait between two sends to a member (e.g. 4h)"), 40)
    max_issued = _text(_l("Stop after this many sends"), 20)
    max_redeemed = _text(_l("Stop after this many redemptions"), 20)
    max_discount = _text(_l("Stop when the discount given reaches"), 20)
    priority = _text(_l("Priority (higher wins)"), 20)
    exclusive = BooleanField(_l("Exclusive: when it wins, no other offer is sent with it"))
    holdout_percent = _text(_l("Holdout: percent of members who never get it (0–100)"), 20)
    variants = TextAreaField(_l("A/B variants"), validators=[Length(max=MAX_VARIANTS_CHARS)])
    preview_member = SelectField(_l("Preview for"), validate_choice=False, coerce=str)


for _day in WEEKDAYS:
    setattr(OfferForm, f"hours_{_day}_open", _text(_l("Opens"), 10))
    setattr(OfferForm, f"hours_{_day}_close", _text(_l("Closes"), 10))

# The engine's field names (the first word of an InvalidOffer message) -> the form field to show it.
FIELD_FOR_KEY: dict[str, str] = {
    "name": "name",
    "status": "status",
    "title": "title",
    "body": "body",
    "image": "image",
    "product": "product",
    "product_tags": "product_tags",
    "base_price_cents": "base_price",
    "benefit_kind": "benefit_kind",
    "benefit_value": "benefit_value",
    "benefit_quantity": "benefit_quantity",
    "zones": "zones",
    "valid_from": "valid_from",
    "valid_to": "valid_to",
    "quiet_hours": "quiet_start",
    "audience": "audience",
    "trigger_kind": "trigger_kind",
    "trigger_params.seconds": "trigger_seconds",
    "trigger_params.count": "trigger_count",
    "trigger_params.window_seconds": "trigger_window",
    "trigger_params": "trigger_kind",
    "per_member_cap": "per_member_cap",
    "cap_window_seconds": "cap_window",
    "cooldown_seconds": "cooldown",
    "max_issued": "max_issued",
    "max_redeemed": "max_redeemed",
    "max_discount_cents": "max_discount",
    "priority": "priority",
    "exclusive": "exclusive",
    "holdout_percent": "holdout_percent",
    "variants": "variants",
    **{f"store_hours.{day}": f"hours_{day}_open" for day in WEEKDAYS},
    # Messages about a nested value name only its own key ("seconds must be at least 1").
    "seconds": "trigger_seconds",
    "count": "trigger_count",
    "window_seconds": "trigger_window",
    "weight": "variants",
}
_MESSAGE_KEY = re.compile(r"([a-z_]+(?:\.[a-z_]+)?)")


def field_for_message(message: str) -> str | None:
    """The form field an engine message is about ("valid_to must be after …" → valid_to)."""
    match = _MESSAGE_KEY.match(message)
    if match is None:
        return None
    key = match.group(1)
    return FIELD_FOR_KEY.get(key) or FIELD_FOR_KEY.get(key.split(".")[0])


def add_error(form: OfferForm, name: str | None, message: str) -> None:
    """Put ``message`` under field ``name``, or at the top of the form when it names none."""
    if name is None or name not in form:
        form.form_errors.append(message)
        return
    field = form[name]
    field.errors = [*field.errors, message]


# -- manager's units -> engine's units -----------------------------------------------------------
def _field_text(form: OfferForm, name: str) -> str:
    return str(form[name].data or "").strip()


def _optional(form: OfferForm, name: str, parse: Any, message: str) -> Any:
    """The parsed value of an optional field, None when empty, or an error under the field."""
    text = _field_text(form, name)
    if not text:
        return None
    try:
        return parse(text)
    except ValueError:
        add_error(form, name, message)
        return None


def _instant(form: OfferForm, name: str, zone: ZoneInfo) -> str | None:
    """A datetime-local value in the store's zone as UTC ISO text (None: empty or bad)."""
    text = _field_text(form, name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
        if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            raise ValueError(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return to_iso(moment)
    except ValueError:
        add_error(form, name, _("Enter a date and time like 2025-03-01 08:00 (store time)."))
        return None


def _clock(form: OfferForm, name: str) -> str:
    """A time input's "HH:MM" ("HH:MM:00" from some browsers loses its zero seconds)."""
    text = _field_text(form, name)
    return text[:5] if re.fullmatch(r"\d\d:\d\d:00", text) else text


def _store_hours(form: OfferForm) -> dict[str, list[str]] | None:
    """Opening hours per weekday; None when no day is filled in (no opening-hours limit)."""
    hours: dict[str, list[str]] = {}
    for day in WEEKDAYS:
        opens, closes = _clock(form, f"hours_{day}_open"), _clock(form, f"hours_{day}_close")
        if opens or closes:
            hours[day] = [opens, closes]
    return hours or None


def _quiet_hours(form: OfferForm) -> list[str] | None:
    start, end = _clock(form, "quiet_start"), _clock(form, "quiet_end")
    if not start and not end:
        return None
    return [start, end]


def offer_data(form: OfferForm, timezone: str) -> dict[str, Any] | None:
    """The fields ``validate_offer`` takes (zones still by name), or None after shape errors.

    Shape errors (not a number, not a time) go under their fields; every rule is the engine's.
    """
    zone = ZoneInfo(timezone)
    kind = _field_text(form, "benefit_kind")
    money_message = _("Enter an amount like 79.90.")
    whole_message = _("Enter a whole number, like 3.")
    duration_message = _("Enter a duration like 90s, 15m, 4h or 7d (a number alone is seconds).")
    base_price = _optional(form, "base_price", parse_money, money_message)
    if kind in MONEY_BENEFITS:
        benefit_value = _optional(form, "benefit_value", parse_money, money_message)
    else:
        benefit_value = _optional(form, "benefit_value", parse_whole, whole_message)
    trigger_kind = _field_text(form, "trigger_kind")
    trigger_params: dict[str, int] = {}
    for param, name, parse, message in (
        ("seconds", "trigger_seconds", parse_duration, duration_message),
        ("count", "trigger_count", parse_whole, whole_message),
        ("window_seconds", "trigger_window", parse_duration, duration_message),
    ):
        # Only the chosen trigger's own parameters: the others may hold a previous choice's.
        if param in TRIGGER_REQUIRED_PARAMS.get(trigger_kind, ()):
            value = _optional(form, name, parse, message)
            if value is not None:
                trigger_params[param] = value
    try:
        variants = parse_variants(str(form.variants.data or ""))
    except ValueError as error:
        add_error(form, "variants", str(error))
        variants = []
    tags = [tag.strip() for tag in _field_text(form, "product_tags").split(",") if tag.strip()]
    data: dict[str, Any] = {
        "name": _field_text(form, "name"),
        "status": _field_text(form, "status") or "draft",
        "title": _field_text(form, "title"),
        "body": _field_text(form, "body"),
        "image": _field_text(form, "image") or None,
        "product": _field_text(form, "product"),
        "product_tags": tags,
        "base_price_cents": base_price,
        "benefit_kind": kind,
        "benefit_value": benefit_value,
        # Like the trigger's parameters: only multibuy's own field (it may hold an old choice).
        "benefit_quantity": _optional(form, "benefit_quantity", parse_whole, whole_message)
        if kind == "multibuy"
        else None,
        "zones": [str(name) for name in form.zones.data or [] if str(name).strip()],
        "valid_from": _instant(form, "valid_from", zone),
        "valid_to": _instant(form, "valid_to", zone),
        "store_hours": _store_hours(form),
        "quiet_hours": _quiet_hours(form),
        "audience": str(form.audience.data or ""),
        "trigger_kind": trigger_kind,
        "trigger_params": trigger_params,
        "per_member_cap": _optional(form, "per_member_cap", parse_whole, whole_message),
        "cap_window_seconds": _optional(form, "cap_window", parse_duration, duration_message),
        "cooldown_seconds": _optional(form, "cooldown", parse_duration, duration_message) or 0,
        "max_issued": _optional(form, "max_issued", parse_whole, whole_message),
        "max_redeemed": _optional(form, "max_redeemed", parse_whole, whole_message),
        "max_discount_cents": _optional(form, "max_discount", parse_money, money_message),
        "priority": _optional(form, "priority", parse_whole, whole_message) or 0,
        "exclusive": bool(form.exclusive.data),
        "holdout_percent": _optional(form, "holdout_percent", parse_whole, whole_message) or 0,
        "variants": variants,
    }
    if any(form[name].errors for name in form._fields):
        return None
    return data


# -- engine's units -> manager's units -----------------------------------------------------------
def _local_input(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime(LOCAL_INPUT_FORMAT)


def form_values(offer: Offer, names: Mapping[int, str], timezone: str) -> dict[str, Any]:
    """What the form shows for a stored offer (the reverse of ``offer_data``)."""
    zone = ZoneInfo(timezone)
    money_value = offer.benefit_kind in MONEY_BENEFITS
    values: dict[str, Any] = {
        "name": offer.name,
        "status": offer.status,
        "title": offer.title,
        "body": offer.body,
        "image": offer.image or "",
        "product": offer.product,
        "product_tags": ", ".join(offer.product_tags),
        "base_price": format_money(offer.base_price_cents),
        "benefit_kind": offer.benefit_kind,
        "benefit_value": format_money(offer.benefit_value)
        if money_value
        else str(offer.benefit_value),
        "benefit_quantity": "" if offer.benefit_quantity is None else str(offer.benefit_quantity),
        "zones": [names.get(zone_id, str(zone_id)) for zone_id in offer.zones],
        "valid_from": _local_input(offer.valid_from, zone),
        "valid_to": _local_input(offer.valid_to, zone),
        "quiet_start": offer.quiet_hours[0] if offer.quiet_hours else "",
        "quiet_end": offer.quiet_hours[1] if offer.quiet_hours else "",
        "audience": offer.audience,
        "trigger_kind": offer.trigger_kind,
        "trigger_seconds": format_duration(offer.trigger_params.get("seconds")),
        "trigger_count": str(offer.trigger_params.get("count", "")),
        "trigger_window": format_duration(offer.trigger_params.get("window_seconds")),
        "per_member_cap": "" if offer.per_member_cap is None else str(offer.per_member_cap),
        "cap_window": format_duration(offer.cap_window_seconds),
        "cooldown": format_duration(offer.cooldown_seconds) if offer.cooldown_seconds else "",
        "max_issued": "" if offer.max_issued is None else str(offer.max_issued),
        "max_redeemed": "" if offer.max_redeemed is None else str(offer.max_redeemed),
        "max_discount": format_money(offer.max_discount_cents),
        "priority": str(offer.priority),
        "exclusive": offer.exclusive,
        "holdout_percent": str(offer.holdout_percent),
        "variants": format_variants(offer.variants),
    }
    for day in WEEKDAYS:
        span = (offer.store_hours or {}).get(day)
        values[f"hours_{day}_open"] = span[0] if span else ""
        values[f"hours_{day}_close"] = span[1] if span else ""
    return values


def weekday_fields(form: OfferForm) -> list[tuple[Any, Field, Field]]:
    """(day label, opens field, closes field) per weekday, for the template's hours table."""
    return [
        (WEEKDAY_LABELS[day], form[f"hours_{day}_open"], form[f"hours_{day}_close"])
        for day in WEEKDAYS
    ]
