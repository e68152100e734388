"""The console end to end in a real Chromium, as a manager uses it on a laptop.

A manager signs in, uploads a floor-plan picture, draws a zone by clicking its corners, creates an
offer for that zone and goes live with it, then watches the live store while a simulated shopper
walks in: the zone's count goes up and the offer appears under "Notifications sent", sent by the
real offers worker (``python -m instore offers run``) from the zone event. This process plays the
presence daemon at its seam — it commits the ``presence_state`` row and the ``zone_enter`` event
the way ``presence/track.py`` does — because this machine has no radios. A shopper who opens
``/manage`` gets the 403 page. Screenshots of each step go to ``tests/artifacts/``.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import sqlite_utils

from instore import events, members
from instore.clock import to_iso, utcnow
from tests.browser import (
    BROWSER_TESTS,
    browser_fixture,
    database_fixture,
    laptop_page_fixture,
    phone_page_fixture,
    portal_fixture,
    shot,
    sign_in_to_console,
)
from tests.live_portal import LivePortal
from tests.live_store_helpers import place
from tests.manage_plan_helpers import click_plan, upload_plan_picture
from tests.plan_images import png
from tests.test_offers_decide import make_member
from tests.test_offers_e2e import PIPELINE_SETTINGS, offers_worker  # noqa: F401 - a fixture

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = BROWSER_TESTS

browser = browser_fixture()
portal = portal_fixture(PIPELINE_SETTINGS)
db = database_fixture()
page = phone_page_fixture()
laptop = laptop_page_fixture()

MANAGER_EMAIL = "morgan@example.com"
MANAGER_PASSWORD = "manage-the-store"
# The picture: 600 x 400 px; at the default scale a zone drawn on it is a few metres wide.
PICTURE_PX = (600, 400)
# Where the manager clicks, as fractions of the drawn plan: a rectangle in its upper left.
CORNERS = ((0.15, 0.2), (0.45, 0.2), (0.45, 0.6), (0.15, 0.6))
LIVE_DEADLINE_MS = 5_000  # the goal is < 1 s; the test allows for a loaded CI machine


def draw_zone(page: Page, name: str) -> None:
    page.click("#new-zone")
    for fx, fy in CORNERS:
        click_plan(page, fx, fy)
    page.fill("#zone-name", name)
    page.click("#save-zone")
    page.wait_for_selector(f"svg.plan polygon.zone[data-zone-name='{name}']")


def create_live_offer(page: Page, portal: LivePortal, zone: str) -> None:
    page.goto(f"{portal.url}/manage/offers")
    page.click("#new-offer")
    page.fill("#name", "Shoe week")
    page.fill("#title", "20% off running shoes")
    page.select_option("#benefit_kind", "percent_off")
    page.fill("#benefit_value", "20")
    page.fill("#product", "RS-1 running shoe")
    page.fill("#base_price", "90.00")
    page.select_option("#zones", label=zone)
    page.select_option("#trigger_kind", "zone_enter")
    page.click("#save-live")
    page.wait_for_url(lambda url: "/new" not in url)


def zone_id(db: sqlite_utils.Database, name: str) -> int:
    row = db.conn.execute("SELECT id FROM zones WHERE name = ?", (name,)).fetchone()
    assert row is not None, f"zone {name!r} was not saved"
    return int(row[0])


def shopper_enters(db: sqlite_utils.Database, member: members.Member, zone: str, zid: int) -> None:
    """What the presence daemon commits when a member's phone is placed in a zone."""
    device = f"m:{member.id}"
    place(db, device, zid, member_id=member.id, entered_ago=0)
    payload = {
        "device": device,
        "member_id": member.id,
        "zone": zone,
        "zone_id": zid,
        "ts": to_iso(utcnow()),
    }
    with db.conn:
        events.append(db, "zone_enter", payload)


def test_manager_draws_a_zone_makes_an_offer_and_sees_it_sent_live(
    laptop: Page,
    portal: LivePortal,
    db: sqlite_utils.Database,
    offers_worker: object,  # noqa: F811 - the fixture imported above
) -> None:
    members.create_member(
        db, display_name="Morgan", password=MANAGER_PASSWORD, email=MANAGER_EMAIL, role="manager"
    )
    ana = make_member(db, "Ana")  # location and marketing consent
    page = laptop

    sign_in_to_console(page, portal, MANAGER_EMAIL, MANAGER_PASSWORD, "/manage/live")
    page.goto(f"{portal.url}/manage/plan")
    upload_plan_picture(page, png(*PICTURE_PX))
    draw_zone(page, "Shoes")
    shot(page, "console-1-zone-drawn")
    zid = zone_id(db, "Shoes")
    polygon = db.conn.execute("SELECT polygon FROM zones WHERE id = ?", (zid,)).fetchone()[0]
    assert polygon.count("[") == 5  # four corners: [[x, y], [x, y], [x, y], [x, y]]

    create_live_offer(page, portal, "Shoes")
    shot(page, "console-2-offer-live")
    offer = db.conn.execute("SELECT status, zones FROM offers WHERE name = 'Shoe week'").fetchone()
    assert offer is not None and offer[0] == "live" and offer[1] == f"[{zid}]"

    page.goto(f"{portal.url}/manage/live")
    # A locator, not wait_for_function: a string expression is evaluated with eval, which the
    # page's CSP refuses once Playwright has to poll for it.
    page.locator("#live-status", has_text=re.compile(r"^Live")).wait_for()
    started = time.monotonic()
    shopper_enters(db, ana, "Shoes", zid)
    count = page.locator(f"[data-zone-count='{zid}']")
    count.filter(has_text="1").wait_for(timeout=LIVE_DEADLINE_MS)
    occupancy_seconds = time.monotonic() - started
    sent = page.locator("#live-sent tr", has_text="20% off running shoes")
    sent.wait_for(timeout=LIVE_DEADLINE_MS)
    assert "Ana" in sent.inner_text()
    shot(page, "console-3-live-store")
    print(f"live store: occupancy after {occupancy_seconds * 1000:.0f} ms")
    # The same notification went to Ana's feed: one row, from the worker's decision.
    rows = db.conn.execute(
        "SELECT title FROM notifications WHERE member_id = ?", (ana.id,)
    ).fetchall()
    assert rows == [("20% off running shoes",)]


def test_a_shopper_is_refused_the_console(
    page: Page, portal: LivePortal, db: sqlite_utils.Database
) -> None:
    make_member(db, "Ben")
    page.goto(f"{portal.url}/signin")
    page.fill("#identifier", "Ben@example.com")
    page.fill("#password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    response = page.goto(f"{portal.url}/manage/")
    assert response is not None and response.status == 403
    assert "shopper" in page.inner_text("main")
    shot(page, "console-4-shopper-refused")
