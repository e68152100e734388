"""The demo store's floor plan: six 8 m x 8 m zones and one sensor in the middle of each.

Used by ``make demo``, the simulator, the tests and the benchmark, so they all walk the same shop::

    y=16 +----------+----------+----------+
         | Checkout |  Women   |   Men    |
    y=8  +----------+----------+----------+
         | Entrance |  Shoes   |  Denim   |
    y=0  +---[door]-+----------+----------+
         x=0        8          16         24

The door is in the Entrance's south wall; shoppers come from (and go back to) just outside it.
"""

from __future__ import annotations

import sqlite_utils

from presence.zones import DEFAULT_RSSI_AT_1M, FloorPlan, Point, Sensor, Zone, seed_floorplan

ZONE_SIZE_M = 8.0  # a typical department of a mid-size fashion store
DOOR: Point = (4.0, -1.0)  # one metre outside the entrance, where the sim's shoppers appear

# (name, column, row, colour): column and row count zones from the door's corner.
_LAYOUT: tuple[tuple[str, int, int, str], ...] = (
    ("Entrance", 0, 0, "#0a6e5c"),
    ("Shoes", 1, 0, "#b5542b"),
    ("Denim", 2, 0, "#2b4fb5"),
    ("Checkout", 0, 1, "#6b6b6b"),
    ("Women", 1, 1, "#a02b8f"),
    ("Men", 2, 1, "#2b8fa0"),
)

ZONE_NAMES: tuple[str, ...] = tuple(name for name, *_ in _LAYOUT)


def _square(column: int, row: int) -> tuple[Point, ...]:
    x0, y0 = column * ZONE_SIZE_M, row * ZONE_SIZE_M
    x1, y1 = x0 + ZONE_SIZE_M, y0 + ZONE_SIZE_M
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


DEMO_ZONES: tuple[tuple[str, tuple[Point, ...], str], ...] = tuple(
    (name, _square(column, row), colour) for name, column, row, colour in _LAYOUT
)

# (sensor id, kind, x, y, rssi_at_1m): each in the middle of its zone, ceiling-mounted.
DEMO_SENSORS: tuple[tuple[str, str, float, float, float], ...] = tuple(
    (
        f"sim-{name.lower()}",
        "sim",
        (column + 0.5) * ZONE_SIZE_M,
        (row + 0.5) * ZONE_SIZE_M,
        DEFAULT_RSSI_AT_1M,
    )
    for name, column, row, _ in _LAYOUT
)


def seed_demo_floorplan(db: sqlite_utils.Database) -> FloorPlan:
    """Put the demo zones, sensors and floor plan picture in the database (those missing only)."""
    from presence.floorplan_demo_picture import seed_demo_plan_image  # it imports this module

    plan = seed_floorplan(db, DEMO_ZONES, DEMO_SENSORS)
    seed_demo_plan_image(db)
    return plan


def demo_floorplan() -> FloorPlan:
    """The demo plan without a database (zone ids 1..6 in layout order), for the simulator."""
    zones = {
        number: Zone(number, name, polygon, colour)
        for number, (name, polygon, colour) in enumerate(DEMO_ZONES, start=1)
    }
    sensors: dict[str, Sensor] = {}
    for number, (sensor_id, kind, x, y, rssi_at_1m) in enumerate(DEMO_SENSORS, start=1):
        sensors[sensor_id] = Sensor(sensor_id, kind, x, y, number, rssi_at_1m)
    return FloorPlan(zones, sensors)
