"""The store page's list of notifications: newest first, escaped, with prices in the store's
currency and the shopper's language, and each offer's redemption code as a QR picture only its
member can fetch. The stream that adds to the list live is tested in ``test_feed.py``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import segno
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from instore import members
from instore.clock import utcnow
from offers.codes import new_code
from portal import feed
from tests.conftest import AuthActions
from tests.feed_helpers import ana_fixture, friend_note, offer  # noqa: F401 - ana is a fixture

# --- QR codes ----------------------------------------------------------------------------------

PATH_STEP = r"([Mmh])(-?\d+(?:\.\d+)?)(?: (-?\d+(?:\.\d+)?))?"


def svg_modules(svg: bytes) -> list[list[bool]]:
    """The dark modules drawn by the SVG's path (segno draws rows of horizontal lines)."""
    root = ET.fromstring(svg)  # noqa: S314 - our own output, in a test
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    _, _, width, height = (int(float(n)) for n in root.attrib["viewBox"].split())
    grid = [[False] * width for _ in range(height)]
    (path,) = [p for p in root.iter("{http://www.w3.org/2000/svg}path") if p.get("stroke")]
    d = path.attrib["d"]
    assert re.fullmatch(f"(?:{PATH_STEP})+", d), d
    x = y = 0.0
    for command, first, second in re.findall(PATH_STEP, d):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            for column in range(int(x), int(x + float(first))):
                grid[int(y)][column] = True
            x += float(first)
    return grid


def test_qr_code_of_own_offer(
    client: FlaskClient, db: sqlite_utils.Database, ana: members.Member
) -> None:
    code = new_code("S001")
    offer(db, ana.id, code=code)
    response = client.get(f"/codes/{code}.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Cache-Control"].startswith("private")
    grid = svg_modules(response.data)
    border = feed.QR_BORDER
    drawn = [row[border:-border] for row in grid[border:-border]]
    # A full QR code (Micro QR is smaller than 21 modules and most scanners ignore it) of the code.
    expected = segno.make_qr(code, error="m")
    assert len(drawn) >= 21
    assert drawn == [[bool(bit) for bit in row] for row in expected.matrix]
    assert not any(any(row) for row in grid[:border]), "the quiet zone is empty"


def test_qr_code_only_for_its_member(
    client: FlaskClient, db: sqlite_utils.Database, auth: AuthActions, ana: members.Member
) -> None:
    bea = auth.create(email="bea@example.com", name="Bea")
    theirs = new_code("S001")
    offer(db, bea.id, code=theirs)
    assert client.get(f"/codes/{theirs}.svg").status_code == 404
    assert client.get(f"/codes/{new_code('S001')}.svg").status_code == 404
    auth.logout()
    mine = new_code("S001")
    offer(db, ana.id, code=mine)
    assert client.get(f"/codes/{mine}.svg").status_code == 404


# --- the store page ----------------------------------------------------------------------------


def test_store_page_lists_notifications_newest_first(
    client: FlaskClient, db: sqlite_utils.Database, ana: members.Member
) -> None:
    code = new_code("S001")
    first = offer(db, ana.id, "Boots <b>half</b>", code=code)
    note = friend_note(db, ana.id, "Bea & Co")
    page = client.get("/store").get_data(as_text=True)

    assert page.index(f'id="n-{note}"') < page.index(f'id="n-{first}"')
    assert "Bea &amp; Co is here — in Shoes" in page
    assert "Boots &lt;b&gt;half&lt;/b&gt;" in page and "<b>half" not in page
    assert "Your price: €55.50" in page and "was €111.00" in page
    assert f"<code>{code}</code>" in page
    assert f'<img class="qr" src="/codes/{code}.svg" alt="QR code for {code}"' in page
    assert '<p class="expires">Valid until' in page
    assert f'data-feed-url="/feed?after={note}"' in page
    assert '<section id="push-panel"' in page and "static/push.js" in page
    assert 'src="/static/store.js"' in page and "<script>" not in page
    assert 'id="feed-empty" class="hint" hidden' in page


def test_store_page_without_notifications(client: FlaskClient, ana: members.Member) -> None:
    page = client.get("/store").get_data(as_text=True)
    assert 'data-feed-url="/feed?after=0"' in page
    assert 'id="feed-empty" class="hint">' in page
    assert "Nothing yet" in page


def test_ended_offer_says_so(
    client: FlaskClient, db: sqlite_utils.Database, ana: members.Member
) -> None:
    offer(db, ana.id, expires_at=utcnow() - timedelta(minutes=1))
    page = client.get("/store").get_data(as_text=True)
    assert '<p class="expires">This offer has ended.</p>' in page
    assert '<p class="expires">Valid until' not in page


@pytest.mark.parametrize(
    ("language", "cents", "shown"),
    [
        ("en", 5550, "€55.50"),
        ("es", 5550, "55,50\xa0€"),
        ("en", 5, "€0.05"),
        ("es", 123456, "1.234,56\xa0€"),
        ("en", None, ""),
    ],
)
def test_money_in_the_store_currency_and_the_shoppers_language(
    app: Flask, language: str, cents: int | None, shown: str
) -> None:
    with app.test_request_context(f"/?lang={language}", headers={"Accept-Language": language}):
        from flask_babel import force_locale

        with force_locale(language):
            assert feed.money(cents) == shown
