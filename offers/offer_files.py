"""Offer files a manager writes and keeps: one offer per TOML (or JSON) file.

The fields are exactly those ``offers.model.validate_offer`` takes, with one kindness: ``zones``
may name zones as the floor plan does (``zones = ["Shoes"]``) instead of by id, because a manager
knows the names, not the numbers. Names are resolved here, against the ``zones`` table presence
keeps, before the offer is validated, so a misspelt name is refused with the names that exist.

The reverse, ``offer_to_dict``, gives an offer as plain JSON-ready data for ``--json`` output.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import sqlite_utils

from instore.clock import to_iso
from offers.model import InvalidOffer, Offer, validate_offer

# TOML is preferred (it has comments, so a file can say why each limit is what it is); JSON is
# what other tools export. Anything else is refused rather than guessed.
OFFER_FILE_SUFFIXES: tuple[str, ...] = (".toml", ".json")


def zone_names(db: sqlite_utils.Database) -> dict[int, str]:
    """Zone id -> name, from the floor plan presence keeps."""
    return {int(row[0]): str(row[1]) for row in db.conn.execute("SELECT id, name FROM zones")}


def read_offer_file(path: str | Path) -> dict[str, Any]:
    """The fields in one offer file, parsed but not yet checked; InvalidOffer if unreadable."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OFFER_FILE_SUFFIXES:
        raise InvalidOffer(
            f"an offer file must end in {' or '.join(OFFER_FILE_SUFFIXES)}, not {suffix or '…'!r}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidOffer(f"cannot read the file: {error}") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidOffer(f"not valid TOML: {error}") from None
    except json.JSONDecodeError as error:
        raise InvalidOffer(f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidOffer("the file must hold one offer: a JSON object of fields")
    return data


def resolve_zone_names(data: Mapping[str, Any], db: sqlite_utils.Database) -> dict[str, Any]:
    """``data`` with zone names in ``zones`` replaced by their ids (ids are left as they are).

    A name matches exactly, or else ignoring case when that is unambiguous; an unknown name is an
    ``InvalidOffer`` listing the zones that do exist.
    """
    zones = data.get("zones")
    if not isinstance(zones, list) or not any(isinstance(zone, str) for zone in zones):
        return dict(data)
    by_name = {name: zone_id for zone_id, name in zone_names(db).items()}
    by_folded: dict[str, list[int]] = {}
    for name, zone_id in by_name.items():
        by_folded.setdefault(name.casefold(), []).append(zone_id)
    resolved: list[Any] = []
    for zone in zones:
        if not isinstance(zone, str):
            resolved.append(zone)  # an id, or something validate_offer will refuse by name
            continue
        name = zone.strip()
        if name in by_name:
            resolved.append(by_name[name])
        elif len(by_folded.get(name.casefold(), [])) == 1:
            resolved.append(by_folded[name.casefold()][0])
        else:
            known = ", ".join(sorted(by_name)) or "none yet: draw them on the floor plan first"
            raise InvalidOffer(f"zones: no zone named {name!r} (zones: {known})")
    return {**data, "zones": resolved}


def load_offer_file(path: str | Path, db: sqlite_utils.Database, **overrides: Any) -> Offer:
    """The checked ``Offer`` in an offer file, with some fields set by the caller (``status``).

    Raises ``InvalidOffer`` with a sentence naming the field to fix.
    """
    data = {**read_offer_file(path), **overrides}
    return validate_offer(resolve_zone_names(data, db), db)


def offer_to_dict(offer: Offer, names: Mapping[int, str] | None = None) -> dict[str, Any]:
    """An offer as JSON-ready data: times as UTC ISO text, and zone names beside the ids."""
    data: dict[str, Any] = {}
    for item in fields(Offer):
        value = getattr(offer, item.name)
        if item.name in ("valid_from", "valid_to"):
            value = to_iso(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[item.name] = value
    if names is not None:
        data["zone_names"] = [names.get(zone_id, f"zone {zone_id}") for zone_id in offer.zones]
    return data
