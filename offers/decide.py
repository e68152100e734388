"""The decision engine: which offer a member gets for one zone event, and why not the others.

For an event, every live offer whose trigger and zones match is evaluated and gets one row in the
``decisions`` table. The first refusal wins, in this order:

1. ``no_consent``: every offer needs the member's ``marketing`` consent (an offer is a marketing
   message); zone-triggered offers (``zone_enter``, ``zone_dwell``) also need ``location``, as they
   use where the member is in the store. ``portal_login`` offers need marketing only.
2. ``out_of_schedule`` / ``quiet_hours``: validity dates, store hours, quiet hours (local time).
3. ``not_in_audience``: the offer's audience expression over the member's attributes.
4. ``budget_spent``: ``max_issued`` sends of the offer, to anyone, have gone out, or the tills
   have redeemed ``max_redeemed`` codes or given ``max_discount_cents`` away.
5. ``capped``: ``per_member_cap`` sends to this member within the last ``cap_window_seconds``.
6. ``cooldown``: the offer's own cooldown for this member, then the global one push per member
   per ``global_cooldown_seconds`` across all offers.
7. ``holdout``: the member's sticky bucket is in the offer's holdout (the control group).

Of the offers left, one is ``sent`` (with its sticky variant) and the rest are ``lower_priority``:
an exclusive offer beats every non-exclusive one, then the higher priority, then the older offer.
A member held out of an offer still gets the next one: the holdout measures "without this offer".

Counts and times come from the ``sent`` rows of the decision log itself, so caps, cooldowns and
budgets need no second table that could disagree with it. Redemption budgets (``max_redeemed``,
``max_discount_cents``) count the ``redemptions`` the tills recorded (``offers.redemption``).

Idempotent by event id: the outbox delivers at least once, so an event that already has decisions
gets those decisions back and nothing is written or sent again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from instore.clock import from_iso, to_iso
from instore.db import atomic
from instore.events import Event
from instore.members import current_consents, get_member
from offers import audience, experiments
from offers.model import Offer, get_offer
from offers.redemption import redeemed_totals
from offers.schedule import Refusal, check_schedule

logger = logging.getLogger(__name__)

# The events that can trigger an offer. The worker turns a member's ``store_enter`` into a
# ``revisit`` event carrying their recent arrival times, and ``portal.login`` into ``portal_login``.
EVENT_KINDS: tuple[str, ...] = ("zone_enter", "zone_dwell", "revisit", "portal_login")
# Triggers that use where the member is in the store, and so need location consent.
ZONE_TRIGGERS: frozenset[str] = frozenset({"zone_enter", "zone_dwell"})
# presence's zone_dwell fires once after its dwell threshold and carries no duration (yet); this
# is that threshold (presence.track.DWELL_SECONDS), the dwell such an event proves. An event with
# a ``dwell_seconds`` payload is compared with the offer's own ``seconds`` instead.
DEFAULT_DWELL_SECONDS = 30

_CONSENT_REASONS: dict[str, str] = {
    "marketing": "no marketing consent: an offer is a marketing message",
    "location": "no location consent: a {trigger} offer uses where the member is in the store",
}


@dataclass(frozen=True)
class Decision:
    """One evaluation of one offer for one member, as logged in ``decisions``."""

    member_id: int
    offer_id: int
    event_id: int | None
    outcome: str
    reason: str
    ts: str
    variant: str | None = None
    id: int | None = None

    @property
    def sent(self) -> bool:
        """True when this decision sends the offer."""
        return self.outcome == "sent"


class UnknownSubject(LookupError):
    """``why`` was asked about a member or an offer that does not exist."""


def describe_duration(seconds: float) -> str:
    """A short human duration: "90 s" is "1 min 30 s", 86400 is "1 day"."""
    remaining = max(0, int(seconds))
    days, remaining = divmod(remaining, 86400)
    hours, remaining = divmod(remaining, 3600)
    minutes, secs = divmod(remaining, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts) or "0 s"


def is_triggered(offer: Offer, event: Event) -> bool:
    """True when a live offer's trigger and zones match this event."""
    if offer.status != "live" or offer.trigger_kind != event.kind:
        return False
    if offer.zones and event.payload.get("zone_id") not in offer.zones:
        return False
    if offer.trigger_kind == "zone_dwell":
        dwelt = event.payload.get("dwell_seconds", DEFAULT_DWELL_SECONDS)
        return bool(dwelt >= offer.trigger_params["seconds"])
    if offer.trigger_kind == "revisit":
        return (
            revisits_in_window(event, offer.trigger_params["window_seconds"])
            >= (offer.trigger_params["count"])
        )
    return True


def revisits_in_window(event: Event, window_seconds: int) -> int:
    """How many of the member's arrivals (this one included) fall within the window before it.

    A ``revisit`` event carries ``visit_times`` (UTC ISO, this arrival last) and ``ts``.
    """
    arrived = from_iso(event.payload.get("ts") or event.ts)
    since = arrived - timedelta(seconds=window_seconds)
    return sum(1 for text in event.payload.get("visit_times", ()) if since < from_iso(text))


def _row_to_decision(row: sqlite3.Row | tuple[Any, ...]) -> Decision:
    id_, ts, member_id, offer_id, event_id, variant, outcome, reason = row
    return Decision(member_id, offer_id, event_id, outcome, reason, ts, variant, id_)


_COLUMNS = "id, ts, member_id, offer_id, event_id, variant, outcome, reason"


def decisions_for_event(db: sqlite_utils.Database, event_id: int) -> list[Decision]:
    """The decisions already logged for an event, in the order they were made."""
    rows = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM decisions
            WHERE event_id = ? AND offer_id IS NOT NULL ORDER BY id""",  # noqa: S608
        (event_id,),
    ).fetchall()
    return [_row_to_decision(row) for row in rows]


def _sent_count(db: sqlite_utils.Database, offer_id: int) -> int:
    return int(
        db.conn.execute(
            "SELECT COUNT(*) FROM decisions WHERE offer_id = ? AND outcome = 'sent'", (offer_id,)
        ).fetchone()[0]
    )


def _sent_to_member_since(
    db: sqlite_utils.Database, member_id: int, offer_id: int, since: datetime
) -> int:
    return int(
        db.conn.execute(
            """SELECT COUNT(*) FROM decisions
               WHERE member_id = ? AND offer_id = ? AND outcome = 'sent' AND ts > ?""",
            (member_id, offer_id, to_iso(since)),
        ).fetchone()[0]
    )


def _last_sent(
    db: sqlite_utils.Database, member_id: int, offer_id: int | None = None
) -> tuple[datetime, int] | None:
    """When this member last got this offer (or any offer), and which offer it was.

    Friend notes share the decision log with ``offer_id`` NULL; they have their own cooldowns
    and never count as an offer here.
    """
    query = (
        "SELECT ts, offer_id FROM decisions"
        " WHERE member_id = ? AND outcome = 'sent' AND offer_id IS NOT NULL"
    )
    params: tuple[int, ...] = (member_id,)
    if offer_id is not None:
        query += " AND offer_id = ?"
        params = (member_id, offer_id)
    row = db.conn.execute(query + " ORDER BY ts DESC, id DESC LIMIT 1", params).fetchone()
    return None if row is None else (from_iso(row[0]), int(row[1]))


def _refusal(
    db: sqlite_utils.Database,
    offer: Offer,
    member_id: int,
    consents: Mapping[str, Mapping[str, Any]],
    member_attributes: Mapping[str, Any],
    now: datetime,
    store_timezone: str,
    global_cooldown_seconds: int,
    last_push: tuple[datetime, int] | None,
) -> Refusal | None:
    """Why this offer may not go to this member now, or None when it is a candidate."""
    assert offer.id is not None
    needed = ["marketing"] + (["location"] if offer.trigger_kind in ZONE_TRIGGERS else [])
    for kind in needed:
        if not consents.get(kind, {}).get("granted"):
            return "no_consent", _CONSENT_REASONS[kind].format(trigger=offer.trigger_kind)
    refusal = check_schedule(offer.schedule(), now, store_timezone)
    if refusal is not None:
        return refusal
    if not audience.matches(offer.audience, member_attributes):
        return "not_in_audience", f"the member is not in the audience: {offer.audience}"
    if offer.max_issued is not None and _sent_count(db, offer.id) >= offer.max_issued:
        return "budget_spent", f"all {offer.max_issued} issues of this offer have gone out"
    if offer.max_redeemed is not None or offer.max_discount_cents is not None:
        redeemed, given = redeemed_totals(db, offer.id)
        if offer.max_redeemed is not None and redeemed >= offer.max_redeemed:
            return "budget_spent", f"all {offer.max_redeemed} redemptions of this offer are used"
        if offer.max_discount_cents is not None and given >= offer.max_discount_cents:
            return "budget_spent", (
                f"the offer's discount budget is spent: {given / 100:.2f} given of "
                f"{offer.max_discount_cents / 100:.2f}"
            )
    if offer.per_member_cap is not None and offer.cap_window_seconds is not None:
        window = timedelta(seconds=offer.cap_window_seconds)
        sent = _sent_to_member_since(db, member_id, offer.id, now - window)
        if sent >= offer.per_member_cap:
            return "capped", (
                f"sent to this member {sent} time{'s' if sent != 1 else ''} in the last "
                f"{describe_duration(offer.cap_window_seconds)} (cap {offer.per_member_cap})"
            )
    if offer.cooldown_seconds:
        last = _last_sent(db, member_id, offer.id)
        if last is not None and now - last[0] < timedelta(seconds=offer.cooldown_seconds):
            ago = describe_duration((now - last[0]).total_seconds())
            return "cooldown", (
                f"this offer went to the member {ago} ago; "
                f"its cooldown is {describe_duration(offer.cooldown_seconds)}"
            )
    if last_push is not None and now - last_push[0] < timedelta(seconds=global_cooldown_seconds):
        return "cooldown", (
            f"at most one push per member every {describe_duration(global_cooldown_seconds)}; "
            f"offer {last_push[1]} went out "
            f"{describe_duration((now - last_push[0]).total_seconds())} ago"
        )
    if experiments.is_held_out(offer.id, member_id, offer.holdout_percent):
        return "holdout", (
            f"the member is in this offer's {offer.holdout_percent}% holdout (control) group"
        )
    return None


def _rank(offer: Offer) -> tuple[bool, int, int]:
    """Exclusive first, then higher priority, then the older offer (lower id)."""
    assert offer.id is not None
    return (offer.exclusive, offer.priority, -offer.id)


def _winner_reason(winner: Offer, candidates: Sequence[Offer], variant: str | None) -> str:
    if len(candidates) == 1:
        reason = "the only offer that passed every check"
    elif winner.exclusive:
        reason = f"exclusive, so it beats the other {len(candidates) - 1} candidate(s)"
    else:
        reason = f"priority {winner.priority}, the highest of {len(candidates)} candidates"
    return reason if variant is None else f"{reason}; variant {variant!r}"


def _loser_reason(winner: Offer) -> str:
    kind = "exclusive offer" if winner.exclusive else "offer"
    return f"{kind} {winner.id} ({winner.name!r}, priority {winner.priority}) went out instead"


def decide(
    db: sqlite_utils.Database,
    event: Event,
    offers: Sequence[Offer],
    member_attributes: Mapping[str, Any],
    now: datetime,
    store_timezone: str,
    global_cooldown_seconds: int,
) -> list[Decision]:
    """Evaluate the offers this event triggers for its member; log and return one row per offer.

    ``offers`` are the saved offers to consider (drafts and paused ones are skipped); at most one
    decision is ``sent``. Events of other kinds, or without a member (an unlinked device), give
    no decisions. An event decided before returns its logged decisions unchanged.
    """
    if now.tzinfo is None:
        raise ValueError("decide needs a timezone-aware time, not a naive one")
    if event.kind not in EVENT_KINDS or event.payload.get("member_id") is None:
        return []
    member_id = int(event.payload["member_id"])
    for offer in offers:
        if offer.id is None:
            raise ValueError(f"offer {offer.name!r} must be saved before it can be decided on")
    with atomic(db, "offers_decide"):
        # Checked inside the write transaction, so two workers cannot both decide one event.
        existing = decisions_for_event(db, event.id)
        if existing:
            logger.info("event %s was decided before; not deciding again", event.id)
            return existing
        triggered = sorted(
            (offer for offer in offers if is_triggered(offer, event)),
            key=lambda offer: (-offer.priority, offer.id),
        )
        if not triggered:
            return []
        consents = current_consents(db, member_id)
        last_push = _last_sent(db, member_id)
        refusals: dict[int, Refusal] = {}
        candidates: list[Offer] = []
        for offer in triggered:
            refusal = _refusal(
                db,
                offer,
                member_id,
                consents,
                member_attributes,
                now,
                store_timezone,
                global_cooldown_seconds,
                last_push,
            )
            if refusal is None:
                candidates.append(offer)
            else:
                refusals[offer.id or 0] = refusal
        winner = max(candidates, key=_rank) if candidates else None
        ts = to_iso(now)
        decisions: list[Decision] = []
        for offer in triggered:
            assert offer.id is not None
            variant = None
            if offer.id in refusals:
                outcome, reason = refusals[offer.id]
            elif offer is winner:
                variant = experiments.choose_variant(offer.id, member_id, offer.variants)
                outcome, reason = "sent", _winner_reason(offer, candidates, variant)
            else:
                assert winner is not None
                outcome, reason = "lower_priority", _loser_reason(winner)
            decisions.append(
                _log(db, Decision(member_id, offer.id, event.id, outcome, reason, ts, variant))
            )
    return decisions


def _log(db: sqlite_utils.Database, decision: Decision) -> Decision:
    """Write one decision row; the decision is returned with its row id."""
    cursor = db.conn.execute(
        """INSERT INTO decisions (ts, member_id, offer_id, event_id, variant, outcome, reason)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (
            decision.ts,
            decision.member_id,
            decision.offer_id,
            decision.event_id,
            decision.variant,
            decision.outcome,
            decision.reason,
        ),
    )
    return replace(decision, id=cursor.lastrowid)


def latest_decision(db: sqlite_utils.Database, member_id: int, offer_id: int) -> Decision | None:
    """The most recent decision about this offer for this member, or None."""
    row = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM decisions WHERE member_id = ? AND offer_id = ?
            ORDER BY ts DESC, id DESC LIMIT 1""",  # noqa: S608
        (member_id, offer_id),
    ).fetchone()
    return None if row is None else _row_to_decision(row)


def why(
    db: sqlite_utils.Database, member_id: int, offer_id: int, store_timezone: str = "UTC"
) -> str:
    """A sentence explaining the latest decision about an offer for a member.

    Raises ``UnknownSubject`` when the member or the offer does not exist.
    """
    member = get_member(db, member_id)
    if member is None:
        raise UnknownSubject(f"there is no member with id {member_id}")
    offer = get_offer(db, offer_id)
    if offer is None:
        raise UnknownSubject(f"there is no offer with id {offer_id}")
    who, what = member.display_name, f"offer {offer_id} ({offer.name!r})"
    decision = latest_decision(db, member_id, offer_id)
    if decision is None:
        return (
            f"{who} has never been considered for {what}: no event matched its trigger and "
            "zones while it was live"
        )
    zone = ZoneInfo(store_timezone)
    when = f"{from_iso(decision.ts).astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"
    source = f"event {decision.event_id}" if decision.event_id is not None else "no event"
    if decision.sent:
        return f"{who} got {what} on {when}, for {source}: {decision.reason}"
    outcome = decision.outcome.replace("_", " ")
    return f"{who} did not get {what} on {when}, for {source}: {outcome} — {decision.reason}"
