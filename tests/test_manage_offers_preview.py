"""The offer page's preview, audience check and backtest (the form itself: test_manage_offers.py).

The preview's prices are ``offers.pricing``'s worked example: 80.00 at 25 % off is 60.00; a gold
member (5 %) with one of the two product tags among her interests (2.5 %) pays 55.50.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from instore import audit, members
from instore.clock import to_iso, utcnow
from offers.audience import AUDIENCE_ATTRIBUTES
from offers.model import list_offers
from portal.manage.offers import ATTRIBUTE_HINTS
from portal.manage.offers_units import format_duration, parse_duration, parse_money
from tests.conftest import PASSWORD, ConsoleActions
from tests.manage_offers_helpers import (  # noqa: F401 - the two *_fixture are fixtures
    BASE_FORM,
    config_fixture,
    error_under,
    manager_fixture,
    post_offer,
    shopper,
    zone_ids,
)


# -- preview -------------------------------------------------------------------------------------
def test_preview_shows_the_personal_price_of_a_sample_member(
    client: FlaskClient, db: sqlite_utils.Database, manager: members.Member
) -> None:
    # 80.00, 25 % off = 60.00; gold 5 % + 1 of 2 tags among her interests 2.5 % = 7.5 % off
    # -> 55.50 (offers.pricing's own worked example).
    ana = shopper(db, "Ana", tier="gold", interests=("running", "yoga"))
    shopper(db, "Bo")
    page = client.get("/manage/offers/new").get_data(as_text=True)
    assert f'<option value="{ana.id}">Ana (gold; running, yoga)</option>' in page
    assert page.index("Ana (gold") < page.index("Bo (member)")  # interests first
    response = post_offer(client, action="preview", preview_member=str(ana.id))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<span id="preview-price">Your price: €55.50</span>' in html
    assert '<s id="preview-was">was €80.00</s>' in html
    assert '<h3 id="preview-title">25% off trail shoes</h3>' in html
    assert list_offers(db) == []  # a preview saves nothing
    for nobody in ("0", "999999999999999999999999", "x", ""):
        anyone = post_offer(client, action="preview", preview_member=nobody)
        assert "Your price: €60.00" in anyone.get_data(as_text=True)


def test_preview_json_follows_the_fields(
    client: FlaskClient, db: sqlite_utils.Database, manager: members.Member
) -> None:
    ana = shopper(db, "Ana", tier="gold", interests=("running",))
    data = {**BASE_FORM, "preview_member": str(ana.id), "product_tags": "running"}
    answer = client.post("/manage/offers/preview.json", data=data)
    assert answer.status_code == 200
    card = answer.get_json()["card"]
    # 60.00 - (5 % gold + 5 % all tags matched) = 54.00
    assert card["price"] == "Your price: €54.00" and card["was"] == "was €80.00"
    assert card["title"] == "25% off trail shoes" and card["body"] == "Show this at the till."
    variants = {**data, "variants": "only | Just for you | Come in |"}
    card = client.post("/manage/offers/preview.json", data=variants).get_json()["card"]
    assert (card["title"], card["variant"]) == ("Just for you", "only")
    points = {**data, "benefit_kind": "points", "benefit_value": "50"}
    card = client.post("/manage/offers/preview.json", data=points).get_json()["card"]
    assert card["price"] is None and "points" in card["note"]
    bad = client.post("/manage/offers/preview.json", data={**data, "benefit_value": "200"})
    assert bad.status_code == 200  # the check worked; its answer is "not yet"
    assert bad.get_json() == {
        "ok": False,
        "errors": [
            "Benefit value: benefit_value for percent_off must be between 1 and 100, not 200"
        ],
    }


# -- audience check ------------------------------------------------------------------------------
def test_audience_check(client: FlaskClient, manager: members.Member) -> None:
    url = "/manage/offers/audience.json"
    good = client.post(url, json={"audience": 'tier == "gold" and visits >= 2'})
    assert good.status_code == 200 and good.get_json()["ok"] is True
    assert client.post(url, json={"audience": "  "}).get_json()["message"] == "Every member."
    bad = client.post(url, json={"audience": 'consents["markting"]'})
    assert bad.status_code == 200
    assert bad.get_json() == {
        "ok": False,
        "message": "audience: unknown consent 'markting' at position 11; "
        "consents are location, marketing, friend_visibility",
    }
    too_long = client.post(url, json={"audience": "is_new or " * 200 + "is_new"}).get_json()
    assert too_long == {"ok": False, "message": "Keep the audience under 1000 characters."}
    assert client.post(url, json={"audience": 3}).status_code == 400
    assert client.post(url, data="not json").status_code == 400


def test_every_audience_attribute_is_explained() -> None:
    assert set(ATTRIBUTE_HINTS) == set(AUDIENCE_ATTRIBUTES)


def test_json_endpoints_need_the_csrf_header(
    app: Flask, db: sqlite_utils.Database, console: ConsoleActions
) -> None:
    """With CSRF on (the real app): the token from the page's meta tag, sent as a header."""
    client = app.test_client()
    members.create_member(
        db,
        display_name="M",
        password="correct horse battery",
        email="m@example.com",
        role="manager",
    )
    page = client.get("/manage/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    client.post(
        "/manage/signin",
        data={
            "identifier": "m@example.com",
            "password": PASSWORD,
            "csrf_token": token.group(1),
        },
    )
    page = client.get("/manage/offers/new").get_data(as_text=True)
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert meta
    url = "/manage/offers/audience.json"
    assert client.post(url, json={"audience": "is_new"}).status_code == 400
    answer = client.post(url, json={"audience": "is_new"}, headers={"X-CSRFToken": meta.group(1)})
    assert answer.status_code == 200 and answer.get_json()["ok"] is True


# -- backtest ------------------------------------------------------------------------------------
def record_zone_enter(
    db: sqlite_utils.Database, at: datetime, member: members.Member | None, zone_id: int
) -> None:
    """A zone_enter event as presence writes it (observation time in the payload)."""
    payload = {
        "member_id": member.id if member else None,
        "zone_id": zone_id,
        "zone": "Shoes",
        "device": "m:x" if member else "h:anon",
        "ts": to_iso(at),
    }
    db.conn.execute(
        "INSERT INTO events (ts, kind, payload) VALUES (?, ?, ?)",
        (to_iso(at + timedelta(seconds=3)), "zone_enter", json.dumps(payload)),
    )


def test_backtest_on_last_weeks_history(
    client: FlaskClient, db: sqlite_utils.Database, manager: members.Member
) -> None:
    """Ana gets it twice (an hour apart, past the 15 min global cooldown), Ben said no to
    marketing, an anonymous phone is not a member, and a visit to Denim is another zone."""
    ana = shopper(db, "Ana", tier="gold", interests=("running", "yoga"))
    ben = shopper(db, "Ben", marketing=False)
    shoes, denim = zone_ids(db)["Shoes"], zone_ids(db)["Denim"]
    yesterday = utcnow() - timedelta(days=1)
    record_zone_enter(db, yesterday, ana, shoes)
    record_zone_enter(db, yesterday + timedelta(hours=1), ana, shoes)
    record_zone_enter(db, yesterday + timedelta(minutes=5), ben, shoes)
    record_zone_enter(db, yesterday + timedelta(minutes=6), None, shoes)
    record_zone_enter(db, yesterday + timedelta(minutes=7), ana, denim)
    record_zone_enter(db, utcnow() - timedelta(days=20), ana, shoes)  # before the week
    start = (utcnow() - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    response = post_offer(client, action="backtest", valid_from=start, valid_to="2099-01-01T00:00")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<dd id="bt-members">1</dd>' in html and '<dd id="bt-sends">2</dd>' in html
    assert re.search(r'id="bt-sent">.*?<td class="num">2</td>', html)
    assert re.search(r'id="bt-no_consent">.*?<td class="num">1</td>', html)
    assert "5 events read" not in html and ">5 (1 not members, 1 did not match" in html
    # Ana's personal price 55.50 -> 24.50 off each send, if both were redeemed.
    assert "€49.00" in html
    assert list_offers(db) == [] and audit.entries(db) == []


def test_backtest_of_an_empty_week_says_so(
    client: FlaskClient, db: sqlite_utils.Database, manager: members.Member
) -> None:
    response = post_offer(client, action="backtest")
    assert response.status_code == 200
    assert "No recorded events in the last week" in response.get_data(as_text=True)


def test_backtest_of_a_bad_offer_shows_the_form_errors(
    client: FlaskClient, manager: members.Member
) -> None:
    response = post_offer(client, action="backtest", audience="visits > 'five'")
    assert response.status_code == 400
    assert "audience:" in error_under(response.get_data(as_text=True), "audience")


# -- units ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("4h", 14_400), ("7d", 604_800), ("1d 12h", 129_600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(("text", "cents"), [("79.90", 7990), ("79,9", 7990), ("5", 500)])
def test_money(text: str, cents: int) -> None:
    assert parse_money(text) == cents


@pytest.mark.parametrize("text", ["", "1.234", "1,234.50", "-3", "€5", "4 x"])
def test_money_and_durations_refuse_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_money(text)
    if text not in ("-3",):
        with pytest.raises(ValueError):
            parse_duration(text or "x")
