"""The floor plan: zones (named polygons in metres) and sensors (radios placed on it).

Zones and sensors are what a manager draws, so every mistake they can make (a zone with two
corners, an outline that crosses itself, a duplicate name, a sensor on a zone that does not exist)
is an exception with a sentence meant for them; the CLI and the manage pages turn it into exit 2 or
a 400. The estimator and the tracker read the whole plan once through ``load_floorplan``.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlite_utils

from instore.clock import now_iso
from instore.db import transaction

Point = tuple[float, float]

DEFAULT_COLOUR = "#0a6e5c"  # the schema's default: the brand green
# What a phone reads 1 m from a typical sensor antenna; calibrate per sensor for accuracy.
DEFAULT_RSSI_AT_1M = -45.0
SENSOR_KINDS: tuple[str, ...] = ("wifi", "ble", "sim")  # the sensors table's CHECK constraint
MAX_NAME_LENGTH = 60  # fits the live view's zone labels and push titles
MAX_POINTS = 200  # a hand-drawn shop zone has a handful; more is a pasted-in trace by mistake
# Below this area (m²) an outline is a line, not a place anyone can stand in.
MIN_AREA_M2 = 0.01
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class InvalidZone(ValueError):
    """A zone the floor plan cannot hold; the message says what to fix."""


class InvalidSensor(ValueError):
    """A sensor the floor plan cannot hold; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Zone:
    """A named area of the shop floor; ``polygon`` lists its corners in order, in metres."""

    id: int
    name: str
    polygon: tuple[Point, ...]
    colour: str = DEFAULT_COLOUR

    def contains(self, x: float, y: float) -> bool:
        return point_in_polygon(x, y, self.polygon)


@dataclass(frozen=True, slots=True)
class Sensor:
    """A radio at a position; its zone is where a phone it hears best is taken to be."""

    id: str
    kind: str
    x: float
    y: float
    zone_id: int | None
    rssi_at_1m: float = DEFAULT_RSSI_AT_1M


@dataclass(frozen=True)
class FloorPlan:
    """Everything estimation needs, read once: zones by id and sensors by id."""

    zones: dict[int, Zone] = field(default_factory=dict)
    sensors: dict[str, Sensor] = field(default_factory=dict)

    def zone_at(self, x: float, y: float) -> Zone | None:
        """The zone containing the point (the first by id where zones overlap)."""
        return next((z for _, z in sorted(self.zones.items()) if z.contains(x, y)), None)

    def zone_named(self, name: str) -> Zone | None:
        folded = name.casefold()
        return next((z for z in self.zones.values() if z.name.casefold() == folded), None)


# -- geometry ----------------------------------------------------------------------------------


def point_in_polygon(x: float, y: float, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting. Half-open edges make a point on a shared border belong to exactly
    one of two neighbouring zones rather than to both or neither."""
    inside = False
    count = len(polygon)
    for i in range(count):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % count]
        if (y1 > y) != (y2 > y):
            crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < crossing_x:
                inside = not inside
    return inside


def polygon_area(polygon: Sequence[Point]) -> float:
    """Unsigned area by the shoelace formula, in m²."""
    count = len(polygon)
    twice = sum(
        polygon[i][0] * polygon[(i + 1) % count][1] - polygon[(i + 1) % count][0] * polygon[i][1]
        for i in range(count)
    )
    return abs(twice) / 2


def _orientation(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_intersect(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segments ab and cd share any point, touching and collinear overlap included."""
    o1, o2 = _orientation(a, b, c), _orientation(a, b, d)
    o3, o4 = _orientation(c, d, a), _orientation(c, d, b)
    if o1 * o2 < 0 and o3 * o4 < 0:
        return True  # a proper crossing
    return (
        (o1 == 0 and _on_segment(a, b, c))
        or (o2 == 0 and _on_segment(a, b, d))
        or (o3 == 0 and _on_segment(c, d, a))
        or (o4 == 0 and _on_segment(c, d, b))
    )


def crossing_edges(polygon: Sequence[Point]) -> tuple[int, int] | None:
    """The first pair of edges (1-based, edge i runs from corner i) that cross or fold back."""
    count = len(polygon)
    edges = [(polygon[i], polygon[(i + 1) % count]) for i in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            a, b = edges[i]
            c, d = edges[j]
            if j == i + 1 or (i == 0 and j == count - 1):
                # Neighbours share a corner; they only overlap when the outline doubles back.
                p, q, r = (a, b, d) if j == i + 1 else (c, a, b)
                back = (q[0] - p[0]) * (r[0] - q[0]) + (q[1] - p[1]) * (r[1] - q[1])
                if _orientation(p, q, r) == 0 and back < 0:
                    return i + 1, j + 1
                continue
            if segments_intersect(a, b, c, d):
                return i + 1, j + 1
    return None


# -- validation --------------------------------------------------------------------------------


def validate_name(name: str) -> str:
    clean = " ".join(str(name).split())
    if not clean:
        raise InvalidZone("a zone needs a name")
    if len(clean) > MAX_NAME_LENGTH:
        raise InvalidZone(f"zone name {clean[:20]!r}… is longer than {MAX_NAME_LENGTH} characters")
    return clean


def validate_polygon(name: str, points: Iterable[Sequence[float]]) -> tuple[Point, ...]:
    """Corners as floats, closing duplicate dropped; raises ``InvalidZone`` with what to fix."""
    polygon: list[Point] = []
    for number, point in enumerate(points, start=1):
        try:
            x, y = (float(v) for v in point)
        except (TypeError, ValueError):
            raise InvalidZone(
                f"zone {name!r}: corner {number} is not a pair of numbers (x, y) in metres"
            ) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidZone(f"zone {name!r}: corner {number} is not a finite position")
        polygon.append((x, y))
    if len(polygon) > 1 and polygon[0] == polygon[-1]:
        polygon.pop()  # a closed ring repeats its first corner; we store it open
    if len(polygon) < 3:
        raise InvalidZone(f"zone {name!r} has fewer than 3 points")
    if len(polygon) > MAX_POINTS:
        raise InvalidZone(f"zone {name!r} has more than {MAX_POINTS} points")
    for i, point in enumerate(polygon):
        if point == polygon[(i + 1) % len(polygon)]:
            raise InvalidZone(f"zone {name!r} repeats the corner {point} twice in a row")
    if all(_orientation(polygon[0], polygon[1], p) == 0 for p in polygon[2:]):
        raise InvalidZone(f"zone {name!r} has no area; its corners lie on one line")
    crossing = crossing_edges(polygon)
    if crossing:
        raise InvalidZone(
            f"zone {name!r} crosses itself (edges {crossing[0]} and {crossing[1]}); "
            "list its corners in order around the outline"
        )
    if polygon_area(polygon) < MIN_AREA_M2:
        raise InvalidZone(f"zone {name!r} is smaller than {MIN_AREA_M2} m²")
    return tuple(polygon)


def validate_colour(name: str, colour: str) -> str:
    if not _COLOUR.fullmatch(colour):
        raise InvalidZone(f"zone {name!r}: colour {colour!r} is not like #0a6e5c")
    return colour.lower()


# -- zones in the database ---------------------------------------------------------------------


def _zone_from_row(row: tuple[int, str, str, str]) -> Zone:
    zone_id, name, polygon, colour = row
    return Zone(zone_id, name, tuple((float(x), float(y)) for x, y in json.loads(polygon)), colour)


def _check_unique(db: sqlite_utils.Database, name: str, except_id: int | None = None) -> None:
    row = db.conn.execute(
        "SELECT name FROM zones WHERE name = ? COLLATE NOCASE AND id IS NOT ?", (name, except_id)
    ).fetchone()
    if row:
        raise InvalidZone(f"a zone named {row[0]!r} already exists")


def _insert_zone(
    db: sqlite_utils.Database, name: str, polygon: Iterable[Sequence[float]], colour: str
) -> Zone:
    name = validate_name(name)
    shape = validate_polygon(name, polygon)
    colour = validate_colour(name, colour)
    _check_unique(db, name)
    cursor = db.conn.execute(
        "INSERT INTO zones (name, polygon, colour, created_at) VALUES (?, ?, ?, ?)",
        (name, json.dumps([list(p) for p in shape]), colour, now_iso()),
    )
    return Zone(int(cursor.lastrowid or 0), name, shape, colour)


def create_zone(
    db: sqlite_utils.Database,
    name: str,
    polygon: Sequence[Sequence[float]],
    colour: str = DEFAULT_COLOUR,
) -> Zone:
    """Add a zone; raises ``InvalidZone`` for a bad outline, colour or a name already in use."""
    with transaction(db):
        return _insert_zone(db, name, polygon, colour)


def list_zones(db: sqlite_utils.Database) -> list[Zone]:
    rows = db.conn.execute("SELECT id, name, polygon, colour FROM zones ORDER BY id").fetchall()
    return [_zone_from_row(row) for row in rows]


def get_zone(db: sqlite_utils.Database, zone_id: int) -> Zone:
    row = db.conn.execute(
        "SELECT id, name, polygon, colour FROM zones WHERE id = ?", (zone_id,)
    ).fetchone()
    if row is None:
        raise InvalidZone(f"there is no zone with id {zone_id}")
    return _zone_from_row(row)


def update_zone(
    db: sqlite_utils.Database,
    zone_id: int,
    *,
    name: str | None = None,
    polygon: Sequence[Sequence[float]] | None = None,
    colour: str | None = None,
) -> Zone:
    """Change a zone's name, outline or colour; what is not given stays as it was."""
    with transaction(db):
        current = get_zone(db, zone_id)
        new_name = validate_name(name) if name is not None else current.name
        shape = validate_polygon(new_name, polygon) if polygon is not None else current.polygon
        new_colour = validate_colour(new_name, colour) if colour is not None else current.colour
        _check_unique(db, new_name, except_id=zone_id)
        db.conn.execute(
            "UPDATE zones SET name = ?, polygon = ?, colour = ? WHERE id = ?",
            (new_name, json.dumps([list(p) for p in shape]), new_colour, zone_id),
        )
    return Zone(zone_id, new_name, shape, new_colour)


def delete_zone(db: sqlite_utils.Database, zone_id: int) -> None:
    """Remove a zone; its sensors stay, without a zone (the foreign key sets theirs to NULL)."""
    with transaction(db):
        get_zone(db, zone_id)
        db.conn.execute("DELETE FROM zones WHERE id = ?", (zone_id,))


# -- sensors in the database -------------------------------------------------------------------


def _validate_sensor(
    db: sqlite_utils.Database,
    sensor_id: str,
    kind: str,
    x: float,
    y: float,
    zone_id: int | None,
    rssi_at_1m: float,
) -> Sensor:
    sensor_id = str(sensor_id).strip()
    if not sensor_id:
        raise InvalidSensor("a sensor needs an id (the name its source reports, e.g. 'wlan1')")
    if kind not in SENSOR_KINDS:
        raise InvalidSensor(
            f"sensor {sensor_id!r}: kind {kind!r} is not one of {', '.join(SENSOR_KINDS)}"
        )
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidSensor(f"sensor {sensor_id!r}: position must be finite numbers in metres")
    if not -100 <= rssi_at_1m <= 0:
        raise InvalidSensor(
            f"sensor {sensor_id!r}: rssi_at_1m {rssi_at_1m} dBm is not between -100 and 0"
        )
    if zone_id is None:
        # Placed inside a zone's outline: that is the zone it stands for.
        zone = FloorPlan({z.id: z for z in list_zones(db)}).zone_at(x, y)
        zone_id = zone.id if zone else None
    elif db.conn.execute("SELECT 1 FROM zones WHERE id = ?", (zone_id,)).fetchone() is None:
        raise InvalidSensor(f"sensor {sensor_id!r}: there is no zone with id {zone_id}")
    return Sensor(sensor_id, kind, float(x), float(y), zone_id, float(rssi_at_1m))


def _insert_sensor(db: sqlite_utils.Database, sensor: Sensor) -> None:
    try:
        db.conn.execute(
            "INSERT INTO sensors (id, kind, x, y, zone_id, rssi_at_1m) VALUES (?, ?, ?, ?, ?, ?)",
            (sensor.id, sensor.kind, sensor.x, sensor.y, sensor.zone_id, sensor.rssi_at_1m),
        )
    except sqlite3.IntegrityError:
        # The primary key is the only constraint validation has not already checked.
        raise InvalidSensor(f"a sensor with id {sensor.id!r} already exists") from None


def create_sensor(
    db: sqlite_utils.Database,
    sensor_id: str,
    kind: str,
    x: float,
    y: float,
    zone_id: int | None = None,
    rssi_at_1m: float = DEFAULT_RSSI_AT_1M,
) -> Sensor:
    """Place a sensor. Without ``zone_id`` it belongs to the zone its position lies in, if any."""
    with transaction(db):
        sensor = _validate_sensor(db, sensor_id, kind, x, y, zone_id, rssi_at_1m)
        _insert_sensor(db, sensor)
    return sensor


def _sensor_from_row(row: tuple[str, str, float, float, int | None, float]) -> Sensor:
    return Sensor(row[0], row[1], float(row[2]), float(row[3]), row[4], float(row[5]))


def list_sensors(db: sqlite_utils.Database) -> list[Sensor]:
    rows = db.conn.execute(
        "SELECT id, kind, x, y, zone_id, rssi_at_1m FROM sensors ORDER BY id"
    ).fetchall()
    return [_sensor_from_row(row) for row in rows]


def get_sensor(db: sqlite_utils.Database, sensor_id: str) -> Sensor:
    row = db.conn.execute(
        "SELECT id, kind, x, y, zone_id, rssi_at_1m FROM sensors WHERE id = ?", (sensor_id,)
    ).fetchone()
    if row is None:
        raise InvalidSensor(f"there is no sensor with id {sensor_id!r}")
    return _sensor_from_row(row)


def update_sensor(
    db: sqlite_utils.Database,
    sensor_id: str,
    *,
    kind: str | None = None,
    x: float | None = None,
    y: float | None = None,
    zone_id: int | None = None,
    rssi_at_1m: float | None = None,
) -> Sensor:
    """Move or recalibrate a sensor. A move without ``zone_id`` re-derives its zone."""
    with transaction(db):
        current = get_sensor(db, sensor_id)
        moved = x is not None or y is not None
        sensor = _validate_sensor(
            db,
            sensor_id,
            kind if kind is not None else current.kind,
            x if x is not None else current.x,
            y if y is not None else current.y,
            zone_id if zone_id is not None or moved else current.zone_id,
            rssi_at_1m if rssi_at_1m is not None else current.rssi_at_1m,
        )
        db.conn.execute(
            "UPDATE sensors SET kind = ?, x = ?, y = ?, zone_id = ?, rssi_at_1m = ? WHERE id = ?",
            (sensor.kind, sensor.x, sensor.y, sensor.zone_id, sensor.rssi_at_1m, sensor_id),
        )
    return sensor


def delete_sensor(db: sqlite_utils.Database, sensor_id: str) -> None:
    with transaction(db):
        get_sensor(db, sensor_id)
        db.conn.execute("DELETE FROM sensors WHERE id = ?", (sensor_id,))


def load_floorplan(db: sqlite_utils.Database) -> FloorPlan:
    """The whole plan, for the daemon to hand to the estimator and the tracker at start."""
    return FloorPlan(
        zones={zone.id: zone for zone in list_zones(db)},
        sensors={sensor.id: sensor for sensor in list_sensors(db)},
    )


def seed_floorplan(
    db: sqlite_utils.Database,
    zones: Sequence[tuple[str, Sequence[Point], str]],
    sensors: Sequence[tuple[str, str, float, float, float]],
) -> FloorPlan:
    """Add the zones and sensors not already there (by name / id), in one transaction.

    Idempotent, so ``make demo`` can run it on every start without duplicating the plan.
    """
    with transaction(db):
        existing = {z.name.casefold() for z in list_zones(db)}
        for name, polygon, colour in zones:
            if name.casefold() not in existing:
                _insert_zone(db, name, polygon, colour)
        known = {s.id for s in list_sensors(db)}
        for sensor_id, kind, x, y, rssi_at_1m in sensors:
            if sensor_id not in known:
                _insert_sensor(db, _validate_sensor(db, sensor_id, kind, x, y, None, rssi_at_1m))
    return load_floorplan(db)
