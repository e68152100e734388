"""Old links to comments in a real headless Chromium against ``instore portal``.

A busy board shows its newest ``COMMENT_THREADS_SHOWN`` threads. A link saved before newer
comments pushed a comment to an earlier page (``/boards/<id>#c-<old>``, say in a notification
from last month) must still land on it: the page's script finds the anchor missing and asks
for ``?around=<old>``, once. Then the member pages forward and back, with no JavaScript error.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import sqlite_utils

from community.board_comments import COMMENT_THREADS_SHOWN
from instore import members
from instore.clock import to_iso, utcnow
from tests.browser import (
    BROWSER_TESTS,
    browser_fixture,
    database_fixture,
    page_errors,
    phone_page_fixture,
    portal_fixture,
    shot,
)
from tests.live_portal import LivePortal
from tests.test_boards_browser import PASSWORD, fits_the_phone, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = BROWSER_TESTS

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)
expect = sync_api.expect

browser = browser_fixture()
portal = portal_fixture()
db = database_fixture()
page = phone_page_fixture()


def busy_board(db: sqlite_utils.Database, owner: int, writer: int, threads: int) -> list[int]:
    """A public board of ``owner`` with ``threads`` comments by ``writer``; their ids, oldest
    first."""
    written = to_iso(utcnow() - timedelta(days=1))
    cursor = db.conn.execute(
        """INSERT INTO boards (owner_id, title, audience, created_at, updated_at)
           VALUES (?, 'Busy board', 'public', ?, ?)""",
        (owner, written, written),
    )
    board = int(cursor.lastrowid or 0)
    ids = []
    for n in range(threads):
        cursor = db.conn.execute(
            """INSERT INTO board_comments (board_id, author_id, body, created_at)
               VALUES (?, ?, ?, ?)""",
            (board, writer, f"Comment number {n}", written),
        )
        ids.append(int(cursor.lastrowid or 0))
    db.conn.commit()
    return [board, *ids]


def test_an_old_link_to_a_comment_finds_its_page(
    page: Page, portal: LivePortal, db: sqlite_utils.Database
) -> None:
    ana = members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@example.com")
    ben = members.create_member(db, display_name="Ben", password=PASSWORD, email="ben@example.com")
    board, *comments = busy_board(db, ana.id, ben.id, COMMENT_THREADS_SHOWN + 5)
    oldest = comments[0]
    problems = page_errors(page)
    sign_in(page, portal, "ana@example.com")

    board_url = f"{portal.url}/boards/{board}"
    page.goto(f"{board_url}#c-{oldest}")
    expect(page).to_have_url(f"{board_url}?around={oldest}#c-{oldest}")
    expect(page.locator(f"#c-{oldest} .comment-body")).to_have_text("Comment number 0")
    expect(page.locator(".comments > .comment")).to_have_count(COMMENT_THREADS_SHOWN)
    fits_the_phone(page)
    shot(page, "boards-old-comment-link")

    # On to the newest comments, and back one page.
    page.get_by_role("link", name="Newer comments").click()
    expect(page.locator(f"#c-{comments[-1]}")).to_be_visible()
    expect(page.locator(".comments > .comment")).to_have_count(5)
    page.get_by_role("link", name="Earlier comments").click()
    expect(page).to_have_url(re.compile(rf"\?before={comments[COMMENT_THREADS_SHOWN]}#comments$"))
    expect(page.locator(f"#c-{oldest}")).to_be_visible()

    # A link to a comment that is gone asks once and stays on the page it got.
    page.goto(f"{board_url}#c-999999")
    expect(page).to_have_url(f"{board_url}?around=999999#c-999999")
    expect(page.locator(f"#c-{comments[-1]}")).to_be_visible()
    page.wait_for_load_state("load")
    expect(page).to_have_url(f"{board_url}?around=999999#c-999999")
    assert not problems, problems
