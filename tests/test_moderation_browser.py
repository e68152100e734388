"""Staff moderate a flagged comment, end to end in a real headless Chromium against the real
``instore portal``.

Ana's comment on a public board has two reports already (Ben's and Cam's, filed as the report
page files them); Dee opens the board on her phone and reports it with the "Report" link beside
the comment, which is the third report and hides it. Sam, staff, signs in to the console on a
laptop, opens the review queue, sees the comment with its reasons and notes, and rejects it with a
reason. The comment's status and the moderation record are checked in the database; no page may
log a JavaScript error.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
import sqlite_utils

from community import moderation
from instore.clock import utcnow
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
from tests.live_portal import LivePortal
from tests.moderation_helpers import (
    PASSWORD,
    actions,
    make_board,
    make_comment,
    make_member,
    status_of,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = BROWSER_TESTS

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)
expect = sync_api.expect

HOSTILE_NOTE = 'Insults <img src=x id="injected-note"> everyone'
COMMENT = "Anyone who wears this is an idiot"
REASON = "Insulting other members"

browser = browser_fixture()
portal = portal_fixture()
db = database_fixture()
page = phone_page_fixture()
laptop = laptop_page_fixture()


def test_staff_moderate_a_flagged_comment(
    page: Page, laptop: Page, portal: LivePortal, db: sqlite_utils.Database
) -> None:
    ana = make_member(db, "Ana")
    reporters = [make_member(db, name) for name in ("Ben", "Cam", "Dee")]
    sam = make_member(db, "Sam", role="staff")
    board = make_board(db, ana.id, "Festival looks")
    comment = make_comment(db, board, ana.id, COMMENT)
    for who, reason in zip(reporters[:2], ("offensive", "harassment"), strict=True):
        moderation.flag_item(db, who.id, "comment", comment, reason, "", utcnow(), 3)
    db.conn.commit()

    # Dee reports it on her phone: the third report hides it.
    problems = page_errors(page)
    page.goto(f"{portal.url}/signin")
    page.get_by_label("Email or loyalty number").fill("dee@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Sign in")).click()
    expect(page).to_have_url(re.compile(r"/consents"))
    page.goto(f"{portal.url}/boards/{board}")
    page.locator(f"#c-{comment}").get_by_role("link", name="Report").click()
    expect(page).to_have_url(f"{portal.url}/report/comment/{comment}")
    expect(page.locator("blockquote.reported")).to_have_text(COMMENT)
    page.get_by_label("Offensive").check()
    page.get_by_label(re.compile("Anything a moderator should know")).fill(HOSTILE_NOTE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    shot(page, "moderation-report")
    page.get_by_role("button", name="Send the report").click()
    # Back on the board (where the report started), with the thanks; the comment is gone from it.
    expect(page).to_have_url(f"{portal.url}/boards/{board}")
    expect(page.locator(".notice")).to_have_text("Thank you. A moderator will look at it.")
    expect(page.locator(f"#c-{comment}")).to_have_count(0)
    assert status_of(db, "comment", comment) == "hidden"
    assert not problems, problems

    # Sam opens the queue on the laptop and sees the comment with its reasons.
    sign_in_to_console(laptop, portal, sam.email or "", PASSWORD, "/manage/moderation")
    entry = laptop.locator(f"#queue-comment-{comment}")
    expect(entry).to_be_visible()
    expect(entry.locator(".moderated-text")).to_have_text(COMMENT)
    expect(entry.locator(".counts")).to_contain_text("3 reports from members")
    expect(entry.locator(".reasons")).to_contain_text("Offensive")
    expect(entry.locator(".reasons")).to_contain_text("Harassment or bullying")
    expect(entry.locator(".flag-note")).to_have_text(HOSTILE_NOTE)
    assert laptop.locator("#injected-note").count() == 0
    expect(entry.locator(".badge")).to_have_text("Hidden after reports — you can edit it")
    shot(laptop, "moderation-queue")

    entry.get_by_label("Reason (the member is told)").fill(REASON)
    entry.get_by_role("button", name="Reject").click()
    expect(laptop.locator(".notice")).to_have_text("Rejected.")
    expect(laptop.locator("#queue-empty")).to_be_visible()
    shot(laptop, "moderation-decided")

    assert status_of(db, "comment", comment) == "rejected"
    row = actions(db)[-1]
    assert (row["action"], row["moderator_id"], row["reason"]) == ("reject", sam.id, REASON)
    assert (row["item_kind"], row["item_id"], row["member_id"]) == ("comment", comment, ana.id)
    open_flags = db.conn.execute("SELECT COUNT(*) FROM flags WHERE resolved_at IS NULL")
    assert open_flags.fetchone()[0] == 0
