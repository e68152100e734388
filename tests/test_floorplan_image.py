"""The floor plan picture and scale in presence: sniffing, fitting, scale lines, sensor health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlite_utils

from instore.clock import to_iso, utcnow
from presence.daemon import PresenceDaemon
from presence.floorplan import (
    DEFAULT_METRES_PER_PX,
    SENSOR_OK_SECONDS,
    InvalidScale,
    PlanView,
    get_plan_image,
    plan_view,
    scale_from_line,
    sensor_health,
    set_scale,
    store_plan_image,
)
from presence.floorplan_demo import DEMO_ZONES, seed_demo_floorplan
from presence.floorplan_demo_picture import DEMO_METRES_PER_PX, demo_plan_svg
from presence.floorplan_image import (
    JPEG,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PX,
    PNG,
    SVG,
    InvalidPlanImage,
    inspect_image,
)
from presence.identity import Identifier
from presence.observation import WIFI_PROBE, Observation
from presence.track import Tracker
from presence.zones import Zone, create_sensor, create_zone, load_floorplan
from tests.plan_images import JPEG_1X1, jpeg_header, png, svg

# -- what the bytes are ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(3, 2), (PNG, 3, 2)),
        (JPEG_1X1, (JPEG, 1, 1)),
        (jpeg_header(640, 480), (JPEG, 640, 480)),
        (jpeg_header(1200, 900, sof=0xC2), (JPEG, 1200, 900)),
        (svg("800", "600"), (SVG, 800, 600)),
        (svg("800px", "600px", "0 0 10 10"), (SVG, 800, 600)),
        (svg("254mm", "127mm"), (SVG, 960, 480)),  # 96 px per inch
        (svg(None, None, "0 0 24 16"), (SVG, 24, 16)),
        (svg("100%", "100%", "0,0,1200,800"), (SVG, 1200, 800)),  # relative: the viewBox
        (svg("600", None, "0 0 24 16"), (SVG, 600, 400)),  # the other side by proportion
        (b"\xef\xbb\xbf<?xml version='1.0'?>\n" + svg(), (SVG, 800, 600)),
    ],
)
def test_type_and_size_come_from_the_bytes(data: bytes, expected: tuple[str, int, int]) -> None:
    info = inspect_image(data)
    assert (info.mime, info.width_px, info.height_px) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"GIF89a\x01\x00\x01\x00", "not a PNG, JPEG or SVG"),
        (b"%PDF-1.7 a floor plan", "not a PNG, JPEG or SVG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "damaged"),
        (
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xda",
            "damaged",
        ),
        (png(MAX_IMAGE_PX + 1, 1), "largest allowed side"),
        (jpeg_header(0, 10), "no pixels"),
        (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg/>', "DOCTYPE"),
        (
            b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/'
            b'DTD/svg11.dtd"><svg xmlns="http://www.w3.org/2000/svg" width="5" height="5"/>',
            "DOCTYPE",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="5"', "not well-formed"),
        (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>', "not an SVG"),
        (b"<svg/>", "neither a width and height nor a viewBox"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5">'
            b"<script>alert(1)</script></svg>",
            "script",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5" onload="x()"/>', "script"),
    ],
)
def test_anything_else_is_refused_with_a_sentence(data: bytes, message: str) -> None:
    with pytest.raises(InvalidPlanImage, match=message):
        inspect_image(data)


def test_a_picture_over_the_byte_limit_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidPlanImage, match="largest allowed is 5 MB"):
        inspect_image(png(2, 2) + b"\0" * MAX_IMAGE_BYTES)


# -- the scale ---------------------------------------------------------------------------------


def test_a_first_picture_gets_the_default_scale_when_nothing_is_drawn(
    db: sqlite_utils.Database,
) -> None:
    image = store_plan_image(db, png(600, 400))
    assert image.metres_per_px == DEFAULT_METRES_PER_PX
    assert (image.width_m, image.height_m) == pytest.approx((30.0, 20.0))


def test_a_first_picture_is_fitted_over_the_zones_already_drawn(db: sqlite_utils.Database) -> None:
    create_zone(db, "Shoes", [(0, 0), (30, 0), (30, 10), (0, 10)])
    image = store_plan_image(db, png(600, 400))
    # 30 m over 600 px wide, and 10 m over 400 px high: the wider ratio covers both.
    assert image.metres_per_px == pytest.approx(0.05)
    create_zone(db, "Back", [(0, 10), (30, 10), (30, 40), (0, 40)])
    db.conn.execute("DELETE FROM floorplan")
    assert store_plan_image(db, png(600, 400)).metres_per_px == pytest.approx(0.1)


def test_replacing_the_picture_keeps_its_width_in_metres(db: sqlite_utils.Database) -> None:
    store_plan_image(db, png(600, 400))
    set_scale(db, 0.04)  # 24 m wide
    sharper = store_plan_image(db, png(1200, 800))
    assert sharper.width_m == pytest.approx(24.0)
    assert sharper.metres_per_px == pytest.approx(0.02)
    assert store_plan_image(db, png(1200, 800)).metres_per_px == pytest.approx(0.02)


def test_scale_from_a_line_is_length_over_pixels() -> None:
    assert scale_from_line((0, 0), (300, 400), 25.0) == 0.05
    assert scale_from_line((10.5, 3), (10.5, 203), 4.0) == 0.02


@pytest.mark.parametrize(
    ("start", "end", "length", "message"),
    [
        ((0, 0), (100, 0), 0.0, "more than 0"),
        ((0, 0), (100, 0), -3.0, "more than 0"),
        ((0, 0), (100, 0), float("nan"), "more than 0"),
        ((5, 5), (5, 5), 3.0, "same point"),
        ((0, 0), (100, 0), 5000.0, "outside"),  # 50 m a pixel
        ((0, 0), (100_000, 0), 1.0, "outside"),  # 10 µm a pixel
        ((0, float("inf")), (1, 1), 1.0, "positions"),
    ],
)
def test_bad_scale_lines_are_refused(
    start: tuple[float, float], end: tuple[float, float], length: float, message: str
) -> None:
    with pytest.raises(InvalidScale, match=message):
        scale_from_line(start, end, length)


def test_setting_a_scale_needs_a_picture(db: sqlite_utils.Database) -> None:
    with pytest.raises(InvalidScale, match="Upload"):
        set_scale(db, 0.05)


# -- the view ----------------------------------------------------------------------------------


def test_zone_labels_sit_at_the_outline_centroid() -> None:
    square = Zone(1, "A", ((0, 0), (8, 0), (8, 8), (0, 8)))
    assert PlanView.label_at(square) == pytest.approx((4, 4))
    # An L: the area centroid, pulled towards the larger arm, not the corners' mean.
    ell = Zone(2, "L", ((0, 0), (6, 0), (6, 2), (2, 2), (2, 6), (0, 6)))
    assert PlanView.label_at(ell) == pytest.approx((2.2, 2.2))
    assert PlanView.points(square) == "0,0 8,0 8,8 0,8"


# -- the demo store's picture ------------------------------------------------------------------


def test_the_demo_picture_lies_exactly_under_the_demo_zones(db: sqlite_utils.Database) -> None:
    seed_demo_floorplan(db)
    image = get_plan_image(db)
    assert image is not None and image.mime == SVG
    assert (image.width_px, image.height_px) == (960, 640)
    assert image.metres_per_px == DEMO_METRES_PER_PX
    view = plan_view(db)
    assert (view.min_x, view.min_y, view.width_m, view.height_m) == (0, 0, 24, 16)
    corners = [p for _, polygon, _ in DEMO_ZONES for p in polygon]
    assert max(x for x, _ in corners) == image.width_m
    assert max(y for _, y in corners) == image.height_m
    text = demo_plan_svg().decode()
    assert all(name.upper() in text for name, _, _ in DEMO_ZONES) and "door" in text


def test_seeding_again_keeps_a_picture_the_manager_uploaded(db: sqlite_utils.Database) -> None:
    seed_demo_floorplan(db)
    mine = store_plan_image(db, png(480, 320))
    seed_demo_floorplan(db)
    assert get_plan_image(db) == mine


# -- sensor health -----------------------------------------------------------------------------


def test_sensor_health_is_ok_stale_or_never(db: sqlite_utils.Database) -> None:
    now = utcnow()
    for sensor_id, seen in (
        ("fresh", now - timedelta(seconds=SENSOR_OK_SECONDS)),
        ("stale", now - timedelta(seconds=SENSOR_OK_SECONDS + 1)),
        ("silent", None),
    ):
        create_sensor(db, sensor_id, "wifi", 1, 1)
        if seen is not None:
            db.conn.execute(
                "UPDATE sensors SET last_seen_at = ? WHERE id = ?", (to_iso(seen), sensor_id)
            )
    health = sensor_health(db, now)
    assert {key: h.status for key, h in health.items()} == {
        "fresh": "ok",
        "stale": "stale",
        "silent": "never",
    }
    assert health["fresh"].seconds_ago == SENSOR_OK_SECONDS
    assert health["silent"].last_seen_at is None


class OneProbe:
    """A source that reports one probe request from sensor ``wifi-1`` and ends."""

    name = "one-probe"

    async def stream(self) -> AsyncIterator[Observation]:
        yield Observation(time.time(), "wifi-1", WIFI_PROBE, "a4:5e:60:00:00:01", -50, {})


def test_the_presence_daemon_stamps_the_sensors_it_hears(db: sqlite_utils.Database) -> None:
    create_sensor(db, "wifi-1", "wifi", 2, 2)
    create_sensor(db, "wifi-2", "wifi", 9, 9)
    daemon = PresenceDaemon(
        db, [OneProbe()], Identifier(db), Tracker(db, load_floorplan(db)), 10, 30
    )

    async def run() -> None:
        await daemon.run(asyncio.Event(), stop_when_sources_end=True)

    before = utcnow()
    asyncio.run(run())
    health = sensor_health(db)
    assert health["wifi-1"].status == "ok"
    assert health["wifi-1"].last_seen_at is not None
    assert health["wifi-1"].last_seen_at >= to_iso(before)
    assert health["wifi-2"].status == "never"
