"""What the floor plan page's tests share: its address, a signed-in manager, reading back the
page a refused form comes back on, the audit entry a change left, and in Chromium, uploading a
picture and clicking on the drawn plan.

Imported by ``test_manage_plan.py`` and ``test_manage_plan_zones.py`` (the ``manager`` fixture is
imported into each as ``manager_fixture``), and by the console's browser tests.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pytest
import sqlite_utils

from instore import audit
from tests.conftest import ConsoleActions

if TYPE_CHECKING:
    from playwright.sync_api import Page

PAGE = "/manage/plan"
SQUARE = "0, 0; 8, 0; 8, 8; 0, 8"  # an 8 m square zone's corners as the form takes them


@pytest.fixture(name="manager")
def manager_fixture(console: ConsoleActions) -> ConsoleActions:
    """A manager signed in to the console on the test client."""
    console.signin("manager")
    return console


def text(response: Any) -> str:
    """The page as a person reads it (entities such as &#34; turned back into characters)."""
    return html.unescape(str(response.get_data(as_text=True)))


def refused(response: Any, form: str, message: str) -> str:
    """The page a refused form comes back on: HTTP 400 with ``message`` next to form ``form``."""
    assert response.status_code == 400
    page = text(response)
    assert f'id="{form}-error"' in page, page[:500]
    assert message in page
    return page


def last_change(
    db: sqlite_utils.Database, action: str, target: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The states before and after of the newest audit entry, checked to be ``action`` on
    ``target`` (a change of something that was there and still is)."""
    entry = audit.entries(db)[0]
    assert (entry.action, entry.target) == (action, target)
    assert entry.before is not None and entry.after is not None
    return entry.before, entry.after


def upload_plan_picture(page: Page, picture: bytes) -> None:
    """Upload a PNG through the plan page's form and wait until the plan shows it."""
    page.set_input_files(
        "#plan-file", {"name": "plan.png", "mimeType": "image/png", "buffer": picture}
    )
    page.click("#upload-plan")
    page.wait_for_selector("svg.plan image.plan-picture")


def click_plan(page: Page, fx: float, fy: float) -> None:
    """Click the drawn plan at a fraction of its box (the SVG is scaled to the page, so that is
    the same fraction of the plan's frame in metres)."""
    box = page.locator("svg.plan").bounding_box()
    assert box is not None
    page.locator("svg.plan").click(position={"x": box["width"] * fx, "y": box["height"] * fy})
