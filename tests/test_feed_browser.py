"""The store page's live feed in a real headless Chromium against ``instore portal``.

A member signs in through the real pages; this process then commits notifications straight into
the portal's database, as the offers worker does, and the page must show them within 2 s without
a reload, built from text (never markup), and record that they were seen. Screenshots go to
``tests/artifacts/``.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pytest
import sqlite_utils

from instore import members
from offers.codes import new_code
from offers.notifications import get_notification
from tests.browser import (
    BROWSER_TESTS,
    PHONE_SCREEN,
    PHONE_WIDTH,
    browser_fixture,
    database_fixture,
    page_errors,
    phone_page_fixture,
    portal_fixture,
    shot,
    wait_until_true,
)
from tests.feed_helpers import DEADLINE_SECONDS, friend_note, offer
from tests.live_portal import LivePortal

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = BROWSER_TESTS

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)
expect = sync_api.expect

# A store page loads over a crowded store WiFi: HTML, CSS and scripts stay under this.
PAGE_BUDGET_BYTES = 50 * 1024
PASSWORD = "correct horse battery"
HOSTILE_TITLE = '<img src=x id="injected">Boots & "Co"'


browser = browser_fixture()
portal = portal_fixture()
db = database_fixture()  # this process's seat: it commits notifications as the offers worker does
page = phone_page_fixture()


def sign_in_and_open_store(page: Page, portal: LivePortal) -> None:
    """Sign in through the real form, accept the WiFi terms, then open the store page."""
    page.goto(f"{portal.url}/signin")
    page.get_by_label("Email or loyalty number").fill("ana@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Sign in")).click()
    expect(page).to_have_url(re.compile(r"/consents"))
    page.get_by_label(re.compile("accept the WiFi terms")).check()
    page.get_by_role("button", name=re.compile("go online")).click()
    expect(page).to_have_url(re.compile(r"/online"))
    page.get_by_role("link", name=re.compile("store page")).click()
    expect(page).to_have_url(f"{portal.url}/store")


def wait_until_opened(db: sqlite_utils.Database, notification_id: int) -> bool:
    """Poll the database with a short deadline for the page's "opened" POST to land."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        stored = get_notification(db, notification_id)
        if stored is not None and stored.opened_at is not None:
            return True
        time.sleep(0.05)
    return False


def test_new_notifications_appear_live(
    page: Page, portal: LivePortal, db: sqlite_utils.Database
) -> None:
    ana = members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@example.com")
    problems = page_errors(page)
    earlier = offer(db, ana.id, "Yesterday's scarf")
    sign_in_and_open_store(page, portal)

    # Rendered by the server; store.js connects after it and says so.
    expect(page.locator(f"#n-{earlier} h3")).to_have_text("Yesterday's scarf")
    expect(page.locator("#feed-status")).to_have_text("live")

    code = new_code("S001")
    committed = time.monotonic()
    live_id = offer(db, ana.id, HOSTILE_TITLE, code=code, price_cents=5550)
    item = page.locator(f"#n-{live_id}")
    expect(item).to_be_visible(timeout=DEADLINE_SECONDS * 1000)
    shown_after = time.monotonic() - committed
    print(f"\nlive offer on the page {shown_after * 1000:.0f} ms after its commit")

    # Newest first, built from text: the title's markup is shown, not run.
    assert page.locator("#notifications > li").first.get_attribute("id") == f"n-{live_id}"
    expect(item.locator("h3")).to_have_text(HOSTILE_TITLE)
    assert page.locator("#injected").count() == 0
    expect(item.locator(".price")).to_contain_text("Your price: €55.50")
    expect(item.locator("code")).to_have_text(code)
    qr = item.locator("img.qr")
    expect(qr).to_have_attribute("alt", f"QR code for {code}")
    wait_until_true(page, "img => img.complete && img.naturalWidth > 0", qr.element_handle())
    expect(item.locator(".expires")).to_contain_text("Valid until")

    # On screen while the page is visible: store.js records the open.
    assert wait_until_opened(db, live_id), "the shown notification was not marked opened"

    note_id = friend_note(db, ana.id, "Bea")
    expect(page.locator(f"#n-{note_id}")).to_have_text(
        "Bea is here — in Shoes", timeout=DEADLINE_SECONDS * 1000
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    shot(page, "feed-store-live")
    assert not problems, problems


def test_store_page_is_small_and_works_without_javascript(
    browser: Browser, portal: LivePortal, db: sqlite_utils.Database
) -> None:
    """No script: the server's list is the whole feed. The HTML, CSS and scripts fit 50 KB."""
    ana = members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@example.com")
    for number in range(5):
        offer(db, ana.id, f"Offer {number} with a rather long name that has to wrap on a phone")
    friend_note(db, ana.id, "Bea")
    context = browser.new_context(viewport=PHONE_SCREEN, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in_and_open_store(page, portal)
        expect(page.locator("#notifications > li")).to_have_count(6)
        expect(page.locator("#notifications > li").first).to_have_text("Bea is here — in Shoes")
        expect(page.locator("#feed-status")).to_be_hidden()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
        shot(page, "feed-store-no-javascript")
        total = 0
        for path in ("/store", "/static/portal.css", "/static/store.js", "/static/push.js"):
            response = context.request.get(f"{portal.url}{path}")
            assert response.status == 200, path
            total += len(response.body())
        assert total < PAGE_BUDGET_BYTES, f"{total} bytes"
    finally:
        context.close()
