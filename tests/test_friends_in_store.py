"""Friend-in-store notes: every privacy control blocks the note on its own, mutual friends only,
quiet hours across midnight and on the nights the clocks change, the pair cooldown, the first zone
of a visit only, replayed events, the recipient's language and a zone name that is never a
position.

Real SQLite throughout; zones, presence and visits rows are written the way presence and the
worker write them. Time never passes by sleeping: every call gets its ``now``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import sqlite_utils

from community import friends as community
from instore import events, members
from instore.db import transaction
from instore.events import Event
from offers.decide import UnknownSubject, decisions_for_event
from offers.friends import (
    FriendDecision,
    friends_in_store,
    is_first_zone_of_visit,
    latest_friend_decision,
    note_friends,
    parse_friend_quiet_hours,
    render_note,
    why_friend,
)
from offers.notifications import get_notification, recent_notifications
from offers.schedule import InvalidSchedule

STORE_TZ = "Europe/Madrid"
# A Wednesday, 12:00 in Madrid (UTC+1 before the clocks change in March).
NOW = datetime(2025, 3, 12, 11, 0, tzinfo=UTC)
COOLDOWN = 3600
NIGHT = "21:00-09:00"  # quiet through midnight, as a store would set it
LUNCH = "12:00-13:00"  # quiet around NOW (12:00 in Madrid)


Pair = tuple[members.Member, members.Member]


@dataclass
class Store:
    """The floor plan's zones by name, and a counter for device names."""

    db: sqlite_utils.Database
    zones: dict[str, int]
    devices: int = 0


@pytest.fixture
def store(db: sqlite_utils.Database) -> Store:
    zones = {}
    for index, name in enumerate(("Shoes", "Denim", "Tills")):
        polygon = json.dumps([[index * 10, 0], [index * 10 + 8, 0], [index * 10 + 8, 8]])
        cursor = db.conn.execute(
            "INSERT INTO zones (name, polygon, created_at) VALUES (?, ?, ?)",
            (name, polygon, "2025-03-01T08:00:00Z"),
        )
        zones[name] = int(cursor.lastrowid or 0)
    return Store(db, zones)


def make_member(
    db: sqlite_utils.Database, name: str, *, consent: bool = True, locale: str | None = None
) -> members.Member:
    """A member who answered the consents, friend visibility as told."""
    email = f"{name.lower()}@example.com"
    member = members.create_member(
        db, display_name=name, password="correct horse battery", email=email, locale=locale
    )
    choices = {"wifi_terms": True, "location": True, "friend_visibility": consent}
    members.record_consents(db, member.id, choices, "v1")
    return member


def make_friends(db: sqlite_utils.Database, a: members.Member, b: members.Member) -> None:
    assert community.befriend(db, a.id, b.id) == "pending"
    assert community.befriend(db, b.id, a.id) == "accepted"


def be_in_store(store: Store, member: members.Member, zone: str = "Denim") -> str:
    """A presence_state row for a new device of this member (what the tracker writes)."""
    store.devices += 1
    device = f"m:{member.id}:{store.devices}"
    store.db.conn.execute(
        """INSERT INTO presence_state (device, member_id, zone_id, entered_at, last_seen_at)
           VALUES (?, ?, ?, ?, ?)""",
        (device, member.id, store.zones[zone], "2025-03-12T10:50:00Z", "2025-03-12T10:59:00Z"),
    )
    return device


def zone_enter(store: Store, member: members.Member, zone: str, device: str) -> Event:
    """Append a zone_enter event to the outbox and return it as the worker reads it."""
    payload = {"device": device, "member_id": member.id, "zone": zone}
    payload.update(zone_id=store.zones[zone], ts="2025-03-12T11:00:00Z")
    event_id = events.append(store.db, "zone_enter", payload)
    sql = "SELECT ts, payload FROM events WHERE id = ?"
    ts, stored = store.db.conn.execute(sql, (event_id,)).fetchone()
    return Event(event_id, ts, "zone_enter", json.loads(stored))


def arrive(store: Store, member: members.Member, zone: str = "Shoes") -> Event:
    """A new visit: store_enter, its visits row, the presence row, then the first zone_enter."""
    device = be_in_store(store, member, zone)
    payload = {"device": device, "member_id": member.id, "zone": None, "zone_id": None}
    enter_id = events.append(store.db, "store_enter", payload)
    store.db.conn.execute(
        "INSERT INTO visits (member_id, event_id, ts) VALUES (?, ?, ?)",
        (member.id, enter_id, "2025-03-12T11:00:00Z"),
    )
    return zone_enter(store, member, zone, device)


def note(
    store: Store, event: Event, now: datetime = NOW, *, cooldown: int = COOLDOWN, quiet: str = ""
) -> list[FriendDecision]:
    """Run the rule the way the worker does, with this test's clock and settings."""
    return note_friends(
        store.db, event, now, store_timezone=STORE_TZ, cooldown_seconds=cooldown, quiet_hours=quiet
    )


def outcomes(decisions: list[FriendDecision]) -> list[str]:
    return [decision.outcome for decision in decisions]


def friend_notifications(db: sqlite_utils.Database, member: members.Member) -> list[Any]:
    return [n for n in recent_notifications(db, member.id) if n.kind == "friend"]


@pytest.fixture
def ana_and_ben(store: Store) -> Pair:
    """Ana arrives; Ben, her mutual friend, is already in the store; everything allows it."""
    ana, ben = make_member(store.db, "Ana"), make_member(store.db, "Ben")
    make_friends(store.db, ana, ben)
    be_in_store(store, ben, "Denim")
    return ana, ben


# -- the rule as a whole --------------------------------------------------------------------------


def test_a_friend_in_the_store_is_told_the_zone(store: Store, ana_and_ben: Pair) -> None:
    ana, ben = ana_and_ben
    [decision] = note(store, arrive(store, ana, "Shoes"))
    assert decision.sent
    assert (decision.member_id, decision.friend_id) == (ben.id, ana.id)
    assert latest_friend_decision(store.db, ben.id, ana.id) == decision
    [notification] = friend_notifications(store.db, ben)
    assert (notification.title, notification.body) == ("Ana is here", "in Shoes")
    assert notification.decision_id == decision.id
    assert notification.data == {"friend_id": ana.id, "friend_name": "Ana", "zone": "Shoes"}
    assert friend_notifications(store.db, ana) == []  # the one arriving is not told about herself


def test_the_note_carries_the_zone_name_and_never_a_position(
    store: Store, ana_and_ben: Pair
) -> None:
    ana, ben = ana_and_ben
    note(store, arrive(store, ana, "Shoes"))
    [notification] = friend_notifications(store.db, ben)
    shown = notification.to_json()
    assert shown["zone"] == "Shoes"
    text = json.dumps(shown)
    for secret in ("polygon", "zone_id", "device", f"m:{ana.id}", "[[", '"x"', '"y"', "rssi"):
        assert secret not in text
    assert set(notification.data) == {"friend_id", "friend_name", "zone"}


def test_the_note_is_in_the_recipients_language(store: Store) -> None:
    ana, beto = make_member(store.db, "Ana"), make_member(store.db, "Beto", locale="es")
    make_friends(store.db, ana, beto)
    be_in_store(store, beto)
    note(store, arrive(store, ana, "Shoes"))
    [notification] = friend_notifications(store.db, beto)
    assert (notification.title, notification.body) == ("Ana está aquí", "en Shoes")


@pytest.mark.parametrize(
    ("locale", "title"),
    [("es-MX", "Ana está aquí"), ("en-GB", "Ana is here"), ("fr", "Ana is here")],
)
def test_render_note_by_language(locale: str, title: str) -> None:
    assert render_note(locale, "Ana", "Shoes")[0] == title


def test_a_member_with_no_language_reads_english(store: Store) -> None:
    ana, ben = make_member(store.db, "Ana", locale="es"), make_member(store.db, "Ben")
    make_friends(store.db, ana, ben)
    be_in_store(store, ben)
    note(store, arrive(store, ana))
    assert friend_notifications(store.db, ben)[0].title == "Ana is here"


# -- every privacy control blocks the note on its own ---------------------------------------------


def set_control(
    db: sqlite_utils.Database, ana: members.Member, ben: members.Member, how: str
) -> None:
    """Set one privacy control; everything else stays allowing."""
    match how.split("-"):
        case [who, "no", "consent"]:
            member = ana if who == "ana" else ben
            members.record_consents(db, member.id, {"friend_visibility": False}, "v1")
        case ["visible", "to", choice]:
            community.set_visibility(db, ana.id, choice)
        case ["chosen", "with", who]:
            community.choose_visible_friends(db, ana.id, [ben.id] if who == "ben" else [])
            community.set_visibility(db, ana.id, "chosen")
        case [who, "ghost"]:
            community.set_ghost(db, (ana if who == "ana" else ben).id, True)
        case ["ghost", "turned", "off"]:
            for member in (ana, ben):
                community.set_ghost(db, member.id, True)
                community.set_ghost(db, member.id, False)
        case [who, "blocks"]:
            blocker, blocked = (ana, ben) if who == "ana" else (ben, ana)
            community.block(db, blocker.id, blocked.id)
        case _:
            raise AssertionError(f"no such control: {how}")


@pytest.mark.parametrize(
    ("control", "outcome", "reason"),
    [
        ("ana-no-consent", "no_consent", "the arriving member has not consented"),
        ("ben-no-consent", "no_consent", "the recipient has not consented"),
        ("visible-to-nobody", "not_visible", "the arriving member shows their arrivals to nobody"),
        ("chosen-with-nobody", "not_visible", "the arriving member shows their arrivals only to"),
        ("ana-ghost", "ghost_mode", "the arriving member is in ghost mode"),
        ("ben-ghost", "ghost_mode", "the recipient is in ghost mode"),
        ("ana-blocks", "blocked", "the arriving member has blocked the recipient"),
        ("ben-blocks", "blocked", "the recipient has blocked the arriving member"),
    ],
)
def test_each_member_control_alone_stops_the_note(
    store: Store, ana_and_ben: Pair, control: str, outcome: str, reason: str
) -> None:
    ana, ben = ana_and_ben
    set_control(store.db, ana, ben, control)
    [decision] = note(store, arrive(store, ana))
    assert decision.outcome == outcome
    assert decision.reason.startswith(reason)
    assert friend_notifications(store.db, ben) == []


def test_quiet_hours_alone_stop_the_note(store: Store, ana_and_ben: Pair) -> None:
    ana, ben = ana_and_ben
    late = datetime(2025, 3, 12, 22, 15, tzinfo=UTC)  # 23:15 in Madrid
    [decision] = note(store, arrive(store, ana), late, quiet=NIGHT)
    assert decision.outcome == "quiet_hours"
    assert decision.reason == (
        "friend notes are quiet from 21:00 to 09:00 store time; it was 23:15 (Europe/Madrid)"
    )
    assert friend_notifications(store.db, ben) == []


def test_the_pair_cooldown_alone_stops_the_note(store: Store, ana_and_ben: Pair) -> None:
    ana, ben = ana_and_ben
    assert outcomes(note(store, arrive(store, ana))) == ["sent"]
    [decision] = note(store, arrive(store, ana), NOW + timedelta(minutes=20))
    assert decision.outcome == "cooldown"
    assert decision.reason == (
        "the recipient was told about this friend 20 min ago; notes about one friend to one "
        "member wait 1 h"
    )
    assert len(friend_notifications(store.db, ben)) == 1


@pytest.mark.parametrize("control", ["chosen-with-ben", "visible-to-all", "ghost-turned-off"])
def test_the_allowing_side_of_each_control_sends(
    store: Store, ana_and_ben: Pair, control: str
) -> None:
    ana, ben = ana_and_ben
    set_control(store.db, ana, ben, control)
    assert outcomes(note(store, arrive(store, ana))) == ["sent"]


def test_only_the_senders_visibility_matters(store: Store, ana_and_ben: Pair) -> None:
    """Ben hiding his own arrivals does not stop him hearing about Ana's."""
    ana, ben = ana_and_ben
    community.set_visibility(store.db, ben.id, "nobody")
    assert outcomes(note(store, arrive(store, ana))) == ["sent"]


def test_the_checks_run_in_a_fixed_order(store: Store, ana_and_ben: Pair) -> None:
    """With every control refusing, each one lifted in turn reveals the next: the log names the
    strongest reason first."""
    ana, ben = ana_and_ben
    db = store.db
    # Every refusal at once, then lifted in order; the cooldown comes from the note below.
    assert outcomes(note(store, arrive(store, ana), NOW)) == ["sent"]
    members.record_consents(db, ana.id, {"friend_visibility": False}, "v1")
    community.block(db, ben.id, ana.id)
    community.set_ghost(db, ana.id, True)
    community.set_visibility(db, ana.id, "nobody")
    soon = NOW + timedelta(minutes=5)  # 12:05 in Madrid, inside LUNCH
    steps: list[tuple[str, Callable[[], object]]] = [
        (
            "no_consent",
            lambda: members.record_consents(db, ana.id, {"friend_visibility": True}, "v1"),
        ),
        ("blocked", lambda: community.unblock(db, ben.id, ana.id)),
        ("ghost_mode", lambda: community.set_ghost(db, ana.id, False)),
        ("not_visible", lambda: community.set_visibility(db, ana.id, "all")),
    ]
    for expected, lift in steps:
        assert outcomes(note(store, arrive(store, ana), soon, quiet=LUNCH)) == [expected]
        lift()
    assert outcomes(note(store, arrive(store, ana), soon, quiet=LUNCH)) == ["quiet_hours"]
    assert outcomes(note(store, arrive(store, ana), soon)) == ["cooldown"]


def test_neither_consenting_is_named(store: Store, ana_and_ben: Pair) -> None:
    ana, ben = ana_and_ben
    for member in (ana, ben):
        members.record_consents(store.db, member.id, {"friend_visibility": False}, "v1")
    [decision] = note(store, arrive(store, ana))
    assert decision.reason == "neither member has consented to friend visibility"


def test_a_member_who_never_answered_has_no_consent(store: Store) -> None:
    ana = members.create_member(store.db, display_name="Ana", password="correct horse battery")
    ben = make_member(store.db, "Ben")
    make_friends(store.db, ana, ben)
    be_in_store(store, ben)
    assert outcomes(note(store, arrive(store, ana))) == ["no_consent"]


# -- who is evaluated at all ----------------------------------------------------------------------


def test_a_pending_request_is_not_a_friendship(store: Store) -> None:
    ana, ben = make_member(store.db, "Ana"), make_member(store.db, "Ben")
    community.befriend(store.db, ana.id, ben.id)
    be_in_store(store, ben)
    assert note(store, arrive(store, ana)) == []
    assert store.db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0


def test_a_friend_who_is_not_in_the_store_is_not_evaluated(store: Store) -> None:
    ana, ben = make_member(store.db, "Ana"), make_member(store.db, "Ben")
    make_friends(store.db, ana, ben)
    assert note(store, arrive(store, ana)) == []
    assert store.db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0


def test_every_friend_in_the_store_gets_their_own_decision(store: Store) -> None:
    ana, ben, cleo, dan, eve = (
        make_member(store.db, name) for name in ("Ana", "Ben", "Cleo", "Dan", "Eve")
    )
    for friend in (ben, cleo, dan):
        make_friends(store.db, ana, friend)
    be_in_store(store, ben)
    be_in_store(store, cleo)
    be_in_store(store, cleo, "Tills")  # a second device of Cleo's: still one decision
    be_in_store(store, eve)  # in the store, not a friend; Dan is a friend, not in the store
    community.block(store.db, cleo.id, ana.id)
    assert friends_in_store(store.db, ana.id) == [ben.id, cleo.id]
    decisions = note(store, arrive(store, ana))
    assert [(d.member_id, d.outcome) for d in decisions] == [(ben.id, "sent"), (cleo.id, "blocked")]


def test_events_that_note_nobody(store: Store, ana_and_ben: Pair) -> None:
    ana, _ = ana_and_ben
    first = arrive(store, ana)
    for event in (
        Event(first.id, first.ts, "zone_dwell", first.payload),
        Event(first.id, first.ts, "store_enter", first.payload),
        Event(first.id, first.ts, "zone_enter", {**first.payload, "member_id": None}),
    ):
        assert note(store, event) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        note(store, first, datetime(2025, 3, 12, 12, 0))


# -- first zone of a visit only -------------------------------------------------------------------


def test_only_the_first_zone_of_a_visit_notes_friends(store: Store, ana_and_ben: Pair) -> None:
    ana, ben = ana_and_ben
    first = arrive(store, ana, "Shoes")
    device = first.payload["device"]
    assert outcomes(note(store, first, cooldown=0)) == ["sent"]
    assert note(store, zone_enter(store, ana, "Denim", device), cooldown=0) == []
    assert note(store, zone_enter(store, ana, "Shoes", device), cooldown=0) == []
    # A new visit starts counting again.
    assert outcomes(note(store, arrive(store, ana, "Tills"), cooldown=0)) == ["sent"]
    assert [n.body for n in friend_notifications(store.db, ben)] == ["in Tills", "in Shoes"]


def test_the_first_zone_is_judged_per_member_and_per_event(store: Store) -> None:
    ana, ben = make_member(store.db, "Ana"), make_member(store.db, "Ben")
    ana_first = arrive(store, ana)
    ben_first = arrive(store, ben)  # Ben's zone_enter does not count against Ana
    ana_second = zone_enter(store, ana, "Denim", ana_first.payload["device"])
    assert is_first_zone_of_visit(store.db, ana.id, ana_first.id)
    assert is_first_zone_of_visit(store.db, ben.id, ben_first.id)
    assert not is_first_zone_of_visit(store.db, ana.id, ana_second.id)
    # Bounded by the event: asking again about the first event later gives the same answer.
    arrive(store, ana)
    assert is_first_zone_of_visit(store.db, ana.id, ana_first.id)


def test_with_no_visit_recorded_the_zone_counts_as_first(store: Store, ana_and_ben: Pair) -> None:
    ana, _ = ana_and_ben
    device = be_in_store(store, ana, "Shoes")
    event = zone_enter(store, ana, "Shoes", device)
    assert is_first_zone_of_visit(store.db, ana.id, event.id)
    assert outcomes(note(store, event)) == ["sent"]


# -- quiet hours ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "outcome"),
    [
        (datetime(2025, 3, 12, 19, 59, tzinfo=UTC), "sent"),  # 20:59 local
        (datetime(2025, 3, 12, 20, 0, tzinfo=UTC), "quiet_hours"),  # 21:00, the start
        (datetime(2025, 3, 12, 23, 30, tzinfo=UTC), "quiet_hours"),  # 00:30, past midnight
        (datetime(2025, 3, 13, 7, 59, tzinfo=UTC), "quiet_hours"),  # 08:59
        (datetime(2025, 3, 13, 8, 0, tzinfo=UTC), "sent"),  # 09:00, the end
    ],
)
def test_quiet_hours_run_across_midnight(
    store: Store, ana_and_ben: Pair, now: datetime, outcome: str
) -> None:
    ana, _ = ana_and_ben
    assert outcomes(note(store, arrive(store, ana), now, quiet=NIGHT)) == [outcome]


@pytest.mark.parametrize(
    ("now", "quiet", "outcome"),
    [
        # 30 March 2025: Madrid jumps from 02:00 CET (UTC+1) to 03:00 CEST (UTC+2) at 01:00 UTC.
        # 07:30 UTC is 09:30 on the shop wall; a fixed winter offset would think 08:30 (quiet).
        (datetime(2025, 3, 30, 7, 30, tzinfo=UTC), NIGHT, "sent"),
        (datetime(2025, 3, 30, 6, 30, tzinfo=UTC), NIGHT, "quiet_hours"),  # 08:30 CEST
        # 02:00-03:00 does not exist that night: nothing is quiet either side of the jump.
        (datetime(2025, 3, 30, 0, 59, tzinfo=UTC), "02:00-03:00", "sent"),  # 01:59 CET
        (datetime(2025, 3, 30, 1, 0, tzinfo=UTC), "02:00-03:00", "sent"),  # 03:00 CEST
        # 26 October 2025: back from 03:00 CEST to 02:00 CET at 01:00 UTC.
        # 07:30 UTC is 08:30 on the wall (quiet); a fixed summer offset would think 09:30.
        (datetime(2025, 10, 26, 7, 30, tzinfo=UTC), NIGHT, "quiet_hours"),
        (datetime(2025, 10, 26, 8, 0, tzinfo=UTC), NIGHT, "sent"),  # 09:00 CET
        # 02:30 happens twice that night, and is quiet both times.
        (datetime(2025, 10, 26, 0, 30, tzinfo=UTC), "02:00-03:00", "quiet_hours"),  # CEST
        (datetime(2025, 10, 26, 1, 30, tzinfo=UTC), "02:00-03:00", "quiet_hours"),  # CET
        (datetime(2025, 10, 26, 2, 0, tzinfo=UTC), "02:00-03:00", "sent"),  # 03:00 CET
    ],
)
def test_quiet_hours_follow_the_shop_wall_clock_when_the_clocks_change(
    store: Store, ana_and_ben: Pair, now: datetime, quiet: str, outcome: str
) -> None:
    ana, _ = ana_and_ben
    assert outcomes(note(store, arrive(store, ana), now, quiet=quiet)) == [outcome]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", None),
        ("  ", None),
        ("21:00-09:00", (time(21, 0), time(9, 0))),
        ("12:00 - 14:30", (time(12, 0), time(14, 30))),
    ],
)
def test_parse_friend_quiet_hours(text: str, parsed: tuple[time, time] | None) -> None:
    assert parse_friend_quiet_hours(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("21:00", "is not a span like '21:00-09:00'"),
        ("21:00-09:00-10:00", "is not a span like"),
        ("9:00-10:00", "is not a time like '09:30'"),
        ("10:00-10:00", "start and end are the same time"),
    ],
)
def test_bad_quiet_hours_are_refused_with_a_message(
    store: Store, ana_and_ben: Pair, text: str, message: str
) -> None:
    ana, _ = ana_and_ben
    with pytest.raises(InvalidSchedule, match=message):
        note(store, arrive(store, ana), quiet=text)
    assert store.db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0


def test_an_already_parsed_quiet_span_is_accepted(store: Store, ana_and_ben: Pair) -> None:
    ana, _ = ana_and_ben
    late = datetime(2025, 3, 12, 22, 0, tzinfo=UTC)
    decisions = note_friends(
        store.db,
        arrive(store, ana),
        late,
        store_timezone=STORE_TZ,
        cooldown_seconds=0,
        quiet_hours=(time(21, 0), time(9, 0)),
    )
    assert outcomes(decisions) == ["quiet_hours"]


# -- the pair cooldown ----------------------------------------------------------------------------


def test_the_pair_cooldown_across_windows(store: Store, ana_and_ben: Pair) -> None:
    ana, ben = ana_and_ben
    assert outcomes(note(store, arrive(store, ana), NOW)) == ["sent"]
    assert outcomes(note(store, arrive(store, ana), NOW + timedelta(seconds=3599))) == ["cooldown"]
    # Refusals do not extend the window: it counts from the last note actually sent.
    assert outcomes(note(store, arrive(store, ana), NOW + timedelta(seconds=3600))) == ["sent"]
    assert outcomes(note(store, arrive(store, ana), NOW + timedelta(minutes=90))) == ["cooldown"]
    assert len(friend_notifications(store.db, ben)) == 2


def test_the_cooldown_is_per_direction_and_per_friend(store: Store) -> None:
    ana, ben, cleo = (make_member(store.db, name) for name in ("Ana", "Ben", "Cleo"))
    make_friends(store.db, ana, ben)
    make_friends(store.db, cleo, ben)
    make_friends(store.db, ana, cleo)
    be_in_store(store, ben)
    assert outcomes(note(store, arrive(store, ana), NOW)) == ["sent"]  # Ben hears of Ana
    soon = NOW + timedelta(minutes=10)
    # Cleo arrives: Ana and Ben are both told, although Ben was just told about Ana.
    assert outcomes(note(store, arrive(store, cleo), soon)) == ["sent", "sent"]
    # Ben comes back in: "Ben is here" is news to Ana and Cleo.
    assert outcomes(note(store, arrive(store, ben), soon)) == ["sent", "sent"]
    # Ana again: Ben heard of her within the hour; Cleo was not in the store then, so is told.
    assert outcomes(note(store, arrive(store, ana), soon)) == ["cooldown", "sent"]
    assert outcomes(note(store, arrive(store, ana), soon)) == ["cooldown", "cooldown"]


def test_a_zero_cooldown_notes_every_visit(store: Store, ana_and_ben: Pair) -> None:
    ana, ben = ana_and_ben
    for _ in range(3):
        assert outcomes(note(store, arrive(store, ana), cooldown=0)) == ["sent"]
    assert len(friend_notifications(store.db, ben)) == 3


# -- replays and transactions ---------------------------------------------------------------------


def test_a_replayed_event_returns_the_log_and_writes_nothing(
    store: Store, ana_and_ben: Pair
) -> None:
    ana, ben = ana_and_ben
    event = arrive(store, ana)
    first = note(store, event)
    later = NOW + timedelta(hours=5)  # past the cooldown: a second evaluation would send again
    assert note(store, event, later) == first
    assert note(store, event, later, cooldown=0) == first
    assert store.db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1
    assert len(friend_notifications(store.db, ben)) == 1


def test_noting_inside_the_callers_transaction(store: Store, ana_and_ben: Pair) -> None:
    ana, ben = ana_and_ben
    event = arrive(store, ana)
    with pytest.raises(RuntimeError), transaction(store.db):
        assert outcomes(note(store, event)) == ["sent"]
        raise RuntimeError("the worker failed after noting")
    # The caller's rollback took the decision and the notification with it.
    assert store.db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0
    assert friend_notifications(store.db, ben) == []
    with transaction(store.db):
        [decision] = note(store, event)
    [notification] = friend_notifications(store.db, ben)
    assert get_notification(store.db, notification.id) == notification
    assert notification.decision_id == decision.id


def test_friend_decisions_and_offer_decisions_share_an_event(
    store: Store, ana_and_ben: Pair
) -> None:
    """The offer engine's replay check ignores friend rows, and this one ignores offer rows."""
    ana, _ = ana_and_ben
    event = arrive(store, ana)
    note(store, event)
    assert decisions_for_event(store.db, event.id) == []


# -- why ------------------------------------------------------------------------------------------


def test_why_friend_explains_the_latest_decision(store: Store, ana_and_ben: Pair) -> None:
    ana, ben = ana_and_ben
    event = arrive(store, ana)
    note(store, event)
    assert why_friend(store.db, ben.id, ana.id, STORE_TZ) == (
        f"Ben was told that Ana was here on 2025-03-12 12:00 (Europe/Madrid), for event "
        f"{event.id}: every check passed: both consented, visible to this friend, no block or "
        "ghost mode, outside quiet hours and the pair's cooldown"
    )
    community.set_ghost(store.db, ana.id, True)
    event = arrive(store, ana)
    note(store, event, NOW + timedelta(hours=2))
    assert why_friend(store.db, ben.id, ana.id, STORE_TZ) == (
        f"Ben was not told that Ana was here on 2025-03-12 14:00 (Europe/Madrid), for event "
        f"{event.id}: ghost mode — the arriving member is in ghost mode, hidden from every friend"
    )


def test_why_friend_with_nothing_logged(store: Store) -> None:
    ana, ben, cleo = (make_member(store.db, name) for name in ("Ana", "Ben", "Cleo"))
    community.befriend(store.db, ana.id, ben.id)
    assert why_friend(store.db, ben.id, ana.id) == (
        "Ben is never told when Ana is here: they are not mutual friends "
        "(a friend request is pending)"
    )
    assert why_friend(store.db, cleo.id, ana.id) == (
        "Cleo is never told when Ana is here: they are not mutual friends"
    )
    make_friends(store.db, ana, cleo)
    assert why_friend(store.db, cleo.id, ana.id).startswith(
        "Cleo has never been considered for a note about Ana:"
    )
    with pytest.raises(UnknownSubject, match="no member with id 999"):
        why_friend(store.db, 999, ana.id)
    with pytest.raises(UnknownSubject, match="no member with id 998"):
        why_friend(store.db, ana.id, 998)
