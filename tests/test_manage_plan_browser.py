"""The floor plan editor in a real headless Chromium against ``instore portal``: upload a plan,
draw a zone by clicking its corners, reshape it by dragging, place a sensor, draw a scale line.

Positions are checked in metres: the plan's SVG is scaled to the page, so a click at a fraction of
its box is that fraction of the plan's frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlite_utils

from instore import members
from presence.floorplan import get_plan_image
from presence.zones import get_sensor, list_zones
from tests.browser import (
    BROWSER_TESTS,
    browser_fixture,
    database_fixture,
    laptop_page_fixture,
    portal_fixture,
    shot,
    sign_in_to_console,
)
from tests.live_portal import LivePortal
from tests.manage_plan_helpers import click_plan, upload_plan_picture
from tests.plan_images import png

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = BROWSER_TESTS
PASSWORD = "correct horse battery"
# The uploaded picture: 600 x 400 px at the default 5 cm a pixel is a 30 m x 20 m frame.
PLAN_M = (30.0, 20.0)
# A click lands within a CSS pixel; on a ~800 px wide plan of 30 m that is under 5 cm.
TOLERANCE_M = 0.1

browser = browser_fixture()
portal = portal_fixture()
db = database_fixture()
laptop = laptop_page_fixture()


@pytest.fixture
def page(laptop: Page, portal: LivePortal, db: sqlite_utils.Database) -> Page:
    """A manager signed in to the console's floor plan page on a laptop."""
    members.create_member(
        db, display_name="Morgan", password=PASSWORD, email="m@example.com", role="manager"
    )
    sign_in_to_console(laptop, portal, "m@example.com", PASSWORD, "/manage/plan")
    return laptop


def test_a_manager_uploads_a_plan_draws_and_reshapes_a_zone(
    page: Page, db: sqlite_utils.Database
) -> None:
    upload_plan_picture(page, png(600, 400))
    assert page.locator("#plan-status").is_visible()

    page.click("#new-zone")
    corners = [(0.1, 0.1), (0.5, 0.1), (0.5, 0.6), (0.1, 0.6)]
    for fx, fy in corners:
        click_plan(page, fx, fy)
    assert page.locator("svg.plan .handle").count() == 4
    page.fill("#zone-name", "Shoes")
    page.click("#save-zone")
    page.wait_for_selector('polygon.zone[data-zone-name="Shoes"]')
    (zone,) = list_zones(db)
    assert zone.name == "Shoes"
    for (x, y), (fx, fy) in zip(zone.polygon, corners, strict=True):
        assert x == pytest.approx(fx * PLAN_M[0], abs=TOLERANCE_M)
        assert y == pytest.approx(fy * PLAN_M[1], abs=TOLERANCE_M)

    # Select it, drag its third corner out, rename it and save.
    click_plan(page, 0.3, 0.3)
    assert page.input_value("#zone-name") == "Shoes"
    handle = page.locator("svg.plan .handle").nth(2).bounding_box()
    box = page.locator("svg.plan").bounding_box()
    assert handle is not None and box is not None
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.8, steps=5)
    page.mouse.up()
    page.fill("#zone-name", "Sneakers")
    shot(page, "manage-plan-editing")
    page.click("#save-zone")
    page.wait_for_selector('polygon.zone[data-zone-name="Sneakers"]')
    (zone,) = list_zones(db)
    assert len(zone.polygon) == 4
    assert zone.polygon[2] == pytest.approx((0.7 * 30, 0.8 * 20), abs=TOLERANCE_M)
    assert zone.polygon[0] == pytest.approx((3.0, 2.0), abs=TOLERANCE_M)


def test_a_manager_places_a_sensor_and_sets_the_scale(
    page: Page, db: sqlite_utils.Database
) -> None:
    upload_plan_picture(page, png(600, 400))

    page.click("#place-sensor")
    click_plan(page, 0.25, 0.5)
    page.fill("#sensor-id", "wlan1")
    page.select_option("#sensor-kind", "ble")
    page.click("#save-sensor")
    page.wait_for_selector('circle.sensor[data-sensor-id="wlan1"]')
    sensor = get_sensor(db, "wlan1")
    assert sensor.kind == "ble"
    assert (sensor.x, sensor.y) == pytest.approx((7.5, 10.0), abs=TOLERANCE_M)

    # A line across half the picture's width (300 px) said to be 12 m: 4 cm a pixel.
    page.click("#draw-scale")
    click_plan(page, 0.25, 0.9)
    click_plan(page, 0.75, 0.9)
    page.fill("#scale-length", "12")
    page.click("#save-scale")
    page.wait_for_selector("#scale-now")
    image = get_plan_image(db)
    assert image is not None
    assert image.metres_per_px == pytest.approx(0.04, rel=0.01)
    shot(page, "manage-plan-scaled")


def test_the_demo_plan_shows_its_picture_under_its_zones(
    page: Page, db: sqlite_utils.Database
) -> None:
    from presence.floorplan_demo import seed_demo_floorplan

    seed_demo_floorplan(db)
    with page.expect_response(lambda r: "/manage/plan-image" in r.url) as picture:
        page.reload()
    assert picture.value.status == 200
    assert picture.value.headers["content-type"].startswith("image/svg+xml")
    assert page.locator("svg.plan polygon.zone").count() == 6
    # The picture's box and the zones' frame coincide: 24 m x 16 m from the origin.
    image_box = page.locator("svg.plan image.plan-picture").bounding_box()
    plan_box = page.locator("svg.plan").bounding_box()
    assert image_box is not None and plan_box is not None
    assert image_box["width"] == pytest.approx(plan_box["width"] - 2, abs=2)  # less the border
    shot(page, "manage-plan-demo")
