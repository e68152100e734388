"""The decision matrix: each outcome from a focused case, caps and cooldowns across windows,
priority, exclusivity, sticky experiments, replayed events and the "why" sentence.

Time never passes by sleeping: every call gets its ``now``, and the decision log is the only state.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlite_utils

from instore import members
from instore.clock import to_iso
from instore.db import transaction
from instore.events import Event
from offers import experiments
from offers.decide import (
    Decision,
    UnknownSubject,
    decide,
    describe_duration,
    latest_decision,
    why,
)
from offers.model import Offer, get_offer, save_offer, validate_offer

STORE_TZ = "Europe/Madrid"
# A Wednesday, 12:00 in Madrid (UTC+1 in March before the clocks change).
NOW = datetime(2025, 3, 12, 11, 0, tzinfo=UTC)
SHOES, DENIM = 1, 2
GOLD_RUNNER: dict[str, Any] = {
    "tier": "gold",
    "interests": ["running"],
    "visits": 4,
    "is_new": False,
    "consents": {"location": True, "marketing": True, "friend_visibility": False},
    "days_since_last_visit": 3,
}

NOW_ISO = "2025-03-12T11:00:00Z"

_event_ids: Iterator[int] = itertools.count(1000)


def make_member(
    db: sqlite_utils.Database, name: str = "Ana", *, location: bool = True, marketing: bool = True
) -> members.Member:
    """A member who said yes to location and marketing unless told otherwise."""
    member = members.create_member(
        db, display_name=name, password="correct horse battery", email=f"{name}@example.com"
    )
    choices = {"wifi_terms": True, "location": location, "marketing": marketing}
    members.record_consents(db, member.id, choices, "v1")
    return member


def make_offer(db: sqlite_utils.Database, **changes: Any) -> Offer:
    """A live shoe offer for anyone entering Shoes, saved; tests change what they test."""
    data: dict[str, Any] = {
        "name": "Spring runners",
        "status": "live",
        "title": "25% off trail shoes",
        "benefit_kind": "percent_off",
        "benefit_value": 25,
        "product": "TR-200 trail shoe",
        "base_price_cents": 8000,
        "valid_from": "2025-03-01T08:00:00Z",
        "valid_to": "2025-04-01T08:00:00Z",
        "trigger_kind": "zone_enter",
        "zones": [SHOES],
    }
    data.update(changes)
    offer = get_offer(db, save_offer(db, validate_offer(data)))
    assert offer is not None
    return offer


def zone_event(
    member: members.Member | int, zone_id: int = SHOES, kind: str = "zone_enter", **payload: Any
) -> Event:
    """A fresh event (new id) of this member in this zone."""
    member_id = member if isinstance(member, int) else member.id
    return Event(
        next(_event_ids),
        "2025-03-12T11:00:00Z",
        kind,
        {"member_id": member_id, "zone_id": zone_id, **payload},
    )


def run(
    db: sqlite_utils.Database,
    member: members.Member | int,
    offers: list[Offer],
    now: datetime = NOW,
    *,
    event: Event | None = None,
    attributes: dict[str, Any] | None = None,
    global_cooldown: int = 0,
) -> list[Decision]:
    return decide(
        db,
        event or zone_event(member),
        offers,
        GOLD_RUNNER if attributes is None else attributes,
        now,
        STORE_TZ,
        global_cooldown,
    )


def outcomes(decisions: list[Decision]) -> list[str]:
    return [decision.outcome for decision in decisions]


def test_an_offer_that_passes_every_check_is_sent_and_logged(db: sqlite_utils.Database) -> None:
    ana, offer = make_member(db), make_offer(db)
    [decision] = run(db, ana, [offer])
    assert decision.sent and decision.offer_id == offer.id and decision.member_id == ana.id
    assert decision.reason == "the only offer that passed every check"
    assert decision.variant is None
    assert latest_decision(db, ana.id, offer.id or 0) == decision


@pytest.mark.parametrize(
    ("trigger", "consents", "reason"),
    [
        ("zone_enter", {"location": False}, "no location consent: a zone_enter offer uses"),
        ("zone_dwell", {"location": False}, "no location consent: a zone_dwell offer uses"),
        ("zone_enter", {"marketing": False}, "no marketing consent"),
        ("portal_login", {"marketing": False}, "no marketing consent"),
    ],
)
def test_no_consent(
    db: sqlite_utils.Database, trigger: str, consents: dict[str, bool], reason: str
) -> None:
    ana = make_member(
        db, location=consents.get("location", True), marketing=consents.get("marketing", True)
    )
    params = {"seconds": 30} if trigger == "zone_dwell" else {}
    offer = make_offer(db, trigger_kind=trigger, trigger_params=params)
    [decision] = run(db, ana, [offer], event=zone_event(ana, kind=trigger))
    assert decision.outcome == "no_consent"
    assert decision.reason.startswith(reason)


def test_a_portal_login_offer_needs_no_location_consent(db: sqlite_utils.Database) -> None:
    ana = make_member(db, location=False)
    offer = make_offer(db, trigger_kind="portal_login", zones=[])
    event = Event(next(_event_ids), "2025-03-12T11:00:00Z", "portal_login", {"member_id": ana.id})
    assert outcomes(run(db, ana, [offer], event=event)) == ["sent"]


def test_a_member_who_never_answered_has_no_consent(db: sqlite_utils.Database) -> None:
    ana = members.create_member(db, display_name="Ana", password="correct horse battery")
    assert outcomes(run(db, ana.id, [make_offer(db)])) == ["no_consent"]


@pytest.mark.parametrize(
    ("now", "changes", "reason"),
    [
        (datetime(2025, 2, 1, tzinfo=UTC), {}, "the offer starts at 2025-03-01 09:00"),
        (datetime(2025, 4, 2, tzinfo=UTC), {}, "the offer ended at 2025-04-01 10:00"),
        (NOW, {"store_hours": {"mon": ["09:00", "21:00"]}}, "the store is closed on Wednesdays"),
        (NOW, {"store_hours": {"wed": ["13:00", "21:00"]}}, "the store opens at 13:00"),
    ],
)
def test_out_of_schedule(
    db: sqlite_utils.Database, now: datetime, changes: dict[str, Any], reason: str
) -> None:
    [decision] = run(db, make_member(db), [make_offer(db, **changes)], now)
    assert decision.outcome == "out_of_schedule"
    assert decision.reason.startswith(reason)


def test_quiet_hours_across_midnight_in_the_store_time_zone(db: sqlite_utils.Database) -> None:
    ana, offer = make_member(db), make_offer(db, quiet_hours=["22:00", "08:00"])
    late = datetime(2025, 3, 12, 22, 30, tzinfo=UTC)  # 23:30 in Madrid
    [decision] = run(db, ana, [offer], late)
    assert (decision.outcome, decision.reason) == ("quiet_hours", "quiet hours from 22:00 to 08:00")
    assert outcomes(run(db, ana, [offer], datetime(2025, 3, 13, 7, 0, tzinfo=UTC))) == ["sent"]


def test_not_in_audience(db: sqlite_utils.Database) -> None:
    offer = make_offer(db, audience='tier == "gold"')
    [decision] = run(db, make_member(db), [offer], attributes={**GOLD_RUNNER, "tier": "silver"})
    assert decision.outcome == "not_in_audience"
    assert decision.reason == 'the member is not in the audience: tier == "gold"'


def test_budget_spent_counts_sends_to_every_member(db: sqlite_utils.Database) -> None:
    ana, ben = make_member(db, "Ana"), make_member(db, "Ben")
    offer = make_offer(db, max_issued=1)
    assert outcomes(run(db, ana, [offer])) == ["sent"]
    [decision] = run(db, ben, [offer])
    assert decision.outcome == "budget_spent"
    assert decision.reason == "all 1 issues of this offer have gone out"


def _redeemed(db: sqlite_utils.Database, offer: Offer, code: str, discount_cents: int) -> None:
    """A till's redemption of one code of this offer, as offers.redemption records it."""
    till = db.conn.execute("SELECT id FROM tills WHERE name = 'till 1'").fetchone()
    till_id = (
        till[0]
        if till
        else db.conn.execute(
            "INSERT INTO tills (name, key_hash, created_at) VALUES ('till 1', 'h', ?)", (NOW_ISO,)
        ).lastrowid
    )
    db.conn.execute(
        "INSERT INTO redemptions (code, offer_id, till_id, ts, discount_cents)"
        " VALUES (?, ?, ?, ?, ?)",
        (code, offer.id, till_id, NOW_ISO, discount_cents),
    )


@pytest.mark.parametrize(
    ("limits", "redeemed", "reason"),
    [
        ({"max_redeemed": 2}, [500, 500], "all 2 redemptions of this offer are used"),
        (
            {"max_discount_cents": 1500},
            [1000, 600],
            "the offer's discount budget is spent: 16.00 given of 15.00",
        ),
    ],
)
def test_budget_spent_counts_redemptions_at_the_tills(
    db: sqlite_utils.Database, limits: dict[str, int], redeemed: list[int], reason: str
) -> None:
    offer = make_offer(db, **limits)
    ana = make_member(db)
    _redeemed(db, offer, "S001-AAAA-0001", redeemed[0])
    assert outcomes(run(db, ana, [offer])) == ["sent"]  # budget left after one redemption
    _redeemed(db, offer, "S001-AAAA-0002", redeemed[1])
    [decision] = run(db, make_member(db, "Ben"), [offer])
    assert (decision.outcome, decision.reason) == ("budget_spent", reason)


def test_per_member_cap_inside_and_after_the_window(db: sqlite_utils.Database) -> None:
    ana = make_member(db)
    offer = make_offer(db, per_member_cap=2, cap_window_seconds=3600)
    assert outcomes(run(db, ana, [offer], NOW)) == ["sent"]
    assert outcomes(run(db, ana, [offer], NOW + timedelta(minutes=10))) == ["sent"]
    [inside] = run(db, ana, [offer], NOW + timedelta(seconds=3599))
    assert inside.outcome == "capped"
    assert inside.reason == "sent to this member 2 times in the last 1 h (cap 2)"
    # The first send has left the window: one of two used, so it goes out again.
    assert outcomes(run(db, ana, [offer], NOW + timedelta(seconds=3600))) == ["sent"]
    # A cap is per member: Ben is not capped by Ana's sends.
    ben = make_member(db, "Ben")
    assert outcomes(run(db, ben, [offer], NOW + timedelta(seconds=3601))) == ["sent"]


def test_offer_cooldown_inside_and_after(db: sqlite_utils.Database) -> None:
    ana, offer = make_member(db), make_offer(db, cooldown_seconds=600)
    assert outcomes(run(db, ana, [offer], NOW)) == ["sent"]
    [inside] = run(db, ana, [offer], NOW + timedelta(seconds=599))
    assert inside.outcome == "cooldown"
    assert inside.reason == ("this offer went to the member 9 min 59 s ago; its cooldown is 10 min")
    assert outcomes(run(db, ana, [offer], NOW + timedelta(seconds=600))) == ["sent"]


def test_global_cooldown_across_different_offers(db: sqlite_utils.Database) -> None:
    ana = make_member(db)
    shoes = make_offer(db, name="Shoes", zones=[SHOES])
    denim = make_offer(db, name="Denim", zones=[DENIM])
    offers = [shoes, denim]
    first = run(db, ana, offers, NOW, event=zone_event(ana, SHOES), global_cooldown=600)
    assert [(d.offer_id, d.outcome) for d in first] == [(shoes.id, "sent")]
    [refused] = run(
        db,
        ana,
        offers,
        NOW + timedelta(minutes=5),
        event=zone_event(ana, DENIM),
        global_cooldown=600,
    )
    assert (refused.offer_id, refused.outcome) == (denim.id, "cooldown")
    assert refused.reason == (
        f"at most one push per member every 10 min; offer {shoes.id} went out 5 min ago"
    )
    later = run(
        db,
        ana,
        offers,
        NOW + timedelta(minutes=10),
        event=zone_event(ana, DENIM),
        global_cooldown=600,
    )
    # Counted from the last send, not from the refusal at +5 min.
    assert outcomes(later) == ["sent"]


def test_the_first_refusal_wins(db: sqlite_utils.Database) -> None:
    """No consent, out of schedule and not in the audience at once: consent is reported."""
    ana = make_member(db, location=False)
    offer = make_offer(db, audience='tier == "gold"', store_hours={"mon": ["09:00", "21:00"]})
    silver = {**GOLD_RUNNER, "tier": "silver"}
    assert outcomes(run(db, ana, [offer], attributes=silver)) == ["no_consent"]
    members.record_consents(db, ana.id, {"location": True}, "v1")
    assert outcomes(run(db, ana, [offer], attributes=silver)) == ["out_of_schedule"]
    open_offer = make_offer(db, audience='tier == "gold"')
    assert outcomes(run(db, ana, [open_offer], attributes=silver)) == ["not_in_audience"]


def test_the_highest_priority_wins_and_the_rest_are_logged(db: sqlite_utils.Database) -> None:
    ana = make_member(db)
    low = make_offer(db, name="Socks", priority=1)
    high = make_offer(db, name="Shoes", priority=5)
    decisions = run(db, ana, [low, high])
    assert [(d.offer_id, d.outcome) for d in decisions] == [
        (high.id, "sent"),
        (low.id, "lower_priority"),
    ]
    assert decisions[0].reason == "priority 5, the highest of 2 candidates"
    assert decisions[1].reason == f"offer {high.id} ('Shoes', priority 5) went out instead"


def test_equal_priority_goes_to_the_older_offer(db: sqlite_utils.Database) -> None:
    ana = make_member(db)
    older, newer = make_offer(db, name="Older"), make_offer(db, name="Newer")
    decisions = run(db, ana, [newer, older])
    assert {d.offer_id: d.outcome for d in decisions} == {
        older.id: "sent",
        newer.id: "lower_priority",
    }


def test_an_exclusive_offer_beats_higher_priorities(db: sqlite_utils.Database) -> None:
    ana = make_member(db)
    loud = make_offer(db, name="Loud", priority=9)
    exclusive = make_offer(db, name="VIP", priority=1, exclusive=True)
    other = make_offer(db, name="Other", priority=3)
    decisions = {d.offer_id: d for d in run(db, ana, [loud, exclusive, other])}
    assert decisions[exclusive.id or 0].outcome == "sent"
    assert decisions[exclusive.id or 0].reason == "exclusive, so it beats the other 2 candidate(s)"
    for offer in (loud, other):
        assert decisions[offer.id or 0].outcome == "lower_priority"
        assert decisions[offer.id or 0].reason.startswith(f"exclusive offer {exclusive.id} ('VIP'")


def test_a_refused_exclusive_offer_suppresses_nothing(db: sqlite_utils.Database) -> None:
    ana = make_member(db)
    exclusive = make_offer(db, name="VIP", exclusive=True, audience='tier == "platinum"')
    plain = make_offer(db, name="Plain")
    decisions = {d.offer_id: d.outcome for d in run(db, ana, [exclusive, plain])}
    assert decisions == {exclusive.id: "not_in_audience", plain.id: "sent"}


def test_holdout(db: sqlite_utils.Database) -> None:
    ana = make_member(db)
    held = make_offer(db, name="Held", holdout_percent=100, priority=5)
    fallback = make_offer(db, name="Fallback", priority=1)
    decisions = {d.offer_id: d for d in run(db, ana, [held, fallback])}
    assert decisions[held.id or 0].outcome == "holdout"
    assert decisions[held.id or 0].reason == (
        "the member is in this offer's 100% holdout (control) group"
    )
    # The holdout measures "without this offer", so the member still gets the next one.
    assert decisions[fallback.id or 0].outcome == "sent"


def test_holdout_is_sticky_and_close_to_the_percentage(db: sqlite_utils.Database) -> None:
    offer_id = 7
    held = [m for m in range(1, 20_001) if experiments.is_held_out(offer_id, m, 20)]
    assert 0.18 < len(held) / 20_000 < 0.22
    assert all(experiments.is_held_out(offer_id, m, 20) for m in held[:100])
    # Raising the percentage only adds members: nobody held out at 20% is let in at 30%.
    assert all(experiments.is_held_out(offer_id, m, 30) for m in held)
    # Through the engine: the same member is held out on every event, not by chance.
    ana, offer = make_member(db), make_offer(db, holdout_percent=50)
    assert offer.id is not None
    expected = "holdout" if experiments.is_held_out(offer.id, ana.id, 50) else "sent"
    for minutes in range(5):
        assert outcomes(run(db, ana, [offer], NOW + timedelta(minutes=minutes))) == [expected]


def test_variants_are_sticky_and_weighted(db: sqlite_utils.Database) -> None:
    variants = ({"name": "A", "weight": 1}, {"name": "B", "weight": 3})
    chosen = [experiments.choose_variant(3, m, variants) for m in range(1, 8001)]
    assert 0.72 < chosen.count("B") / len(chosen) < 0.78
    assert experiments.choose_variant(3, 1, ()) is None
    ana = make_member(db)
    offer = make_offer(db, variants=[{"name": "A", "weight": 1}, {"name": "B", "weight": 3}])
    assert offer.id is not None
    expected = experiments.choose_variant(offer.id, ana.id, offer.variants)
    sent = [run(db, ana, [offer], NOW + timedelta(minutes=m))[0] for m in range(5)]
    assert {(d.outcome, d.variant) for d in sent} == {("sent", expected)}
    assert sent[0].reason == f"the only offer that passed every check; variant {expected!r}"
    stored = db.conn.execute("SELECT DISTINCT variant FROM decisions").fetchall()
    assert stored == [(expected,)]


def test_replaying_an_event_never_sends_twice(db: sqlite_utils.Database) -> None:
    ana = make_member(db)
    offers = [make_offer(db, priority=2), make_offer(db, name="Other")]
    event = zone_event(ana)
    first = run(db, ana, offers, event=event)
    # Later, with the cooldown long gone, the same event id gives back the same decisions.
    again = run(db, ana, offers, NOW + timedelta(days=1), event=event)
    assert again == first
    assert outcomes(first) == ["sent", "lower_priority"]
    assert db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 2


def test_deciding_inside_the_callers_transaction(db: sqlite_utils.Database) -> None:
    """``events.consume`` runs handlers inside its transaction; decide must fit in it."""
    ana, offer = make_member(db), make_offer(db)
    event = zone_event(ana)
    with transaction(db):
        first = run(db, ana, [offer], event=event)
        assert run(db, ana, [offer], event=event) == first
    assert outcomes(first) == ["sent"]
    with pytest.raises(RuntimeError), transaction(db):
        run(db, ana, [offer], event=zone_event(ana))
        raise RuntimeError("the handler failed after deciding")
    assert db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("event_kind", "payload", "offer_changes", "evaluated"),
    [
        ("zone_enter", {"zone_id": DENIM}, {}, False),  # another zone
        ("zone_enter", {"zone_id": DENIM}, {"zones": []}, True),  # no zones: any zone
        ("zone_enter", {}, {"status": "draft"}, False),
        ("zone_enter", {}, {"status": "paused"}, False),
        ("zone_exit", {}, {}, False),
        ("zone_dwell", {}, {}, False),  # a zone_enter offer
        ("zone_dwell", {"dwell_seconds": 45}, {"trigger_kind": "zone_dwell"}, False),
        ("zone_dwell", {"dwell_seconds": 90}, {"trigger_kind": "zone_dwell"}, True),
        ("zone_dwell", {}, {"trigger_kind": "zone_dwell"}, False),  # presence proves 30 s only
        ("zone_dwell", {}, {"trigger_kind": "zone_dwell", "trigger_params": {"seconds": 30}}, True),
        ("zone_enter", {"member_id": None}, {}, False),  # a device nobody linked
    ],
)
def test_which_offers_an_event_triggers(
    db: sqlite_utils.Database,
    event_kind: str,
    payload: dict[str, Any],
    offer_changes: dict[str, Any],
    evaluated: bool,
) -> None:
    ana = make_member(db)
    if offer_changes.get("trigger_kind") == "zone_dwell":
        offer_changes = {"trigger_params": {"seconds": 60}, **offer_changes}
    offer = make_offer(db, **offer_changes)
    event = zone_event(ana, kind=event_kind, **payload)
    assert outcomes(run(db, ana, [offer], event=event)) == (["sent"] if evaluated else [])


def test_unsaved_offers_and_naive_times_are_refused(db: sqlite_utils.Database) -> None:
    ana = make_member(db)
    unsaved = replace(make_offer(db), id=None)
    with pytest.raises(ValueError, match="must be saved"):
        run(db, ana, [unsaved])
    with pytest.raises(ValueError, match="timezone-aware"):
        run(db, ana, [make_offer(db)], datetime(2025, 3, 12, 11, 0))


def test_why_explains_the_latest_decision(db: sqlite_utils.Database) -> None:
    ana, offer = make_member(db), make_offer(db, cooldown_seconds=3600)
    assert offer.id is not None
    assert why(db, ana.id, offer.id) == (
        f"Ana has never been considered for offer {offer.id} ('Spring runners'): no event "
        "matched its trigger and zones while it was live"
    )
    sent = run(db, ana, [offer])[0]
    assert why(db, ana.id, offer.id, STORE_TZ) == (
        f"Ana got offer {offer.id} ('Spring runners') on 2025-03-12 12:00 (Europe/Madrid), "
        f"for event {sent.event_id}: the only offer that passed every check"
    )
    refused = run(db, ana, [offer], NOW + timedelta(minutes=15))[0]
    assert why(db, ana.id, offer.id, STORE_TZ) == (
        f"Ana did not get offer {offer.id} ('Spring runners') on 2025-03-12 12:15 "
        f"(Europe/Madrid), for event {refused.event_id}: cooldown — this offer went to the "
        "member 15 min ago; its cooldown is 1 h"
    )


def test_why_names_a_missing_member_or_offer(db: sqlite_utils.Database) -> None:
    ana, offer = make_member(db), make_offer(db)
    with pytest.raises(UnknownSubject, match="there is no member with id 999"):
        why(db, 999, offer.id or 0)
    with pytest.raises(UnknownSubject, match="there is no offer with id 999"):
        why(db, ana.id, 999)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59, "59 s"),
        (90, "1 min 30 s"),
        (3600, "1 h"),
        (86400, "1 day"),
        (180000, "2 days 2 h"),
    ],
)
def test_describe_duration(seconds: int, text: str) -> None:
    assert describe_duration(seconds) == text


def test_a_friend_note_neither_breaks_nor_counts_towards_the_offer_cooldown(
    db: sqlite_utils.Database,
) -> None:
    """Regression: the latest "sent" decision being a friend note (no offer) crashed the worker
    for that member's every event, and with it the demo."""
    ana, ben = make_member(db), make_member(db, "Ben")
    offer = make_offer(db)
    with db.conn:
        db.conn.execute(
            """INSERT INTO decisions (ts, member_id, offer_id, friend_id, outcome, reason)
               VALUES (?, ?, NULL, ?, 'sent', 'Ben is here')""",
            (to_iso(NOW - timedelta(minutes=1)), ana.id, ben.id),
        )
    assert outcomes(run(db, ana, [offer], NOW, global_cooldown=600)) == ["sent"]
