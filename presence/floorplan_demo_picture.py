"""The demo store's floor plan picture: walls, the door, fittings and department names as SVG.

Drawn in metres on the demo zones' own grid (``presence.floorplan_demo``), so at
``DEMO_METRES_PER_PX`` the picture lies exactly under the zones: x to the right, y downwards
from the top-left corner, the Entrance's door in the top wall. Generated, not shipped as a file,
so it follows the layout if the demo's zones change.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import sqlite_utils

from instore.db import transaction
from presence.floorplan import PlanImage, get_plan_image, set_scale, store_plan_image
from presence.floorplan_demo import DEMO_ZONES, DOOR, ZONE_SIZE_M

PX_PER_M = 40  # 2.5 cm a pixel: a 24 m shop is a 960 px picture, sharp on a laptop
DEMO_METRES_PER_PX = 1 / PX_PER_M
DOOR_WIDTH_M = 3.0  # double doors, wide enough for prams and wheelchairs
WALL_M = 0.3  # outer walls, drawn centred on the building's edge
_WALL, _PARTITION, _FITTING, _TEXT = "#3a3f47", "#b9bfc7", "#dfe3e8", "#5b6470"

# Fittings as (x, y, width, height, label) in metres: shelves, rails, the counter.
_FITTINGS: tuple[tuple[float, float, float, float, str], ...] = (
    (9.0, 2.5, 6.0, 0.8, "shoe wall"),
    (9.5, 5.0, 5.0, 0.8, "benches"),
    (17.5, 2.5, 4.5, 0.8, "denim table"),
    (17.5, 5.0, 4.5, 0.8, "denim table"),
    (1.0, 12.5, 5.0, 1.2, "checkout counter"),
    (9.0, 11.0, 6.0, 0.8, "rails"),
    (9.0, 13.5, 6.0, 0.8, "rails"),
    (20.0, 10.0, 3.5, 5.0, "fitting rooms"),
    (16.8, 11.0, 2.6, 0.8, "rails"),
)


def _extent() -> tuple[float, float]:
    xs = [x for _, polygon, _ in DEMO_ZONES for x, _ in polygon]
    ys = [y for _, polygon, _ in DEMO_ZONES for _, y in polygon]
    return max(xs), max(ys)


def demo_plan_svg() -> bytes:
    """The picture, as UTF-8 SVG bytes sized in pixels at ``PX_PER_M``."""
    width_m, height_m = _extent()
    door_left, door_right = DOOR[0] - DOOR_WIDTH_M / 2, DOOR[0] + DOOR_WIDTH_M / 2
    half = WALL_M / 2
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_m * PX_PER_M:g}"'
        f' height="{height_m * PX_PER_M:g}" viewBox="0 0 {width_m:g} {height_m:g}">',
        f'<rect x="0" y="0" width="{width_m:g}" height="{height_m:g}" fill="#ffffff"/>',
    ]
    # Partitions between departments: thin, low shelving runs along the zone edges.
    x = ZONE_SIZE_M
    while x < width_m:
        parts.append(_line(x, 0, x, height_m, _PARTITION, 0.08))
        x += ZONE_SIZE_M
    y = ZONE_SIZE_M
    while y < height_m:
        parts.append(_line(0, y, width_m, y, _PARTITION, 0.08))
        y += ZONE_SIZE_M
    for fx, fy, fw, fh, label in _FITTINGS:
        parts.append(
            f'<rect x="{fx:g}" y="{fy:g}" width="{fw:g}" height="{fh:g}" fill="{_FITTING}"'
            f' stroke="{_PARTITION}" stroke-width="0.05"/>'
        )
        if label:
            parts.append(_text(fx + fw / 2, fy + fh / 2 + 0.15, label, 0.45, "middle"))
    # Outer walls, leaving the door's gap in the top wall.
    parts.append(
        f'<path d="M{door_left:g},0 H0 V{height_m:g} H{width_m:g} V0 H{door_right:g}"'
        f' fill="none" stroke="{_WALL}" stroke-width="{WALL_M:g}"/>'
    )
    # The door leaves, drawn open inwards.
    for hinge, sign in ((door_left, 1), (door_right, -1)):
        leaf_end = hinge + sign * DOOR_WIDTH_M / 2
        parts.append(_line(hinge, half, hinge, half + DOOR_WIDTH_M / 2, _WALL, 0.06))
        parts.append(
            f'<path d="M{hinge:g},{half + DOOR_WIDTH_M / 2:g} A{DOOR_WIDTH_M / 2:g},'
            f'{DOOR_WIDTH_M / 2:g} 0 0 {1 if sign < 0 else 0} {leaf_end:g},{half:g}"'
            f' fill="none" stroke="{_PARTITION}" stroke-width="0.04"/>'
        )
    parts.append(_text(DOOR[0], 1.2 + DOOR_WIDTH_M / 2, "door", 0.5, "middle"))
    # Department names in each zone's top-left corner, clear of the console's zone labels.
    for name, polygon, _ in DEMO_ZONES:
        left, top = min(px for px, _ in polygon), min(py for _, py in polygon)
        parts.append(_text(left + 0.6, top + 1.1, name.upper(), 0.6, "start"))
    parts.append("</svg>")
    return "\n".join(parts).encode()


def _line(x1: float, y1: float, x2: float, y2: float, colour: str, width: float) -> str:
    return (
        f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{colour}"'
        f' stroke-width="{width:g}"/>'
    )


def _text(x: float, y: float, text: str, size: float, anchor: str) -> str:
    return (
        f'<text x="{x:g}" y="{y:g}" font-family="sans-serif" font-size="{size:g}"'
        f' fill="{_TEXT}" text-anchor={quoteattr(anchor)}>{escape(text)}</text>'
    )


def seed_demo_plan_image(db: sqlite_utils.Database) -> PlanImage | None:
    """Store the demo picture at its exact scale unless a picture is already there."""
    with transaction(db):
        if get_plan_image(db) is not None:
            return None
        store_plan_image(db, demo_plan_svg())
        return set_scale(db, DEMO_METRES_PER_PX)
