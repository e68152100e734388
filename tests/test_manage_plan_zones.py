"""The floor plan page's zones and sensors: drawing, editing, deleting, bad input, health, audit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlite_utils
from flask.testing import FlaskClient

from instore import audit
from instore.clock import to_iso, utcnow
from presence.floorplan import SENSOR_OK_SECONDS
from presence.zones import Zone, create_sensor, create_zone, get_sensor, list_sensors, list_zones
from tests.manage_plan_helpers import (
    PAGE,
    SQUARE,
    last_change,
    manager_fixture,  # noqa: F401 - a fixture
    refused,
    text,
)

# Every test here is a signed-in manager's.
pytestmark = pytest.mark.usefixtures("manager")


@pytest.fixture
def shoes(db: sqlite_utils.Database) -> Zone:
    """An 8 m square zone named Shoes at the plan's origin, drawn before the test."""
    return create_zone(db, "Shoes", [(0, 0), (8, 0), (8, 8), (0, 8)])


def last_entry(db: sqlite_utils.Database) -> audit.AuditEntry:
    return audit.entries(db)[0]


# -- zones -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "points",
    [SQUARE, "0 0\n8 0\n8 8\n0 8", "[[0, 0], [8, 0], [8, 8], [0, 8]]", "0,0;8,0;8,8;0,8;0,0"],
)
def test_a_manager_draws_a_zone(
    client: FlaskClient, db: sqlite_utils.Database, points: str
) -> None:
    response = client.post(
        f"{PAGE}/zones", data={"name": " Shoes ", "colour": "#B5542B", "points": points}
    )
    assert response.status_code == 302
    (zone,) = list_zones(db)
    assert (zone.name, zone.colour) == ("Shoes", "#b5542b")
    assert zone.polygon == ((0, 0), (8, 0), (8, 8), (0, 8))
    entry = last_entry(db)
    assert (entry.action, entry.target, entry.before) == ("zone.create", f"zone:{zone.id}", None)
    assert entry.after == {
        "id": zone.id,
        "name": "Shoes",
        "colour": "#b5542b",
        "polygon": [[0, 0], [8, 0], [8, 8], [0, 8]],
    }
    assert "Zone “Shoes” added." in text(client.get(PAGE))


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "Hats", "points": "0, 0; 8, 0"}, "fewer than 3 points"),
        ({"name": "Hats", "points": "0, 0; 8, 8; 8, 0; 0, 8"}, "crosses itself"),
        ({"name": "shoes", "points": "20, 0; 28, 0; 28, 8"}, "a zone named 'Shoes' already exists"),
        ({"name": "Hats", "points": SQUARE, "colour": "red"}, "is not like #0a6e5c"),
        ({"name": "Hats", "points": "0, 0; 8, x; 8, 8"}, "Corner 2 (“8 x”) is not two numbers"),
        ({"name": "Hats", "points": "0, 0; 8; 8, 8"}, "Corner 2 (“8”) is not two numbers"),
        ({"name": "Hats", "points": "[[0, 0], [8, 0], 7]"}, "Corner 3 (“7”) is not two numbers"),
        ({"name": "Hats", "points": "[[0, 0"}, "are not a list"),
        ({"name": "Hats", "points": ""}, "Draw the zone on the plan"),
        ({"name": "   ", "points": SQUARE}, "a zone needs a name"),
        ({"points": SQUARE}, "a zone needs a name"),
        ({"name": "H" * 61, "points": SQUARE}, "longer than 60 characters"),
        ({"name": "Hats", "points": "0, 0; nan, 1; 2, 2"}, "is not a position"),
    ],
)
@pytest.mark.usefixtures("shoes")
def test_bad_zones_come_back_with_the_reason_and_what_was_drawn(
    client: FlaskClient,
    db: sqlite_utils.Database,
    form: dict[str, str],
    message: str,
) -> None:
    before = list_zones(db)
    page = refused(
        client.post(f"{PAGE}/zones", data={"colour": "#123456", **form}), "zone", message
    )
    # What was sent is in the form again, so the drawing can be fixed rather than redone.
    assert f"{form.get('points', '')}</textarea>" in page
    assert list_zones(db) == before
    assert audit.entries(db) == []


def test_a_manager_reshapes_renames_and_recolours_a_zone(
    client: FlaskClient, db: sqlite_utils.Database, shoes: Zone
) -> None:
    page = text(client.get(f"{PAGE}?zone={shoes.id}"))
    assert f'action="/manage/plan/zones/{shoes.id}"' in page and "0, 0; 8, 0; 8, 8; 0, 8" in page
    response = client.post(
        f"{PAGE}/zones/{shoes.id}",
        data={"name": "Sneakers", "colour": "#2b4fb5", "points": "0, 0; 10, 0; 10, 6; 0, 6"},
    )
    assert response.status_code == 302
    (changed,) = list_zones(db)
    assert (changed.id, changed.name, changed.colour) == (shoes.id, "Sneakers", "#2b4fb5")
    assert changed.polygon == ((0, 0), (10, 0), (10, 6), (0, 6))
    before, after = last_change(db, "zone.update", f"zone:{shoes.id}")
    assert (before["name"], after["name"]) == ("Shoes", "Sneakers")
    assert before["polygon"][1] == [8, 0] and after["polygon"][1] == [10, 0]


def test_a_bad_edit_leaves_the_zone_as_it_was(
    client: FlaskClient, db: sqlite_utils.Database, shoes: Zone
) -> None:
    create_zone(db, "Denim", [(10, 0), (18, 0), (18, 8)])
    before = list_zones(db)
    for form, message in (
        ({"name": "Denim", "points": SQUARE, "colour": "#123456"}, "already exists"),
        ({"name": "Shoes", "points": "0, 0; 8, 8; 8, 0; 0, 8", "colour": "#123456"}, "crosses"),
    ):
        page = refused(client.post(f"{PAGE}/zones/{shoes.id}", data=form), "zone", message)
        # Still the edit form of that zone, with its delete button.
        assert f'action="/manage/plan/zones/{shoes.id}"' in page
    assert list_zones(db) == before
    assert audit.entries(db) == []


def test_a_manager_deletes_a_zone_and_its_sensors_stay(
    client: FlaskClient, db: sqlite_utils.Database, shoes: Zone
) -> None:
    create_sensor(db, "wifi-1", "wifi", 4, 4)
    assert get_sensor(db, "wifi-1").zone_id == shoes.id
    assert client.post(f"{PAGE}/zones/{shoes.id}/delete").status_code == 302
    assert list_zones(db) == []
    assert get_sensor(db, "wifi-1").zone_id is None
    entry = last_entry(db)
    assert (entry.action, entry.after) == ("zone.delete", None)
    assert entry.before is not None and entry.before["name"] == "Shoes"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", f"{PAGE}?zone=99"),
        ("post", f"{PAGE}/zones/99"),
        ("post", f"{PAGE}/zones/99/delete"),
        ("get", f"{PAGE}?sensor=nope"),
        ("post", f"{PAGE}/sensors/nope"),
        ("post", f"{PAGE}/sensors/nope/delete"),
    ],
)
def test_unknown_zones_and_sensors_are_404(client: FlaskClient, method: str, url: str) -> None:
    form = {"name": "X", "points": SQUARE, "sensor_id": "nope", "kind": "wifi", "x": "1", "y": "1"}
    response = client.get(url) if method == "get" else client.post(url, data=form)
    assert response.status_code == 404


# -- sensors -----------------------------------------------------------------------------------


def test_a_manager_places_a_sensor_in_the_zone_it_stands_in(
    client: FlaskClient, db: sqlite_utils.Database, shoes: Zone
) -> None:
    response = client.post(
        f"{PAGE}/sensors",
        data={"sensor_id": "wlan1", "kind": "wifi", "x": "4,5", "y": "3", "rssi_at_1m": "-40"},
    )
    assert response.status_code == 302
    sensor = get_sensor(db, "wlan1")
    assert (sensor.kind, sensor.x, sensor.y, sensor.zone_id) == ("wifi", 4.5, 3.0, shoes.id)
    assert sensor.rssi_at_1m == -40
    entry = last_entry(db)
    assert (entry.action, entry.target, entry.before) == ("sensor.create", "sensor:wlan1", None)
    assert entry.after == {
        "id": "wlan1",
        "kind": "wifi",
        "x": 4.5,
        "y": 3.0,
        "zone_id": shoes.id,
        "rssi_at_1m": -40.0,
    }


@pytest.mark.usefixtures("shoes")
def test_a_sensor_can_be_assigned_to_another_zone(
    client: FlaskClient, db: sqlite_utils.Database
) -> None:
    denim = create_zone(db, "Denim", [(8, 0), (16, 0), (16, 8), (8, 8)])
    form = {"sensor_id": "ble-1", "kind": "ble", "x": "7.9", "y": "4", "zone_id": str(denim.id)}
    assert client.post(f"{PAGE}/sensors", data=form).status_code == 302
    assert get_sensor(db, "ble-1").zone_id == denim.id


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"sensor_id": "", "kind": "wifi", "x": "1", "y": "1"}, "a sensor needs an id"),
        ({"sensor_id": "s", "kind": "lora", "x": "1", "y": "1"}, "is not one of wifi, ble, sim"),
        ({"sensor_id": "s", "kind": "wifi", "x": "left", "y": "1"}, "x position must be a number"),
        ({"sensor_id": "s", "kind": "wifi", "x": "1", "y": ""}, "y position must be a number"),
        ({"sensor_id": "s", "kind": "wifi", "x": "1", "y": "1", "rssi_at_1m": "5"}, "not between"),
        (
            {"sensor_id": "s", "kind": "wifi", "x": "1", "y": "1", "zone_id": "42"},
            "no zone with id",
        ),
        ({"sensor_id": "s", "kind": "wifi", "x": "1", "y": "1", "zone_id": "a"}, "from the list"),
        ({"sensor_id": "wifi-1", "kind": "wifi", "x": "1", "y": "1"}, "already exists"),
    ],
)
def test_bad_sensors_come_back_with_the_reason(
    client: FlaskClient,
    db: sqlite_utils.Database,
    form: dict[str, str],
    message: str,
) -> None:
    create_sensor(db, "wifi-1", "wifi", 2, 2)
    before = list_sensors(db)
    page = refused(client.post(f"{PAGE}/sensors", data=form), "sensor", message)
    assert f'id="sensor-x" name="x" value="{form["x"]}"' in page
    assert list_sensors(db) == before
    assert audit.entries(db) == []


def test_a_manager_moves_and_removes_a_sensor(
    client: FlaskClient, db: sqlite_utils.Database, shoes: Zone
) -> None:
    denim = create_zone(db, "Denim", [(8, 0), (16, 0), (16, 8), (8, 8)])
    create_sensor(db, "ap/1", "wifi", 4, 4)  # a slash in an id still has its own URLs
    page = text(client.get(f"{PAGE}?sensor=ap/1"))
    assert 'action="/manage/plan/sensors/ap/1"' in page and "readonly" in page
    form = {"sensor_id": "ignored", "kind": "ble", "x": "12", "y": "4", "rssi_at_1m": "-50"}
    assert client.post(f"{PAGE}/sensors/ap/1", data=form).status_code == 302
    moved = get_sensor(db, "ap/1")
    assert (moved.kind, moved.x, moved.zone_id, moved.rssi_at_1m) == ("ble", 12, denim.id, -50)
    before, after = last_change(db, "sensor.update", "sensor:ap/1")
    assert (before["zone_id"], after["zone_id"]) == (shoes.id, denim.id)
    refused(client.post(f"{PAGE}/sensors/ap/1", data={**form, "x": "far"}), "sensor", "x position")
    assert get_sensor(db, "ap/1") == moved
    assert client.post(f"{PAGE}/sensors/ap/1/delete").status_code == 302
    assert list_sensors(db) == []
    assert [e.action for e in audit.entries(db)] == ["sensor.delete", "sensor.update"]


def test_each_sensor_shows_when_it_was_last_heard_and_its_health(
    client: FlaskClient, db: sqlite_utils.Database
) -> None:
    now = utcnow()
    seen = {
        "fresh": now - timedelta(seconds=10),
        "quiet": now - timedelta(seconds=SENSOR_OK_SECONDS + 60),
        "new": None,
    }
    for sensor_id, last_seen in seen.items():
        create_sensor(db, sensor_id, "wifi", 1, 1)
        if last_seen is not None:
            db.conn.execute(
                "UPDATE sensors SET last_seen_at = ? WHERE id = ?", (to_iso(last_seen), sensor_id)
            )
    page = text(client.get(PAGE))
    rows = {
        sensor_id: page.split(f'<tr data-sensor-id="{sensor_id}">', 1)[1].split("</tr>", 1)[0]
        for sensor_id in seen
    }
    assert 'data-health="ok"' in rows["fresh"]
    assert 'data-health="stale"' in rows["quiet"]
    assert 'data-health="never"' in rows["new"] and "Never heard" in rows["new"]
    # The time is shown in the store's zone, not as the stored UTC text.
    # The time is shown in the store's zone and locale ("12/6/26, 9:29 PM"), not as stored.
    heard = re.compile(r"<td>\d+/\d+/\d+, \d+:\d+\s[AP]M</td>")
    assert heard.search(rows["fresh"]) and heard.search(rows["quiet"])
    assert not heard.search(rows["new"]) and to_iso(now) not in page
