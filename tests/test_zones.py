"""The floor plan: what a manager may draw, what point lies where, and the database round trip."""

from __future__ import annotations

import pytest
import sqlite_utils

from presence import zones
from presence.floorplan_demo import DEMO_SENSORS, ZONE_NAMES, demo_floorplan, seed_demo_floorplan
from presence.zones import InvalidSensor, InvalidZone

SQUARE = [(0, 0), (4, 0), (4, 4), (0, 4)]
# An L-shaped zone (a corner department): the notch at x > 2, y > 2 is not part of it.
ELL = [(0, 0), (4, 0), (4, 2), (2, 2), (2, 4), (0, 4)]


@pytest.mark.parametrize(
    ("name", "polygon", "message"),
    [
        ("Shoes", [(0, 0), (1, 1)], "zone 'Shoes' has fewer than 3 points"),
        ("Shoes", [(0, 0), (1, 0), (0, 0)], "zone 'Shoes' has fewer than 3 points"),
        (
            "Shoes",
            [(0, 0), (4, 4), (4, 0), (0, 4)],  # a bow tie: corners not in outline order
            "zone 'Shoes' crosses itself (edges 1 and 3); "
            "list its corners in order around the outline",
        ),
        (
            "Denim",
            [(0, 0), (1, 1), (2, 2)],
            "zone 'Denim' has no area; its corners lie on one line",
        ),
        ("Denim", [(0, 0), (3, 0), (3, 0), (0, 3)], "zone 'Denim' repeats the corner (3.0, 0.0)"),
        ("Men", [(0, 0), ("a", 1), (1, 1)], "zone 'Men': corner 2 is not a pair of numbers"),
        ("Men", [(0, 0), (1, float("nan")), (1, 1)], "zone 'Men': corner 2 is not a finite"),
        ("   ", SQUARE, "a zone needs a name"),
    ],
)
def test_invalid_zones_say_what_to_fix(
    db: sqlite_utils.Database, name: str, polygon: list[tuple[float, float]], message: str
) -> None:
    with pytest.raises(InvalidZone) as excinfo:
        zones.create_zone(db, name, polygon)
    assert str(excinfo.value).startswith(message)
    assert zones.list_zones(db) == []


def test_a_spike_that_doubles_back_is_a_crossing() -> None:
    with pytest.raises(InvalidZone, match="crosses itself"):
        zones.validate_polygon("Spike", [(0, 0), (4, 0), (4, 4), (4, 6), (4, 2), (0, 4)])


def test_bad_colour_and_duplicate_name(db: sqlite_utils.Database) -> None:
    with pytest.raises(InvalidZone, match="colour 'green' is not like #0a6e5c"):
        zones.create_zone(db, "Shoes", SQUARE, colour="green")
    zones.create_zone(db, "Shoes", SQUARE)
    with pytest.raises(InvalidZone, match="a zone named 'Shoes' already exists"):
        zones.create_zone(db, "shoes", [(5, 0), (9, 0), (9, 4)])


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((1, 1), True),
        ((3, 1), True),  # the L's foot
        ((1, 3), True),  # the L's leg
        ((3, 3), False),  # the notch
        ((5, 1), False),
        ((-0.1, 2), False),
        ((2, -0.1), False),
    ],
)
def test_point_in_polygon_handles_concave_zones(point: tuple[float, float], inside: bool) -> None:
    assert zones.point_in_polygon(*point, ELL) is inside


def test_a_point_on_a_shared_border_belongs_to_exactly_one_zone() -> None:
    plan = demo_floorplan()
    for point in [(8.0, 4.0), (8.0, 8.0), (12.0, 8.0), (4.0, 8.0)]:
        owners = [z.name for z in plan.zones.values() if z.contains(*point)]
        assert len(owners) == 1, (point, owners)


def test_zone_round_trip(db: sqlite_utils.Database) -> None:
    shoes = zones.create_zone(db, " Shoes ", [*SQUARE, (0, 0)], colour="#B5542B")
    assert shoes.name == "Shoes"  # whitespace tidied
    assert shoes.polygon == ((0, 0), (4, 0), (4, 4), (0, 4))  # closing corner dropped
    assert shoes.colour == "#b5542b"
    assert zones.list_zones(db) == [shoes]
    assert zones.get_zone(db, shoes.id) == shoes

    moved = zones.update_zone(db, shoes.id, name="Sneakers", polygon=ELL)
    assert zones.get_zone(db, shoes.id) == moved
    assert moved.polygon == tuple((float(x), float(y)) for x, y in ELL)
    assert moved.colour == "#b5542b"  # not given, unchanged

    other = zones.create_zone(db, "Denim", [(5, 0), (9, 0), (9, 4), (5, 4)])
    with pytest.raises(InvalidZone, match="a zone named 'Denim' already exists"):
        zones.update_zone(db, shoes.id, name="denim")
    zones.update_zone(db, other.id, name="Denim")  # its own name is not a duplicate

    zones.delete_zone(db, shoes.id)
    assert [z.name for z in zones.list_zones(db)] == ["Denim"]
    with pytest.raises(InvalidZone, match=f"there is no zone with id {shoes.id}"):
        zones.delete_zone(db, shoes.id)


def test_sensor_round_trip_and_zone_from_position(db: sqlite_utils.Database) -> None:
    shoes = zones.create_zone(db, "Shoes", SQUARE)
    denim = zones.create_zone(db, "Denim", [(4, 0), (8, 0), (8, 4), (4, 4)])
    inside = zones.create_sensor(db, "wlan1", "wifi", 2, 2)
    assert inside.zone_id == shoes.id  # placed inside Shoes' outline
    outside = zones.create_sensor(db, "hci0", "ble", 20, 20, rssi_at_1m=-59)
    assert outside.zone_id is None
    pinned = zones.create_sensor(db, "wlan2", "wifi", 2, 2, zone_id=denim.id)
    assert pinned.zone_id == denim.id  # an explicit zone wins over the position

    assert zones.list_sensors(db) == [outside, inside, pinned]
    moved = zones.update_sensor(db, "wlan1", x=6.0)
    assert (moved.x, moved.y, moved.zone_id) == (6.0, 2.0, denim.id)
    recalibrated = zones.update_sensor(db, "wlan1", rssi_at_1m=-50)
    assert (recalibrated.zone_id, recalibrated.rssi_at_1m) == (denim.id, -50.0)

    zones.delete_zone(db, denim.id)  # the sensors stay, without a zone
    assert zones.get_sensor(db, "wlan1").zone_id is None
    zones.delete_sensor(db, "wlan2")
    assert [s.id for s in zones.list_sensors(db)] == ["hci0", "wlan1"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sensor_id": " "}, "a sensor needs an id"),
        ({"kind": "lora"}, "sensor 'wlan1': kind 'lora' is not one of wifi, ble, sim"),
        ({"rssi_at_1m": 10}, "sensor 'wlan1': rssi_at_1m 10 dBm is not between -100 and 0"),
        ({"zone_id": 99}, "sensor 'wlan1': there is no zone with id 99"),
        ({"x": float("inf")}, "sensor 'wlan1': position must be finite"),
    ],
)
def test_invalid_sensors_say_what_to_fix(
    db: sqlite_utils.Database, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"sensor_id": "wlan1", "kind": "wifi", "x": 1.0, "y": 1.0}
    args.update(kwargs)
    with pytest.raises(InvalidSensor) as excinfo:
        zones.create_sensor(db, **args)  # type: ignore[arg-type]
    assert str(excinfo.value).startswith(message)


def test_duplicate_sensor_id(db: sqlite_utils.Database) -> None:
    zones.create_sensor(db, "wlan1", "wifi", 1, 1)
    with pytest.raises(InvalidSensor, match="a sensor with id 'wlan1' already exists"):
        zones.create_sensor(db, "wlan1", "ble", 2, 2)


def test_demo_floorplan_seeds_once(db: sqlite_utils.Database) -> None:
    plan = seed_demo_floorplan(db)
    assert [z.name for z in plan.zones.values()] == list(ZONE_NAMES)
    assert len(plan.sensors) == len(DEMO_SENSORS)
    for sensor in plan.sensors.values():
        zone = plan.zones[sensor.zone_id] if sensor.zone_id else None
        assert zone is not None and zone.contains(sensor.x, sensor.y)
        assert sensor.id == f"sim-{zone.name.lower()}"
    again = seed_demo_floorplan(db)  # idempotent: make demo runs it on every start
    assert again == plan
    assert zones.load_floorplan(db) == plan
    assert plan.zone_named("denim") is plan.zones[plan.zone_named("Denim").id]  # type: ignore[union-attr]
