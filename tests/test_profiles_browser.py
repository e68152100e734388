"""Profiles and the catalogue in a real headless Chromium against ``instore portal``.

A member picks a picture and interests on their phone and sees the picture (served from
``/media``, allowed by the CSP) on the page other members open; a manager imports a catalogue
CSV in the console and finds a product in the list. Hostile names stay text.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import pytest
import sqlite_utils
from PIL import Image

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
from tests.live_portal import LivePortal

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page

pytestmark = BROWSER_TESTS

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)
expect = sync_api.expect

PASSWORD = "correct horse battery"
HOSTILE_NAME = 'Ana <img src=x id="injected">'

browser = browser_fixture()
portal = portal_fixture()
db = database_fixture()
page = phone_page_fixture()
laptop = laptop_page_fixture()


def payload(name: str, mime_type: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": mime_type, "buffer": data}


def photo() -> FilePayload:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), "teal").save(out, "JPEG")
    return payload("me.jpg", "image/jpeg", out.getvalue())


def test_member_sets_picture_and_interests(
    page: Page, portal: LivePortal, db: sqlite_utils.Database
) -> None:
    ana = members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@example.com")
    for sku, category in (("T1", "trail"), ("D1", "denim")):
        db.conn.execute(
            "INSERT INTO products (sku, name, category, updated_at) VALUES (?, ?, ?, 'x')",
            (sku, sku, category),
        )
    problems = page_errors(page)
    page.goto(f"{portal.url}/signin")
    page.get_by_label("Email or loyalty number").fill("ana@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Sign in")).click()
    page.goto(f"{portal.url}/profile")

    page.get_by_label("Upload a new picture").set_input_files(files=[photo()])
    page.get_by_role("button", name="Upload picture").click()
    expect(page.locator(".notice")).to_have_text("Your picture is saved.")
    picture = page.locator(".profile-picture img.avatar")
    expect(picture).to_be_visible()
    assert page.evaluate("document.querySelector('.profile-picture img').naturalWidth") > 0

    page.get_by_label("Your name, as other members see it").fill(HOSTILE_NAME)
    page.get_by_label("About you").fill("Trails at dawn.")
    page.get_by_label("Trail").check()
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator(".notice")).to_have_text("Your profile is saved.")
    expect(page.get_by_label("Trail")).to_be_checked()
    expect(page.get_by_label("Denim")).not_to_be_checked()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    shot(page, "profile-edit")

    page.get_by_role("link", name="See your profile as other members see it").click()
    expect(page.locator("h1")).to_have_text(HOSTILE_NAME)
    expect(page.locator("#member-bio")).to_have_text("Trails at dawn.")
    assert page.locator("#injected").count() == 0
    assert page.evaluate("document.querySelector('img.avatar').naturalWidth") > 0
    shot(page, "profile-public")
    interests = db.conn.execute(
        "SELECT interest FROM member_interests WHERE member_id = ?", (ana.id,)
    ).fetchall()
    assert interests == [("trail",)]
    assert not problems, problems


def test_manager_imports_a_catalogue(
    laptop: Page, portal: LivePortal, db: sqlite_utils.Database
) -> None:
    members.create_member(
        db, display_name="Morgan", password=PASSWORD, email="boss@example.com", role="manager"
    )
    sign_in_to_console(laptop, portal, "boss@example.com", PASSWORD, "/manage/catalogue")
    csv_text = "sku,name,category,price\nTR-1,Trail shoe,trail,80\nDN-1,Jeans,denim,49.90\n"
    laptop.get_by_label(re.compile("CSV file")).set_input_files(
        files=[payload("c.csv", "text/csv", csv_text.encode())]
    )
    laptop.get_by_role("button", name="Import").click()
    expect(laptop.locator(".notice").first).to_contain_text("2 added")
    expect(laptop.locator("#catalogue tbody tr")).to_have_count(2)
    laptop.get_by_label("Category").select_option("denim")
    laptop.get_by_role("button", name="Show").click()
    expect(laptop.locator("#catalogue tbody tr")).to_have_count(1)
    expect(laptop.locator("#catalogue")).to_contain_text("Jeans")
    shot(laptop, "catalogue-console")
