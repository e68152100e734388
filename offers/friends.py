"""Friend-in-store notes: "Ana is here — in Shoes", to each mutual friend already in the store.

When a member (the *sender*, Ana) enters her first zone of a visit, every accepted friend of hers
who is in the store now (a ``presence_state`` row with their member id) is evaluated once and gets
one row in ``decisions`` (``member_id`` = the *recipient*, Ben; ``friend_id`` = Ana). The first
refusal wins, in this order:

1. ``no_consent``: both need the ``friend_visibility`` consent — Ana to be shown, Ben to be told
   (a member who does not share does not see). Consent is the legal basis, so it goes first, as
   in the offer engine.
2. ``blocked``: either has blocked the other. A block is the strongest thing a member can say
   about another, and the one reason a manager must see even when another setting also hides Ana.
3. ``ghost_mode``: either is in ghost mode (hidden from every friend, and told about none): a
   member-wide switch, so it is named before the per-friend choice below.
4. ``not_visible``: Ana's visibility is "nobody", or "chosen" without Ben.
5. ``quiet_hours``: store-local quiet hours (``[offers] friend_quiet_hours``). A store rule, not a
   member's, so it comes after every privacy choice: those persist, the clock passes.
6. ``cooldown``: Ben was told about Ana less than ``cooldown_seconds`` ago. The cooldown is per
   direction: "Ana is here" to Ben does not hold back "Ben is here" to Ana, which is news to her.
   It also covers a member whose phone and watch each open a visit (two ``store_enter`` events).

Otherwise ``sent``: a ``friend`` notification for Ben in his language, carrying Ana's name and the
zone's *name* — never coordinates, a sensor or a device.

Only the first ``zone_enter`` of a visit notes anyone: a friend is told "Ana is here" once, not at
every aisle. A visit starts at the member's latest ``visits`` row before the event (the worker
writes one per ``store_enter`` before it handles later events); the event is the first if no
``zone_enter`` of this member lies strictly between that visit's event and this one. That is a
range scan of the ``events_kind`` index bounded by the visit, and it only runs when a friend is
in the store. With no visits row (a worker that has not recorded it), the event counts as first
and the pair cooldown keeps repeats out.

Idempotent by event id: an event with friend decisions gets them back and nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from community.friends import (
    FriendSettings,
    are_mutual_friends,
    blockers_between,
    friend_settings,
    friendship,
    mutual_friends,
)
from instore.clock import from_iso, to_iso
from instore.db import atomic
from instore.events import Event
from instore.members import current_consents, get_member
from offers.decide import UnknownSubject, describe_duration
from offers.notifications import create_notification
from offers.schedule import InvalidSchedule, Refusal, in_quiet_hours, parse_quiet_hours

logger = logging.getLogger(__name__)

# The one event that notes an arrival: entering a zone gives the note its "where".
EVENT_KIND = "zone_enter"
# The consent both members need: the portal asks it as "let my friends see that I am in the store,
# and in which area".
FRIEND_CONSENT = "friend_visibility"
# A member with no stored language (signed up before languages were recorded) reads English, the
# portal's fallback too.
DEFAULT_LOCALE = "en"
# Title and body per language, short enough for a lock screen; the zone is its name only.
MESSAGES: dict[str, tuple[str, str]] = {
    "en": ("{name} is here", "in {zone}"),
    "es": ("{name} está aquí", "en {zone}"),
}
# How ``[offers] friend_quiet_hours`` writes a span: "21:00-09:00"; empty means none.
QUIET_HOURS_SEPARATOR = "-"

_SENT_REASON = (
    "every check passed: both consented, visible to this friend, no block or ghost mode, "
    "outside quiet hours and the pair's cooldown"
)


@dataclass(frozen=True)
class FriendDecision:
    """One evaluation of one arrival for one friend, as logged in ``decisions``."""

    member_id: int  # the recipient, who would be told
    friend_id: int  # the arriving member, whose arrival is noted
    event_id: int | None
    outcome: str
    reason: str
    ts: str
    id: int | None = None

    @property
    def sent(self) -> bool:
        """True when the recipient was told."""
        return self.outcome == "sent"


def parse_friend_quiet_hours(text: str) -> tuple[time, time] | None:
    """The config's "HH:MM-HH:MM" as (start, end), or None for "" (no quiet hours).

    Raises ``InvalidSchedule`` with a message naming the setting, for the config check to show.
    """
    if not text.strip():
        return None
    parts = [part.strip() for part in text.split(QUIET_HOURS_SEPARATOR)]
    if len(parts) != 2:
        raise InvalidSchedule(
            f"friend_quiet_hours: {text!r} is not a span like '21:00-09:00' (or '' for none)"
        )
    return parse_quiet_hours(parts)


_COLUMNS = "id, ts, member_id, friend_id, event_id, outcome, reason"


def _row_to_decision(row: tuple[Any, ...]) -> FriendDecision:
    id_, ts, member_id, friend_id, event_id, outcome, reason = row
    return FriendDecision(member_id, friend_id, event_id, outcome, reason, ts, id_)


def friend_decisions_for_event(db: sqlite_utils.Database, event_id: int) -> list[FriendDecision]:
    """The friend decisions already logged for an event, in the order they were made."""
    rows = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM decisions
            WHERE event_id = ? AND friend_id IS NOT NULL ORDER BY id""",  # noqa: S608
        (event_id,),
    ).fetchall()
    return [_row_to_decision(row) for row in rows]


def latest_friend_decision(
    db: sqlite_utils.Database, recipient_id: int, sender_id: int
) -> FriendDecision | None:
    """The most recent decision about telling ``recipient_id`` that ``sender_id`` was here."""
    row = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM decisions WHERE member_id = ? AND friend_id = ?
            ORDER BY ts DESC, id DESC LIMIT 1""",  # noqa: S608
        (recipient_id, sender_id),
    ).fetchone()
    return None if row is None else _row_to_decision(row)


def friends_in_store(db: sqlite_utils.Database, member_id: int) -> list[int]:
    """The member's accepted friends with a device in the store now, ascending.

    ``presence_state`` has no member index; it holds one row per device in the shop (hundreds to
    a few thousand), so one scan is cheap, and it is skipped when the member has no friends.
    """
    friends = mutual_friends(db, member_id)
    if not friends:
        return []
    marks = ", ".join("?" for _ in friends)
    rows = db.conn.execute(
        f"""SELECT DISTINCT member_id FROM presence_state
            WHERE member_id IN ({marks}) ORDER BY member_id""",  # noqa: S608
        friends,
    ).fetchall()
    return [int(row[0]) for row in rows]


def is_first_zone_of_visit(db: sqlite_utils.Database, member_id: int, event_id: int) -> bool:
    """True when no ``zone_enter`` of this member comes between their visit's start and the event.

    Bounded by ``event_id`` on both sides, so a replayed old event gets the same answer.
    """
    row = db.conn.execute(
        "SELECT MAX(event_id) FROM visits WHERE member_id = ? AND event_id < ?",
        (member_id, event_id),
    ).fetchone()
    if row is None or row[0] is None:
        return True
    earlier = db.conn.execute(
        """SELECT 1 FROM events
           WHERE kind = ? AND id > ? AND id < ? AND json_extract(payload, '$.member_id') = ?
           LIMIT 1""",
        (EVENT_KIND, int(row[0]), event_id, member_id),
    ).fetchone()
    return earlier is None


def _zone_name(db: sqlite_utils.Database, payload: Mapping[str, Any]) -> str | None:
    """The zone's name from the event, or from ``zones`` when the event lacks it."""
    name = payload.get("zone")
    if name:
        return str(name)
    if payload.get("zone_id") is None:
        return None
    row = db.conn.execute("SELECT name FROM zones WHERE id = ?", (payload["zone_id"],)).fetchone()
    return None if row is None else str(row[0])


def _last_note(db: sqlite_utils.Database, recipient_id: int, sender_id: int) -> datetime | None:
    """When the recipient was last told about this sender (the ``decisions_sent_friend`` index)."""
    row = db.conn.execute(
        """SELECT ts FROM decisions
           WHERE member_id = ? AND friend_id = ? AND outcome = 'sent'
           ORDER BY ts DESC LIMIT 1""",
        (recipient_id, sender_id),
    ).fetchone()
    return None if row is None else from_iso(row[0])


def _consented(db: sqlite_utils.Database, member_id: int) -> bool:
    return bool(current_consents(db, member_id).get(FRIEND_CONSENT, {}).get("granted"))


def _quiet_refusal(
    quiet: tuple[time, time] | None, now: datetime, zone: ZoneInfo
) -> Refusal | None:
    """Quiet hours on the store's wall clock: the local time is computed for this instant, so the
    night the clocks change is judged by what the clock on the shop wall says."""
    if quiet is None:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(second=0, microsecond=0, tzinfo=None)
    start, end = quiet
    if not in_quiet_hours(clock, start, end):
        return None
    return "quiet_hours", (
        f"friend notes are quiet from {start:%H:%M} to {end:%H:%M} store time; "
        f"it was {local:%H:%M} ({zone.key})"
    )


def _refusal(
    db: sqlite_utils.Database,
    sender_id: int,
    sender_consented: bool,
    sender_settings: FriendSettings,
    recipient_id: int,
    quiet: Refusal | None,
    now: datetime,
    cooldown_seconds: int,
) -> Refusal | None:
    """Why this recipient may not be told about this sender now, or None when they may."""
    recipient_consented = _consented(db, recipient_id)
    if not (sender_consented and recipient_consented):
        if not (sender_consented or recipient_consented):
            return "no_consent", "neither member has consented to friend visibility"
        if not sender_consented:
            return "no_consent", (
                "the arriving member has not consented to friend visibility, so no friend is "
                "told they are here"
            )
        return "no_consent", (
            "the recipient has not consented to friend visibility, and a member who does not "
            "share is not told about friends"
        )
    blockers = blockers_between(db, sender_id, recipient_id)
    if blockers:
        if len(blockers) == 2:
            return "blocked", "each member has blocked the other"
        if sender_id in blockers:
            return "blocked", "the arriving member has blocked the recipient"
        return "blocked", "the recipient has blocked the arriving member"
    recipient_ghost = friend_settings(db, recipient_id).ghost
    if sender_settings.ghost or recipient_ghost:
        if sender_settings.ghost and recipient_ghost:
            return "ghost_mode", "both members are in ghost mode"
        if sender_settings.ghost:
            return "ghost_mode", "the arriving member is in ghost mode, hidden from every friend"
        return "ghost_mode", "the recipient is in ghost mode, and is told about no friend"
    if not sender_settings.shows_to(recipient_id):
        if sender_settings.visibility == "nobody":
            return "not_visible", "the arriving member shows their arrivals to nobody"
        return "not_visible", (
            "the arriving member shows their arrivals only to chosen friends, and the recipient "
            "is not one of them"
        )
    if quiet is not None:
        return quiet
    if cooldown_seconds > 0:
        last = _last_note(db, recipient_id, sender_id)
        if last is not None and now - last < timedelta(seconds=cooldown_seconds):
            return "cooldown", (
                f"the recipient was told about this friend "
                f"{describe_duration((now - last).total_seconds())} ago; notes about one friend "
                f"to one member wait {describe_duration(cooldown_seconds)}"
            )
    return None


def render_note(locale: str | None, sender_name: str, zone_name: str) -> tuple[str, str]:
    """The note's title and body in the recipient's language (English when unknown).

    A regional tag ("es-MX") reads its language's text, as the portal's pages do.
    """
    language = (locale or DEFAULT_LOCALE).split("-")[0].lower()
    title, body = MESSAGES.get(language, MESSAGES[DEFAULT_LOCALE])
    return title.format(name=sender_name), body.format(zone=zone_name)


def note_friends(
    db: sqlite_utils.Database,
    event: Event,
    now: datetime,
    *,
    store_timezone: str,
    cooldown_seconds: int,
    quiet_hours: str | tuple[time, time] | None,
) -> list[FriendDecision]:
    """Tell the arriving member's friends in the store where they are; one decision per friend.

    ``quiet_hours`` is the config's "HH:MM-HH:MM" ("" or None: none) or an already parsed span.
    Other events, an unlinked device, a later zone of the same visit, or nobody to tell give no
    decisions. An event decided before returns its logged decisions and writes nothing.
    """
    if now.tzinfo is None:
        raise ValueError("note_friends needs a timezone-aware time, not a naive one")
    if event.kind != EVENT_KIND or event.payload.get("member_id") is None:
        return []
    quiet = parse_friend_quiet_hours(quiet_hours) if isinstance(quiet_hours, str) else quiet_hours
    zone = ZoneInfo(store_timezone)
    sender_id = int(event.payload["member_id"])
    with atomic(db, "offers_friends"):
        # Checked inside the write transaction, so two workers cannot both note one event.
        existing = friend_decisions_for_event(db, event.id)
        if existing:
            logger.info("event %s was noted to friends before; not again", event.id)
            return existing
        recipients = friends_in_store(db, sender_id)
        if not recipients or not is_first_zone_of_visit(db, sender_id, event.id):
            return []
        zone_name = _zone_name(db, event.payload)
        sender = get_member(db, sender_id)
        if zone_name is None or sender is None:
            logger.warning("event %s has no zone name or member; no friend notes", event.id)
            return []
        sender_consented = _consented(db, sender_id)
        sender_settings = friend_settings(db, sender_id)
        quiet_refusal = _quiet_refusal(quiet, now, zone)
        ts = to_iso(now)
        decisions: list[FriendDecision] = []
        for recipient_id in recipients:
            refusal = _refusal(
                db,
                sender_id,
                sender_consented,
                sender_settings,
                recipient_id,
                quiet_refusal,
                now,
                cooldown_seconds,
            )
            outcome, reason = refusal if refusal is not None else ("sent", _SENT_REASON)
            decision = _log(
                db, FriendDecision(recipient_id, sender_id, event.id, outcome, reason, ts)
            )
            decisions.append(decision)
            if decision.sent:
                _notify(db, decision, sender.display_name, zone_name, now)
    return decisions


def _log(db: sqlite_utils.Database, decision: FriendDecision) -> FriendDecision:
    """Write one decision row; the decision is returned with its row id."""
    cursor = db.conn.execute(
        """INSERT INTO decisions (ts, member_id, friend_id, event_id, outcome, reason)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (
            decision.ts,
            decision.member_id,
            decision.friend_id,
            decision.event_id,
            decision.outcome,
            decision.reason,
        ),
    )
    return replace(decision, id=cursor.lastrowid)


def _notify(
    db: sqlite_utils.Database,
    decision: FriendDecision,
    sender_name: str,
    zone_name: str,
    now: datetime,
) -> int:
    """The recipient's notification for a sent decision; the data names the zone, nothing finer."""
    recipient = get_member(db, decision.member_id)
    title, body = render_note(recipient.locale if recipient else None, sender_name, zone_name)
    return create_notification(
        db,
        member_id=decision.member_id,
        kind="friend",
        title=title,
        body=body,
        now=now,
        data={"friend_id": decision.friend_id, "friend_name": sender_name, "zone": zone_name},
        decision_id=decision.id,
    )


def why_friend(
    db: sqlite_utils.Database, recipient_id: int, sender_id: int, store_timezone: str = "UTC"
) -> str:
    """A sentence explaining the latest decision about telling the recipient the sender was here.

    Raises ``UnknownSubject`` when either member does not exist.
    """
    recipient = get_member(db, recipient_id)
    if recipient is None:
        raise UnknownSubject(f"there is no member with id {recipient_id}")
    sender = get_member(db, sender_id)
    if sender is None:
        raise UnknownSubject(f"there is no member with id {sender_id}")
    who, about = recipient.display_name, sender.display_name
    decision = latest_friend_decision(db, recipient_id, sender_id)
    if decision is None:
        if not are_mutual_friends(db, recipient_id, sender_id):
            pair = friendship(db, recipient_id, sender_id)
            state = "" if pair is None else " (a friend request is pending)"
            return f"{who} is never told when {about} is here: they are not mutual friends{state}"
        return (
            f"{who} has never been considered for a note about {about}: {about} has not come "
            f"into the store (the first zone of a visit) while {who} was there"
        )
    zone = ZoneInfo(store_timezone)
    when = f"{from_iso(decision.ts).astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"
    source = f"event {decision.event_id}" if decision.event_id is not None else "no event"
    if decision.sent:
        return f"{who} was told that {about} was here on {when}, for {source}: {decision.reason}"
    outcome = decision.outcome.replace("_", " ")
    return (
        f"{who} was not told that {about} was here on {when}, for {source}: "
        f"{outcome} — {decision.reason}"
    )
