"""What an offer is, how a manager's offer file is checked, and how offers are stored.

``validate_offer`` is the one gate between text a manager wrote (a TOML/JSON file, a form) and the
``offers`` table: every field is checked and the first problem is reported as a sentence naming the
field, so "instore offers add" and the manage pages can show it as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import sqlite_utils

from instore.clock import from_iso, now_iso, to_iso
from offers import audience, schedule

STATUSES: tuple[str, ...] = ("draft", "live", "paused")
BENEFIT_KINDS: tuple[str, ...] = ("percent_off", "fixed_off", "fixed_price", "multibuy", "points")
TRIGGER_KINDS: tuple[str, ...] = ("zone_enter", "zone_dwell", "revisit", "portal_login")
# The parameters each trigger needs, all positive whole numbers.
TRIGGER_REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "zone_enter": (),
    "zone_dwell": ("seconds",),  # dwell at least this long in one of the zones
    "revisit": ("count", "window_seconds"),  # the count-th visit within the window
    "portal_login": (),
}
# Long enough for a headline on a lock screen; push services truncate beyond this anyway.
TITLE_MAX_CHARS = 80
# A whole notification body; keeps the SSE/Web Push payload well under the 4 KB push limit.
BODY_MAX_CHARS = 500


class InvalidOffer(ValueError):
    """An offer a manager wrote that cannot be saved; the message names the field."""


@dataclass(frozen=True)
class Offer:
    """One offer: what, where, when, who, trigger, limits, priority and experiments."""

    name: str
    title: str
    benefit_kind: str
    benefit_value: int  # percent, cents off, price in cents, "pay for" count, or points
    product: str
    base_price_cents: int
    valid_from: datetime
    valid_to: datetime
    trigger_kind: str
    id: int | None = None
    status: str = "draft"
    body: str = ""
    image: str | None = None
    benefit_quantity: int | None = None  # multibuy only: "buy this many"
    product_tags: tuple[str, ...] = ()
    zones: tuple[int, ...] = ()
    store_hours: dict[str, tuple[str, str]] | None = None  # local "HH:MM" per weekday
    quiet_hours: tuple[str, str] | None = None  # local "HH:MM"; may wrap midnight
    audience: str = ""  # "" = every member
    trigger_params: dict[str, int] = field(default_factory=dict)
    per_member_cap: int | None = None
    cap_window_seconds: int | None = None
    cooldown_seconds: int = 0
    max_issued: int | None = None
    max_redeemed: int | None = None
    max_discount_cents: int | None = None
    priority: int = 0
    exclusive: bool = False
    holdout_percent: int = 0
    variants: tuple[dict[str, Any], ...] = ()
    created_at: str | None = None
    updated_at: str | None = None

    def schedule(self) -> schedule.Schedule:
        """The offer's *when*, parsed for ``schedule.check_schedule``."""
        return schedule.Schedule(
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            store_hours=None
            if self.store_hours is None
            else schedule.parse_store_hours(self.store_hours),
            quiet_hours=None
            if self.quiet_hours is None
            else schedule.parse_quiet_hours(self.quiet_hours),
        )


_FIELD_NAMES = frozenset(f.name for f in fields(Offer))
_REQUIRED: tuple[str, ...] = (
    "name",
    "title",
    "benefit_kind",
    "benefit_value",
    "product",
    "base_price_cents",
    "valid_from",
    "valid_to",
    "trigger_kind",
)


def _text(data: Mapping[str, Any], key: str, *, required: bool, limit: int | None = None) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidOffer(f"{key} must be text")
    value = value.strip()
    if required and not value:
        raise InvalidOffer(f"{key} must not be empty")
    if limit is not None and len(value) > limit:
        raise InvalidOffer(f"{key} is {len(value)} characters long; at most {limit} fit")
    return value


def _whole(
    data: Mapping[str, Any], key: str, *, minimum: int = 0, default: int | None = None
) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    # bool is an int in Python; "exclusive = true" in the wrong place must not become 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOffer(f"{key} must be a whole number, not {value!r}")
    if value < minimum:
        raise InvalidOffer(f"{key} must be at least {minimum}, not {value}")
    return value


def _instant(data: Mapping[str, Any], key: str) -> datetime:
    value = data[key]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidOffer(f"{key} must say its time zone (UTC, e.g. 2025-03-01T08:00:00Z)")
        return from_iso(to_iso(value))
    try:
        return from_iso(str(value))
    except ValueError:
        raise InvalidOffer(
            f"{key} must be a UTC time like 2025-03-01T08:00:00Z, not {value!r}"
        ) from None


def _benefit(data: Mapping[str, Any], base_price: int) -> tuple[str, int, int | None]:
    kind = data["benefit_kind"]
    if kind not in BENEFIT_KINDS:
        raise InvalidOffer(
            f"benefit_kind {kind!r} is unknown; use one of {', '.join(BENEFIT_KINDS)}"
        )
    value = _whole(data, "benefit_value")
    assert value is not None  # required, checked by the caller
    quantity = _whole(data, "benefit_quantity", minimum=2)
    if kind != "multibuy" and quantity is not None:
        raise InvalidOffer("benefit_quantity is only for multibuy offers")
    if kind == "percent_off" and not 1 <= value <= 100:
        raise InvalidOffer(f"benefit_value for percent_off must be between 1 and 100, not {value}")
    if kind == "fixed_off" and not 1 <= value <= base_price:
        raise InvalidOffer("benefit_value for fixed_off must be between 1 cent and the base price")
    if kind == "fixed_price" and value >= base_price:
        raise InvalidOffer("benefit_value for fixed_price must be below the base price")
    if kind == "multibuy":
        if quantity is None:
            raise InvalidOffer("benefit_quantity is required for multibuy (e.g. 3 for '3 for 2')")
        if not 1 <= value < quantity:
            raise InvalidOffer(f"benefit_value for multibuy must be from 1 to {quantity - 1}")
    if kind == "points" and value < 1:
        raise InvalidOffer("benefit_value for points must be at least 1 point")
    return kind, value, quantity


def _trigger(data: Mapping[str, Any]) -> tuple[str, dict[str, int]]:
    kind = data["trigger_kind"]
    if kind not in TRIGGER_KINDS:
        raise InvalidOffer(
            f"trigger_kind {kind!r} is unknown; use one of {', '.join(TRIGGER_KINDS)}"
        )
    params = data.get("trigger_params") or {}
    if not isinstance(params, Mapping):
        raise InvalidOffer("trigger_params must be a table of names to numbers")
    needed = TRIGGER_REQUIRED_PARAMS[kind]
    extra = sorted(set(params) - set(needed))
    if extra:
        raise InvalidOffer(f"trigger_params for {kind} do not take {', '.join(extra)}")
    checked: dict[str, int] = {}
    for name in needed:
        if name not in params:
            raise InvalidOffer(f"trigger_params.{name} is required for a {kind} trigger")
        number = _whole(params, name, minimum=1)
        assert number is not None
        checked[name] = number
    return kind, checked


def _string_list(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) and v.strip() for v in value
    ):
        raise InvalidOffer(f"{key} must be a list of words")
    return tuple(v.strip().lower() for v in value)


def _zones(data: Mapping[str, Any], db: sqlite_utils.Database | None) -> tuple[int, ...]:
    value = data.get("zones") or []
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise InvalidOffer("zones must be a list of zone ids")
    if db is not None and value:
        known = {row[0] for row in db.conn.execute("SELECT id FROM zones")}
        unknown = sorted(set(value) - known)
        if unknown:
            raise InvalidOffer(f"zones: no zone with id {', '.join(map(str, unknown))}")
    return tuple(value)


def _variants(data: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    value = data.get("variants") or []
    if not isinstance(value, list | tuple):
        raise InvalidOffer("variants must be a list of {name, weight, title?, body?}")
    names: set[str] = set()
    result = []
    for number, variant in enumerate(value, start=1):
        where = f"variants[{number}]"
        if not isinstance(variant, Mapping):
            raise InvalidOffer(f"{where} must be a table with a name and a weight")
        extra = sorted(set(variant) - {"name", "weight", "title", "body"})
        if extra:
            raise InvalidOffer(f"{where} has unknown keys: {', '.join(extra)}")
        name = _text(variant, "name", required=True)
        if name in names:
            raise InvalidOffer(f"{where}: the name {name!r} is used twice")
        names.add(name)
        weight = _whole(variant, "weight", minimum=1, default=1)
        result.append({**variant, "name": name, "weight": weight})
    return tuple(result)


def validate_offer(data: Mapping[str, Any], db: sqlite_utils.Database | None = None) -> Offer:
    """An ``Offer`` from a manager's fields, or ``InvalidOffer`` naming the first bad field.

    With ``db``, zone ids are checked against the floor plan too.
    """
    unknown = sorted(set(data) - _FIELD_NAMES)
    if unknown:
        raise InvalidOffer(f"unknown field(s): {', '.join(unknown)}")
    for key in _REQUIRED:
        if data.get(key) is None:
            raise InvalidOffer(f"{key} is required")
    status = data.get("status", "draft")
    if status not in STATUSES:
        raise InvalidOffer(f"status {status!r} is unknown; use one of {', '.join(STATUSES)}")
    base_price = _whole(data, "base_price_cents")
    assert base_price is not None
    kind, value, quantity = _benefit(data, base_price)
    valid_from, valid_to = _instant(data, "valid_from"), _instant(data, "valid_to")
    if valid_to <= valid_from:
        raise InvalidOffer("valid_to must be after valid_from")
    store_hours, quiet_hours = data.get("store_hours"), data.get("quiet_hours")
    try:
        if store_hours is not None:
            schedule.parse_store_hours(store_hours)
        if quiet_hours is not None:
            schedule.parse_quiet_hours(quiet_hours)
    except schedule.InvalidSchedule as error:
        raise InvalidOffer(str(error)) from None
    audience_text = data.get("audience") or ""
    if not isinstance(audience_text, str):
        raise InvalidOffer('audience must be an expression as text, e.g. tier == "gold"')
    try:
        audience_text = audience.validate_audience(audience_text)
    except audience.InvalidAudience as error:
        raise InvalidOffer(str(error)) from None
    trigger_kind, trigger_params = _trigger(data)
    cap = _whole(data, "per_member_cap", minimum=1)
    window = _whole(data, "cap_window_seconds", minimum=1)
    if (cap is None) != (window is None):
        raise InvalidOffer(
            "per_member_cap and cap_window_seconds go together: give both or neither"
        )
    exclusive = data.get("exclusive", False)
    if not isinstance(exclusive, bool):
        raise InvalidOffer("exclusive must be true or false")
    holdout = _whole(data, "holdout_percent", default=0)
    assert holdout is not None
    if holdout > 100:
        raise InvalidOffer(f"holdout_percent must be between 0 and 100, not {holdout}")
    priority = data.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidOffer(f"priority must be a whole number, not {priority!r}")
    image = _text(data, "image", required=False) or None
    return Offer(
        id=_whole(data, "id", minimum=1),
        name=_text(data, "name", required=True),
        status=status,
        title=_text(data, "title", required=True, limit=TITLE_MAX_CHARS),
        body=_text(data, "body", required=False, limit=BODY_MAX_CHARS),
        image=image,
        benefit_kind=kind,
        benefit_value=value,
        benefit_quantity=quantity,
        product=_text(data, "product", required=True),
        product_tags=_string_list(data, "product_tags"),
        base_price_cents=base_price,
        zones=_zones(data, db),
        valid_from=valid_from,
        valid_to=valid_to,
        store_hours=None
        if store_hours is None
        else {day: (span[0], span[1]) for day, span in store_hours.items()},
        quiet_hours=None if quiet_hours is None else (quiet_hours[0], quiet_hours[1]),
        audience=audience_text,
        trigger_kind=trigger_kind,
        trigger_params=trigger_params,
        per_member_cap=cap,
        cap_window_seconds=window,
        cooldown_seconds=_whole(data, "cooldown_seconds", default=0) or 0,
        max_issued=_whole(data, "max_issued", minimum=1),
        max_redeemed=_whole(data, "max_redeemed", minimum=1),
        max_discount_cents=_whole(data, "max_discount_cents", minimum=1),
        priority=priority,
        exclusive=exclusive,
        holdout_percent=holdout,
        variants=_variants(data),
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
    )


_JSON_COLUMNS = (
    "product_tags",
    "zones",
    "store_hours",
    "quiet_hours",
    "trigger_params",
    "variants",
)


def _to_row(offer: Offer) -> dict[str, Any]:
    row: dict[str, Any] = {f.name: getattr(offer, f.name) for f in fields(Offer)}
    for column in _JSON_COLUMNS:
        value = row[column]
        row[column] = None if value is None else json.dumps(value)
    row["valid_from"], row["valid_to"] = to_iso(offer.valid_from), to_iso(offer.valid_to)
    row["exclusive"] = int(offer.exclusive)
    return row


def _from_row(row: Mapping[str, Any]) -> Offer:
    data = dict(row)
    for column in _JSON_COLUMNS:
        if data[column] is not None:
            data[column] = json.loads(data[column])
    data["exclusive"] = bool(data["exclusive"])
    # Stored rows were validated on the way in; revalidating keeps one code path for the shape.
    return validate_offer({k: v for k, v in data.items() if v is not None})


def save_offer(db: sqlite_utils.Database, offer: Offer) -> int:
    """Insert a new offer (``id`` None) or replace a stored one; returns its id."""
    now = now_iso()
    row = _to_row(offer)
    row["updated_at"] = now
    row["created_at"] = offer.created_at or now
    # Column names below come from the Offer dataclass, never from input; values are bound.
    if offer.id is None:
        del row["id"]
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cursor = db.conn.execute(
            f"INSERT INTO offers ({columns}) VALUES ({marks})",  # noqa: S608
            tuple(row.values()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid
    offer_id = row.pop("id")
    if offer.created_at is None:
        del row["created_at"]  # an edit keeps the stored creation time
    assignments = ", ".join(f"{column} = ?" for column in row)
    cursor = db.conn.execute(
        f"UPDATE offers SET {assignments} WHERE id = ?",  # noqa: S608
        (*row.values(), offer_id),
    )
    if cursor.rowcount == 0:
        raise InvalidOffer(f"there is no offer with id {offer_id} to update")
    return int(offer_id)


def get_offer(db: sqlite_utils.Database, offer_id: int) -> Offer | None:
    """The stored offer with this id, or None."""
    cursor = db.conn.execute("SELECT * FROM offers WHERE id = ?", (offer_id,))
    names = [column[0] for column in cursor.description]
    row = cursor.fetchone()
    return None if row is None else _from_row(dict(zip(names, row, strict=True)))


def list_offers(db: sqlite_utils.Database, status: str | None = None) -> list[Offer]:
    """Stored offers, highest priority first, optionally only those with ``status``."""
    query = "SELECT * FROM offers"
    params: tuple[Any, ...] = ()
    if status is not None:
        if status not in STATUSES:
            raise InvalidOffer(f"status {status!r} is unknown; use one of {', '.join(STATUSES)}")
        query += " WHERE status = ?"
        params = (status,)
    cursor = db.conn.execute(query + " ORDER BY priority DESC, id", params)
    names = [column[0] for column in cursor.description]
    return [_from_row(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
