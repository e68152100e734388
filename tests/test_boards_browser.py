"""A board made and commented on, end to end in a real headless Chromium against ``instore portal``.

Ana builds a board on her phone through the real forms (title, a product found in the catalogue,
a note), then makes it friends-only. Ben, her mutual friend, opens it on his own phone (a second
browser context), looks at where to find it in store, and comments. Ana, with her store page open
in another tab, gets the 'comment' news there live, sees the comment on the board, and the news's
link takes her to it. No page may log a JavaScript error, and nothing may scroll sideways.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
import sqlite_utils

from community import friends
from instore import members
from instore.clock import to_iso, utcnow
from tests.browser import (
    BROWSER_TESTS,
    PHONE,
    PHONE_WIDTH,
    browser_fixture,
    database_fixture,
    fresh_page,
    page_errors,
    phone_page_fixture,
    portal_fixture,
    shot,
)
from tests.feed_helpers import DEADLINE_SECONDS
from tests.live_portal import LivePortal
from tests.test_feed_browser import sign_in_and_open_store

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = BROWSER_TESTS

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)
expect = sync_api.expect

PASSWORD = "correct horse battery"
TITLE = "Autumn weekend"
NOTE = "With the grey coat"
COMMENT = 'Those boots! <img src=x id="injected"> Going to try them on.'

browser = browser_fixture()
portal = portal_fixture()
db = database_fixture()
page = phone_page_fixture()


def fits_the_phone(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH, page.url


def sign_in(page: Page, portal: LivePortal, email: str) -> None:
    """Sign in through the real form (the WiFi terms are left for later: not needed here)."""
    page.goto(f"{portal.url}/signin")
    page.get_by_label("Email or loyalty number").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Sign in")).click()
    expect(page).to_have_url(re.compile(r"/consents"))


def test_a_friend_comments_on_a_friends_only_board(
    page: Page, browser: Browser, portal: LivePortal, db: sqlite_utils.Database
) -> None:
    ana = members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@example.com")
    ben = members.create_member(db, display_name="Ben", password=PASSWORD, email="ben@example.com")
    friends.befriend(db, ana.id, ben.id)
    friends.accept_friend(db, ben.id, ana.id)
    db.conn.execute(
        """INSERT INTO products (sku, name, category, price_cents, zone, updated_at)
           VALUES ('BT-1', 'Red ankle boots', 'shoes', 8900, 'Shoes', ?),
                  ('SC-1', 'Blue scarf', 'accessories', 1900, 'Accessories', ?)""",
        (to_iso(utcnow()), to_iso(utcnow())),
    )
    problems = page_errors(page)

    # Ana: signed in, her store page open in one tab (the live feed), boards in another.
    sign_in_and_open_store(page, portal)
    expect(page.locator("#feed-status")).to_have_text("live")
    boards_tab = page.context.new_page()
    problems += page_errors(boards_tab)
    boards_tab.goto(f"{portal.url}/boards")
    boards_tab.get_by_role("link", name="New board").click()
    boards_tab.get_by_label("Title").fill(TITLE)
    boards_tab.get_by_label("What is it about?").fill("Outfit for the market on Saturday")
    boards_tab.get_by_role("button", name="Create the board").click()
    expect(boards_tab).to_have_url(re.compile(r"/boards/\d+$"))
    board_url = boards_tab.url

    boards_tab.get_by_role("link", name="Add an item").click()
    boards_tab.get_by_label("Find a product").fill("boots")
    boards_tab.get_by_role("button", name="Search").click()
    expect(boards_tab.get_by_label("Blue scarf")).to_have_count(0)
    boards_tab.get_by_label("Red ankle boots").check()
    boards_tab.get_by_label("Your note (optional)").fill(NOTE)
    shot(boards_tab, "boards-add-item")
    boards_tab.get_by_role("button", name="Add to the board").click()
    expect(boards_tab).to_have_url(board_url)
    expect(boards_tab.locator(".board-item .product-name")).to_have_text("Red ankle boots")
    expect(boards_tab.locator(".board-item .board-note")).to_have_text(NOTE)

    boards_tab.get_by_role("link", name="Edit", exact=True).click()
    boards_tab.get_by_label("My friends").check()
    boards_tab.get_by_role("button", name="Save the board").click()
    expect(boards_tab).to_have_url(board_url)
    expect(boards_tab.locator("main > .hint").first).to_contain_text("My friends")
    fits_the_phone(boards_tab)
    shot(boards_tab, "boards-owner-board")

    # Ben, on his own phone: he sees the friends-only board, where to find it, and comments.
    with fresh_page(browser, PHONE) as friend:
        problems += page_errors(friend)
        sign_in(friend, portal, "ben@example.com")
        friend.goto(f"{portal.url}/boards")
        friend.get_by_role("link", name=TITLE).click()
        expect(friend).to_have_url(board_url)
        expect(friend.locator(".board-item .board-note")).to_have_text(NOTE)
        friend.get_by_role("link", name="Shop this board in store").click()
        expect(friend.locator("main h2")).to_have_text(["Shoes"])
        shot(friend, "boards-friend-shop")
        friend.go_back()
        friend.get_by_label("Your comment").fill(COMMENT)
        friend.get_by_role("button", name="Post comment").click()
        expect(friend).to_have_url(re.compile(re.escape(board_url) + r"#c-\d+$"))
        expect(friend.locator(".comment .comment-body")).to_have_text(COMMENT)
        assert friend.locator("#injected").count() == 0
        fits_the_phone(friend)
        shot(friend, "boards-friend-commented")
        comment_anchor = friend.url.rsplit("#", 1)[1]

    # Ana: the news arrives live on her store page, and the comment is on her board.
    card = page.locator("#notifications > li.community")
    expect(card).to_be_visible(timeout=DEADLINE_SECONDS * 1000)
    expect(card.locator("h3")).to_have_text(f"Ben commented on your board “{TITLE}”")
    expect(card.locator(".community-text")).to_have_text(COMMENT)
    assert page.locator("#injected").count() == 0
    fits_the_phone(page)
    shot(page, "boards-store-notification")

    boards_tab.reload()
    expect(boards_tab.locator(f"#{comment_anchor} .comment-body")).to_have_text(COMMENT)
    expect(boards_tab.locator(f"#{comment_anchor} .who strong")).to_have_text("Ben")

    card.get_by_role("link", name="Open").click()
    expect(page).to_have_url(f"{board_url}#{comment_anchor}")
    expect(page.locator(f"#{comment_anchor} .comment-body")).to_have_text(COMMENT)
    assert page.locator("#injected").count() == 0
    shot(page, "boards-owner-sees-comment")
    boards_tab.close()
    assert not problems, problems
