"""The console's live store page: occupancy per zone, consenting members present, and the
engine's recent sends and refusals (the stream is in ``test_manage_live_stream``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlite_utils
from flask.testing import FlaskClient

from instore import members
from instore.clock import to_iso, utcnow
from offers.activity import recent_notifications_sent, recent_refusals
from offers.notifications import create_notification
from portal.manage import live
from presence.floorplan_demo import DEMO_ZONES, seed_demo_floorplan
from presence.occupancy import (
    live_occupancy,
    present_members_with_location_consent,
    store_stale_after,
    zone_stale_after,
)
from tests.conftest import ConsoleActions
from tests.live_store_helpers import PASSWORD, decide, live_offer, place, seed_zones, shopper


@pytest.fixture
def zones(db: sqlite_utils.Database) -> dict[str, int]:
    return seed_zones(db)


# --- occupancy ---------------------------------------------------------------------------------


def test_occupancy_counts_devices_per_zone_and_leaves_out_stale_rows(
    db: sqlite_utils.Database, zones: dict[str, int]
) -> None:
    shoes, till = zones["Shoes"], zones["Checkout"]
    place(db, "h:a", shoes)
    place(db, "h:b", shoes, seen_ago=40)
    place(db, "h:c", till)
    place(db, "h:between", None)
    # Its zone is older than a running tracker keeps one, but it may still be in the shop.
    place(db, "h:lost-zone", shoes, seen_ago=zone_stale_after() + 5)
    # A tracker that stopped left this one behind: neither in a zone nor in the shop.
    place(db, "h:left-behind", till, seen_ago=store_stale_after() + 5)

    occupancy = live_occupancy(db, utcnow())

    assert occupancy.zones == {shoes: 2, till: 1}
    assert occupancy.in_store == 5


def test_page_shows_a_number_per_zone_and_the_total(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, zones: dict[str, int]
) -> None:
    console.signin("staff")
    for n in range(3):
        place(db, f"h:{n}", zones["Shoes"])
    place(db, "h:stale", zones["Shoes"], seen_ago=store_stale_after() + 1)

    html = client.get("/manage/live").get_data(as_text=True)

    assert f'data-zone-count="{zones["Shoes"]}" data-intensity="0.512">3<' in html
    assert f'data-zone-count="{zones["Checkout"]}" data-intensity="0.08">0<' in html
    assert f'<text class="occupancy" data-zone-id="{zones["Shoes"]}"' in html
    assert '<span id="live-in-store">3</span>' in html


def test_intensity_is_relative_to_the_busiest_zone_with_a_floor() -> None:
    assert live.intensity(0, 0) == live.MIN_FILL_OPACITY
    assert live.intensity(1, 1) < live.intensity(5, 5) == live.MAX_FILL_OPACITY
    assert live.intensity(20, 40) == pytest.approx(
        (live.MIN_FILL_OPACITY + live.MAX_FILL_OPACITY) / 2, abs=0.001
    )


def test_page_draws_the_demo_plan_with_its_picture(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    with db.conn:
        seed_demo_floorplan(db)
    console.signin("staff")
    html = client.get("/manage/live").get_data(as_text=True)
    assert '<svg class="plan" id="live-plan-svg"' in html
    assert '<image class="plan-picture"' in html
    assert html.count('<polygon class="zone"') == len(DEMO_ZONES)
    assert html.count('<text class="occupancy"') == len(DEMO_ZONES)
    assert '<circle class="sensor"' not in html  # the live view hides the radios


# --- members present -----------------------------------------------------------------------------


def test_only_members_who_consent_to_location_are_listed(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, zones: dict[str, int]
) -> None:
    ana = shopper(db, "Ana", location=True, marketing=False)
    bea = shopper(db, "Bea", location=False, marketing=True)
    cai = shopper(db, "Cai")  # never asked
    dov = shopper(db, "Dov", location=True)
    members.record_consents(db, dov.id, {"location": False}, "v1")  # withdrawn since
    for member in (ana, bea, cai, dov):
        place(db, f"m:{member.id}", zones["Shoes"], member_id=member.id)
    place(db, "h:anonymous", zones["Shoes"])

    listed = present_members_with_location_consent(db, utcnow())
    assert [m.display_name for m in listed] == ["Ana"]
    assert listed[0].zone_name == "Shoes"

    console.signin("staff")
    html = client.get("/manage/live").get_data(as_text=True)
    assert "<td>Ana</td><td>Shoes</td>" in html
    for hidden in ("Bea", "Cai", "Dov"):
        assert hidden not in html
    assert '<span id="live-in-store">5</span>' in html  # everyone's device still counts

    members.record_consents(db, ana.id, {"location": False}, "v1")
    assert present_members_with_location_consent(db, utcnow()) == []
    html = client.get("/manage/live").get_data(as_text=True)
    assert "Ana" not in html
    assert "No consenting members in the shop right now." in html


def test_a_member_with_two_devices_is_listed_once_where_last_heard(
    db: sqlite_utils.Database, zones: dict[str, int]
) -> None:
    ana = shopper(db, "Ana", location=True)
    place(db, "m:phone", zones["Shoes"], member_id=ana.id, seen_ago=20)
    place(db, "m:watch", zones["Checkout"], member_id=ana.id, seen_ago=2)
    place(db, "m:old", zones["Denim"], member_id=ana.id, seen_ago=store_stale_after() + 1)

    listed = present_members_with_location_consent(db, utcnow())

    assert [(m.display_name, m.zone_name) for m in listed] == [("Ana", "Checkout")]


def test_a_crowd_of_members_is_listed_up_to_a_limit(
    client: FlaskClient,
    console: ConsoleActions,
    db: sqlite_utils.Database,
    zones: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "MEMBERS_LISTED", 2)
    for n in range(3):
        member = shopper(db, f"Shopper {n}", location=True)
        place(db, f"m:{member.id}", zones["Shoes"], member_id=member.id, entered_ago=60 - n)
    console.signin("staff")
    html = client.get("/manage/live").get_data(as_text=True)
    assert "Shopper 2" in html and "Shopper 1" in html and "Shopper 0" not in html
    assert "…and 1 more." in html


def test_since_is_shown_on_the_store_clock() -> None:
    moment = datetime(2030, 1, 2, 9, 30, tzinfo=live.ZoneInfo("UTC"))
    madrid = live.ZoneInfo("Europe/Madrid")
    assert live.local_time(to_iso(moment), madrid, moment) == "10:30"
    assert live.local_time(to_iso(moment), madrid, moment + timedelta(days=1)) == (
        "2030-01-02 10:30"
    )


# --- notifications and refusals ----------------------------------------------------------------


def test_recent_sends_and_the_reasons_others_were_not_sent(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    ana = shopper(db, "Ana", location=True, marketing=True)
    bea = shopper(db, "Bea", location=True, marketing=False)
    cai = shopper(db, "Cai", location=True, marketing=True)
    offer_id = live_offer(db)
    sent = decide(db, ana.id, "sent", "the only offer that passed every check", offer_id=offer_id)
    decide(
        db, bea.id, "no_consent", "no marketing consent: an offer is a marketing message",
        offer_id=offer_id,
    )  # fmt: skip
    decide(db, cai.id, "ghost_mode", "Ana is in ghost mode", friend_id=ana.id)
    with db.conn:
        offer_note = create_notification(
            db, member_id=ana.id, kind="offer", title="10% off trainers", body="",
            now=utcnow(), decision_id=sent, offer_id=offer_id,
        )  # fmt: skip
        create_notification(
            db, member_id=cai.id, kind="friend", title="Ana is here", body="", now=utcnow()
        )
        db.conn.execute("UPDATE notifications SET opened_at = ts WHERE id = ?", (offer_note,))

    assert [(n.kind, n.member_name, n.opened) for n in recent_notifications_sent(db)] == [
        ("friend", "Cai", False),
        ("offer", "Ana", True),
    ]
    refusals = recent_refusals(db)
    assert [(r.outcome, r.member_name, r.subject) for r in refusals] == [
        ("ghost_mode", "Cai", "Ana"),
        ("no_consent", "Bea", "Shoe week"),
    ]

    console.signin("staff")
    html = client.get("/manage/live").get_data(as_text=True)
    assert "<td>Ana</td><td>10% off trainers</td>" in html
    assert '<span class="badge ok">opened</span>' in html
    assert "<td>Friend note</td><td>Cai</td><td>Ana is here</td>" in html
    assert "no marketing consent: an offer is a marketing message" in html
    assert '<td>Offer: Shoe week</td><td><span class="badge warn">No consent</span>' in html
    assert "Ana is in ghost mode" in html
    assert "the only offer that passed every check" not in html  # a send is not a refusal


def test_refusals_are_newest_first_and_limited(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = shopper(db, "Ana")
    offer_id = live_offer(db)
    ids = [decide(db, ana.id, "capped", f"cap {n}", offer_id=offer_id) for n in range(5)]
    assert [r.id for r in recent_refusals(db, limit=3)] == ids[::-1][:3]


def test_names_and_titles_are_escaped(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, zones: dict[str, int]
) -> None:
    mallory = shopper(db, "<script>alert(1)</script>", location=True)
    place(db, "m:x", zones["Shoes"], member_id=mallory.id)
    console.signin("staff")
    html = client.get("/manage/live").get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- the page and who may see it -----------------------------------------------------------------


def test_page_works_without_script_and_keeps_to_the_csp(
    client: FlaskClient, console: ConsoleActions, zones: dict[str, int]
) -> None:
    console.signin("staff")
    response = client.get("/manage/live")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'href="/manage/live">Refresh</a>' in html
    assert 'data-stream-url="/manage/live/stream"' in html
    assert '<script src="/static/manage/live.js" defer></script>' in html
    assert "style=" not in html and " onclick" not in html
    assert html.count("<script") == 1  # the file above; nothing inline


@pytest.mark.parametrize("path", ["/manage/live", "/manage/live/stream"])
def test_staff_and_up_only(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, path: str
) -> None:
    signed_out = client.get(path)
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"].startswith(f"/manage/signin?next={path}")

    members.create_member(db, display_name="Sam", password=PASSWORD, email="sam@example.com")
    client.post("/signin", data={"identifier": "sam@example.com", "password": PASSWORD})
    assert client.get(path).status_code == 403
    client.post("/signout")

    console.signin("staff")
    if path.endswith("/stream"):
        response = client.head(path)  # headers only: no stream is left running
        assert response.mimetype == "text/event-stream"
    else:
        response = client.get(path)
    assert response.status_code == 200
