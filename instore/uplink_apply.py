"""Messages from headquarters: offer catalogues and member updates, applied once each.

Headquarters publishes JSON to ``<prefix>/<store>/inbox/<kind>`` with QoS 1. Every message has a
``message_id`` chosen by headquarters; the broker may deliver a message twice (an
acknowledgement lost in a reconnect), so the id is recorded in ``uplink_applied`` in the same
transaction as the change, and a second copy changes nothing.

``inbox/offers`` — a catalogue::

    {"message_id": "catalogue-2026-05-01",
     "offers": [{"external_id": "spring-runners", "name": "…", … fields of an offer file …}],
     "withdraw": ["winter-coats"]}

Each offer has the fields of an offer file (``instore offers add FILE``; zones by name) plus
headquarters' own ``external_id``. An offer seen before (by external id) is updated in place and
keeps the store's status unless the message gives one; a new one is saved as the file says
(a draft by default). ``withdraw`` pauses offers by external id. An offer the store cannot take
(a zone this store's plan does not have) is refused alone; the rest are applied.

``inbox/members`` — member updates, by loyalty number (the one id a member has chain-wide)::

    {"message_id": "tiers-2026-05", "members": [{"loyalty_number": "…", "tier": "gold"}]}

A member unknown at this store is skipped (they may never have signed in here).

A malformed message is logged, recorded as rejected, and acknowledged: sending it again would
not mend it. Changes are written to the audit log as made by "headquarters", and an
``uplink_message`` event tells headquarters (through the outbox) what each message did.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlite_utils

from instore import audit, events
from instore.clock import now_iso
from instore.db import atomic, transaction

log = logging.getLogger(__name__)

# The audit log's actor for changes that came from headquarters.
HQ_ACTOR = "headquarters"
# Headquarters' ids are its own; long enough for a UUID or a dated name, short enough to index.
MAX_ID_CHARS = 200
# A catalogue or update this large is a mistake upstream, not a message to apply on a small box.
MAX_ITEMS = 5000
# The event that reports each message's outcome back to headquarters through the outbox.
APPLIED_EVENT = "uplink_message"
# Member fields headquarters may set. Tier drives audiences ("tier == 'gold'").
MEMBER_FIELDS = frozenset({"tier"})
MAX_TIER_CHARS = 40  # tiers are short names ("member", "silver", "gold")


class BadMessage(ValueError):
    """A message (or one item in it) this store cannot apply; the text says what is wrong."""


@dataclass(frozen=True)
class InboxResult:
    """What became of one message: applied, rejected, or a duplicate of one seen before."""

    message_id: str | None
    outcome: str
    detail: str


def _text_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadMessage(f"{what} must be a non-empty string")
    if len(value) > MAX_ID_CHARS:
        raise BadMessage(f"{what} is longer than {MAX_ID_CHARS} characters")
    return value.strip()


def _items(body: Mapping[str, Any], key: str, *, required: bool) -> list[Any]:
    items = body.get(key, None if required else [])
    if not isinstance(items, list):
        raise BadMessage(f"{key} must be a list" + ("" if required else " when given"))
    if len(items) > MAX_ITEMS:
        raise BadMessage(f"{key} has {len(items)} entries; at most {MAX_ITEMS} per message")
    return items


# -- offer catalogues ------------------------------------------------------------------------


def _apply_one_offer(db: sqlite_utils.Database, fields: Mapping[str, Any]) -> str:
    """Save one catalogue offer; return "new" or "updated". BadMessage if the store refuses it."""
    # Imported here: the kernel does not depend on offers, only this edge of it does.
    from offers.model import InvalidOffer, get_offer, save_offer, validate_offer
    from offers.offer_files import offer_to_dict, resolve_zone_names, zone_names

    external_id = _text_id(fields.get("external_id"), "external_id")
    data = {key: value for key, value in fields.items() if key != "external_id"}
    if "id" in data:
        raise BadMessage(f"{external_id}: id is the store's own; name offers by external_id")
    row = db.conn.execute(
        "SELECT offer_id FROM uplink_offers WHERE external_id = ?", (external_id,)
    ).fetchone()
    before = get_offer(db, int(row[0])) if row else None
    if before is not None and "status" not in data:
        data["status"] = before.status  # a manager's pause or go-live survives a re-sent price
    try:
        offer = validate_offer(resolve_zone_names(data, db), db)
    except InvalidOffer as exc:
        raise BadMessage(f"{external_id}: {exc}") from None
    if before is not None:
        offer = replace(offer, id=before.id)
    with atomic(db, "uplink_offer"):
        offer_id = save_offer(db, offer)
        db.conn.execute(
            """INSERT INTO uplink_offers (external_id, offer_id, updated_at) VALUES (?, ?, ?)
               ON CONFLICT(external_id) DO UPDATE SET
                 offer_id = excluded.offer_id, updated_at = excluded.updated_at""",
            (external_id, offer_id, now_iso()),
        )
        saved = get_offer(db, offer_id)
        names = zone_names(db)
        audit.record(
            db,
            None,
            HQ_ACTOR,
            "offer.update" if before else "offer.create",
            f"offer:{offer_id}",
            None if before is None else offer_to_dict(before, names),
            None if saved is None else offer_to_dict(saved, names),
        )
    return "updated" if before else "new"


def _withdraw_offer(db: sqlite_utils.Database, external_id: str) -> bool:
    """Pause the offer headquarters calls ``external_id``; False if this store never had it."""
    from offers.model import get_offer, save_offer
    from offers.offer_files import offer_to_dict

    row = db.conn.execute(
        "SELECT offer_id FROM uplink_offers WHERE external_id = ?", (external_id,)
    ).fetchone()
    before = get_offer(db, int(row[0])) if row else None
    if before is None:
        return False
    if before.status != "paused":
        save_offer(db, replace(before, status="paused"))
        audit.record(
            db,
            None,
            HQ_ACTOR,
            "offer.status",
            f"offer:{before.id}",
            offer_to_dict(before),
            offer_to_dict(replace(before, status="paused")),
        )
    return True


def apply_offer_catalogue(db: sqlite_utils.Database, body: Mapping[str, Any]) -> str:
    """Upsert the catalogue's offers by external id and pause the withdrawn ones; a summary."""
    offers = _items(body, "offers", required=False)
    withdraw = _items(body, "withdraw", required=False)
    if not offers and not withdraw:
        raise BadMessage("a catalogue needs offers or withdraw")
    counts = {"new": 0, "updated": 0}
    refused: list[str] = []
    for fields in offers:
        if not isinstance(fields, dict):
            refused.append("an entry that is not an object")
            continue
        try:
            counts[_apply_one_offer(db, fields)] += 1
        except BadMessage as exc:
            refused.append(str(exc))
    paused = 0
    for external_id in withdraw:
        paused += _withdraw_offer(db, _text_id(external_id, "withdraw entries"))
    detail = f"{counts['new']} new, {counts['updated']} updated, {paused} withdrawn"
    if refused:
        detail += f"; {len(refused)} refused: " + "; ".join(refused)
        log.warning("headquarters offers refused", extra={"refused": refused})
    return detail


# -- member updates --------------------------------------------------------------------------


def apply_member_updates(db: sqlite_utils.Database, body: Mapping[str, Any]) -> str:
    """Set each listed member's fields (their tier) by loyalty number; a summary."""
    updates = _items(body, "members", required=True)
    changed = unchanged = unknown = 0
    for entry in updates:
        if not isinstance(entry, dict):
            raise BadMessage("each members entry must be an object")
        number = _text_id(entry.get("loyalty_number"), "loyalty_number")
        fields = {key: value for key, value in entry.items() if key != "loyalty_number"}
        extra = sorted(set(fields) - MEMBER_FIELDS)
        if extra or not fields:
            allowed = ", ".join(sorted(MEMBER_FIELDS))
            raise BadMessage(f"member {number}: fields must be among: {allowed}")
        tier = fields["tier"].strip() if isinstance(fields["tier"], str) else ""
        if not tier or len(tier) > MAX_TIER_CHARS:
            raise BadMessage(
                f"member {number}: tier must be a non-empty string of at most "
                f"{MAX_TIER_CHARS} characters"
            )
        row = db.conn.execute(
            "SELECT id, tier FROM members WHERE loyalty_number = ?", (number,)
        ).fetchone()
        if row is None:
            unknown += 1
            continue
        if row[1] == tier:
            unchanged += 1
            continue
        db.conn.execute("UPDATE members SET tier = ? WHERE id = ?", (tier, row[0]))
        audit.record(
            db, None, HQ_ACTOR, "member.tier", f"member:{row[0]}", {"tier": row[1]}, {"tier": tier}
        )
        changed += 1
    return f"{changed} changed, {unchanged} unchanged, {unknown} not members here"


HANDLERS: dict[str, Callable[[sqlite_utils.Database, Mapping[str, Any]], str]] = {
    "offers": apply_offer_catalogue,
    "members": apply_member_updates,
}


# -- one message -----------------------------------------------------------------------------


def _parse(payload: bytes) -> tuple[str, dict[str, Any]]:
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadMessage("a message must be a JSON object")
    return _text_id(body.get("message_id"), "message_id"), body


def already_applied(db: sqlite_utils.Database, message_id: str) -> bool:
    row = db.conn.execute(
        "SELECT 1 FROM uplink_applied WHERE message_id = ?", (message_id,)
    ).fetchone()
    return row is not None


def handle_inbox_message(db: sqlite_utils.Database, kind: str, payload: bytes) -> InboxResult:
    """Apply one message from ``inbox/<kind>`` once; never raises for a bad message.

    A locked database (``sqlite3.OperationalError``) does raise: that is no fault of the message,
    and the caller must not acknowledge it, so the broker delivers it again.
    """
    try:
        message_id, body = _parse(payload)
    except BadMessage as exc:
        # Without an id it cannot be recorded; the log is all there is.
        log.warning("headquarters message rejected", extra={"kind": kind, "error": str(exc)})
        return InboxResult(None, "rejected", str(exc))
    with transaction(db):
        if already_applied(db, message_id):
            return InboxResult(message_id, "duplicate", "")
        try:
            handler = HANDLERS.get(kind)
            if handler is None:
                raise BadMessage(f"no such inbox topic {kind!r} (known: {', '.join(HANDLERS)})")
            with atomic(db, "uplink_message"):
                detail, outcome = handler(db, body), "applied"
        except sqlite3.OperationalError:
            raise
        except BadMessage as exc:
            detail, outcome = str(exc), "rejected"
        except Exception as exc:  # a bug must not stop the store's uplink: log, record, go on
            log.exception("headquarters message failed", extra={"message_id": message_id})
            detail, outcome = f"could not be applied: {exc}", "rejected"
        db.conn.execute(
            "INSERT INTO uplink_applied (message_id, topic, outcome, detail, applied_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (message_id, kind, outcome, detail, now_iso()),
        )
        events.append(
            db,
            APPLIED_EVENT,
            {"message_id": message_id, "topic": kind, "outcome": outcome, "detail": detail},
        )
    level = logging.INFO if outcome == "applied" else logging.WARNING
    log.log(level, "headquarters message %s", outcome, extra={"message_id": message_id})
    return InboxResult(message_id, outcome, detail)
