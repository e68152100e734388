"""The console's "Why not?" page: the engine's own sentences for one member, for staff."""

from __future__ import annotations

import sqlite_utils
from flask.testing import FlaskClient
from markupsafe import escape

from community import friends as community
from offers.decide import why
from tests.conftest import ConsoleActions
from tests.live_store_helpers import decide, live_offer, shopper


def test_staff_read_why_a_member_got_or_missed_each_offer(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    console.signin("staff")
    ana = shopper(db, "Ana", location=True)
    ben = shopper(db, "Ben", location=True)
    shoes = live_offer(db, "Shoe week")
    never = live_offer(db, "Coats <b>sale</b>")
    decide(db, ana.id, "cooldown", "at most one push per member every 15 min", offer_id=shoes)
    community.befriend(db, ana.id, ben.id)
    community.accept_friend(db, ben.id, ana.id)
    decide(db, ana.id, "ghost_mode", "Ben is in ghost mode", friend_id=ben.id)

    page = client.get(f"/manage/why/?member={ana.loyalty_number}&offer={never}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Shoe week" in text and "at most one push per member every 15 min" in text
    assert str(escape(why(db, ana.id, never))) in text  # never considered: said so
    assert "Coats &lt;b&gt;sale&lt;/b&gt;" in text  # escaped
    assert "Friend note about Ben" in text and "ghost mode" in text


def test_unknown_member_is_a_400_with_a_sentence(
    client: FlaskClient, console: ConsoleActions
) -> None:
    console.signin("staff")
    page = client.get("/manage/why/?member=nobody@example.com")
    assert page.status_code == 400
    assert "no member with that email" in page.get_data(as_text=True)
    assert client.get("/manage/why/?member=" + "9" * 400).status_code == 400
    assert client.get("/manage/why/?member=1&offer=" + "9" * 40).status_code == 200  # ignored


def test_why_is_for_staff_not_shoppers(client: FlaskClient, console: ConsoleActions) -> None:
    console.create("shopper", "ana@example.com")
    client.post("/manage/signin", data={"identifier": "ana@example.com", "password": "x" * 9})
    assert client.get("/manage/why/").status_code == 302
