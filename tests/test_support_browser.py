"""A support question answered, end to end in a real headless Chromium against ``instore portal``.

A member asks through the real "Ask the store" form on a phone and keeps the store page open;
staff answer from the console's inbox on a laptop; the answer appears on the member's store page
live (the SSE feed, no reload), built from text, and its link opens the conversation.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
import sqlite_utils

from instore import members
from tests.browser import (
    BROWSER_TESTS,
    PHONE_WIDTH,
    browser_fixture,
    database_fixture,
    laptop_page_fixture,
    page_errors,
    phone_page_fixture,
    portal_fixture,
    shot,
    sign_in_to_console,
)
from tests.feed_helpers import DEADLINE_SECONDS
from tests.live_portal import LivePortal
from tests.test_feed_browser import sign_in_and_open_store

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = BROWSER_TESTS

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)
expect = sync_api.expect

PASSWORD = "correct horse battery"
HOSTILE_REPLY = 'Yes! <img src=x id="injected"> Open 10-18 on Sunday.'

browser = browser_fixture()
portal = portal_fixture()
db = database_fixture()
page = phone_page_fixture()
laptop = laptop_page_fixture()


def test_member_sees_the_staff_answer_live(
    page: Page, laptop: Page, portal: LivePortal, db: sqlite_utils.Database
) -> None:
    members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@example.com")
    members.create_member(
        db, display_name="Sam", password=PASSWORD, email="sam@example.com", role="staff"
    )
    problems = page_errors(page)
    sign_in_and_open_store(page, portal)

    page.get_by_role("link", name="Ask the store").click()
    page.get_by_label("What is it about?").fill("Sunday hours")
    page.get_by_label("Your question").fill("Are you open on Sunday?")
    page.get_by_role("button", name="Send my question").click()
    expect(page).to_have_url(re.compile(r"/support/\d+$"))
    thread_url = page.url
    page.goto(f"{portal.url}/store")
    expect(page.locator("#feed-status")).to_have_text("live")

    sign_in_to_console(laptop, portal, "sam@example.com", PASSWORD, "/manage/support")
    laptop.get_by_role("link", name="Sunday hours").click()
    laptop.get_by_label("Reply", exact=True).fill(HOSTILE_REPLY)
    laptop.get_by_role("button", name="Send reply").click()
    expect(laptop.locator(".notice")).to_have_text("Reply sent.")
    shot(laptop, "support-staff-replied")

    card = page.locator("#notifications > li.support")
    expect(card).to_be_visible(timeout=DEADLINE_SECONDS * 1000)
    expect(card.locator("h3")).to_have_text("The store answered: Sunday hours")
    expect(card.locator(".support-text")).to_have_text(HOSTILE_REPLY)
    assert page.locator("#injected").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    shot(page, "support-answer-live")

    card.get_by_role("link", name="Open the conversation").click()
    expect(page).to_have_url(thread_url)
    expect(page.locator(".conversation .staff .body")).to_have_text(HOSTILE_REPLY)
    assert page.locator("#injected").count() == 0
    assert not problems, problems
