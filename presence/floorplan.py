"""The floor plan as the console draws it: the uploaded picture, its scale, zones and sensors.

Zones and sensors are stored in metres (``presence.zones``); the picture is stored in pixels with
a scale (metres per pixel). ``plan_view`` puts them in one frame, in metres, with the picture's
top-left corner at (0, 0) and y growing downwards, which is an SVG ``viewBox`` as it stands.
With no picture uploaded, the frame is the zones' and sensors' bounding box plus a margin.

The console uploads the picture (``store_plan_image``), sets its scale (``set_scale``, or
``scale_from_line`` from a line of known length drawn on it) and shows each sensor's health
(``sensor_health``, from ``sensors.last_seen_at`` which the presence daemon refreshes).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from datetime import datetime

import sqlite_utils

from instore.clock import from_iso, now_iso, utcnow
from instore.db import transaction
from presence.floorplan_image import ImageInfo, InvalidPlanImage, inspect_image
from presence.zones import Point, Sensor, Zone, list_sensors, list_zones

# Space around the zones when there is no picture: room to start drawing next to them.
MARGIN_M = 2.0
# The frame of an empty store (no picture, no zones): a small shop, so drawing can begin.
EMPTY_PLAN_M: tuple[float, float] = (30.0, 20.0)
# The scale of a first picture when nothing is drawn yet to fit it to: 5 cm a pixel makes a
# 600 px wide export a 30 m shop, the size of an empty plan, so drawing can start at once.
DEFAULT_METRES_PER_PX = 0.05
# Sane scales: finer than 1 mm a pixel or coarser than 1 m a pixel is a mistyped length.
MIN_METRES_PER_PX = 0.001
MAX_METRES_PER_PX = 1.0
# A sensor heard within this long is healthy: sensors hear phones every few seconds in opening
# hours and the daemon writes last_seen_at every few seconds, so two minutes of silence is a fault.
SENSOR_OK_SECONDS = 120
SENSOR_OK, SENSOR_STALE, SENSOR_NEVER = "ok", "stale", "never"


@dataclass(frozen=True, slots=True)
class PlanImage:
    """The uploaded picture's metadata (the bytes are read only when served)."""

    mime: str
    width_px: int
    height_px: int
    metres_per_px: float
    sha256: str
    uploaded_at: str

    @property
    def width_m(self) -> float:
        return self.width_px * self.metres_per_px

    @property
    def height_m(self) -> float:
        return self.height_px * self.metres_per_px


@dataclass(frozen=True, slots=True)
class PlanView:
    """Everything needed to draw the plan: the frame in metres, the picture, zones and sensors."""

    min_x: float
    min_y: float
    width_m: float
    height_m: float
    image: PlanImage | None
    zones: tuple[Zone, ...]
    sensors: tuple[Sensor, ...]

    @property
    def view_box(self) -> str:
        """The SVG viewBox attribute for this frame."""
        return f"{self.min_x:g} {self.min_y:g} {self.width_m:g} {self.height_m:g}"

    @staticmethod
    def points(zone: Zone) -> str:
        """The SVG ``points`` attribute of a zone's outline."""
        return " ".join(f"{x:g},{y:g}" for x, y in zone.polygon)

    @staticmethod
    def label_at(zone: Zone) -> Point:
        """Where to write a zone's name: the centroid of its outline (templates cannot sum)."""
        return polygon_centroid(zone.polygon)


def polygon_centroid(polygon: tuple[Point, ...]) -> Point:
    """Area centroid; the corners' mean for a degenerate outline (validation prevents those)."""
    count = len(polygon)
    twice_area = cx = cy = 0.0
    for i in range(count):
        (x1, y1), (x2, y2) = polygon[i], polygon[(i + 1) % count]
        cross = x1 * y2 - x2 * y1
        twice_area += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    if abs(twice_area) < 1e-12:
        return sum(x for x, _ in polygon) / count, sum(y for _, y in polygon) / count
    return cx / (3 * twice_area), cy / (3 * twice_area)


def get_plan_image(db: sqlite_utils.Database) -> PlanImage | None:
    row = db.conn.execute(
        "SELECT mime, width_px, height_px, metres_per_px, sha256, uploaded_at"
        " FROM floorplan WHERE id = 1"
    ).fetchone()
    return PlanImage(*row) if row else None


def get_plan_image_bytes(db: sqlite_utils.Database) -> tuple[PlanImage, bytes] | None:
    """The uploaded picture and its bytes, read together, for serving it."""
    row = db.conn.execute(
        "SELECT mime, width_px, height_px, metres_per_px, sha256, uploaded_at, image"
        " FROM floorplan WHERE id = 1"
    ).fetchone()
    return (PlanImage(*row[:6]), bytes(row[6])) if row else None


def plan_view(db: sqlite_utils.Database) -> PlanView:
    """The plan in one frame; the picture's frame when there is one, else the drawn things'."""
    zones = tuple(list_zones(db))
    sensors = tuple(list_sensors(db))
    image = get_plan_image(db)
    xs = [x for z in zones for x, _ in z.polygon] + [s.x for s in sensors]
    ys = [y for z in zones for _, y in z.polygon] + [s.y for s in sensors]
    if image is not None:
        # The picture's frame, widened if something was drawn outside it.
        min_x, min_y = min([0.0, *xs]), min([0.0, *ys])
        max_x, max_y = max([image.width_m, *xs]), max([image.height_m, *ys])
    elif xs:
        min_x, min_y = min(xs) - MARGIN_M, min(ys) - MARGIN_M
        max_x, max_y = max(xs) + MARGIN_M, max(ys) + MARGIN_M
    else:
        min_x, min_y, (max_x, max_y) = 0.0, 0.0, EMPTY_PLAN_M
    return PlanView(min_x, min_y, max_x - min_x, max_y - min_y, image, zones, sensors)


# -- the picture and its scale -----------------------------------------------------------------


class InvalidScale(ValueError):
    """A scale the plan cannot use; the message says what to fix."""


def _drawn_extent(db: sqlite_utils.Database) -> tuple[float, float] | None:
    """The right and bottom edges (metres) of everything drawn, if anything lies right/below 0."""
    xs = [x for z in list_zones(db) for x, _ in z.polygon] + [s.x for s in list_sensors(db)]
    ys = [y for z in list_zones(db) for _, y in z.polygon] + [s.y for s in list_sensors(db)]
    if not xs or max(xs) <= 0 or max(ys) <= 0:
        return None
    return max(xs), max(ys)


def _clamp_scale(metres_per_px: float) -> float:
    return min(MAX_METRES_PER_PX, max(MIN_METRES_PER_PX, metres_per_px))


def initial_scale(db: sqlite_utils.Database, info: ImageInfo, current: PlanImage | None) -> float:
    """The scale a new picture starts with, chosen so the zones already drawn stay put on it.

    - Replacing a picture keeps its width in metres: a manager who exports the same plan again
      (a wall moved, a sharper export at twice the pixels) expects the zones to still line up,
      and with the same pixel width that is simply the same scale.
    - A first picture is fitted so it covers the zones and sensors already drawn (the demo's
      zones, or ones drawn before any picture); it starts at the top-left corner (0, 0).
    - With nothing to fit, ``DEFAULT_METRES_PER_PX``. The manager then draws a line of known
      length to set the true scale.
    """
    if current is not None:
        return _clamp_scale(current.width_m / info.width_px)
    extent = _drawn_extent(db)
    if extent is None:
        return DEFAULT_METRES_PER_PX
    return _clamp_scale(max(extent[0] / info.width_px, extent[1] / info.height_px))


def store_plan_image(db: sqlite_utils.Database, data: bytes) -> PlanImage:
    """Check and store the uploaded picture (replacing any), returning its metadata.

    Raises ``InvalidPlanImage`` with a sentence for the manager when the bytes are not a PNG,
    JPEG or SVG picture of an acceptable size; the stored picture is then left as it was.
    """
    info = inspect_image(data)
    with transaction(db):
        scale = initial_scale(db, info, get_plan_image(db))
        db.conn.execute(
            """INSERT INTO floorplan
                 (id, mime, image, width_px, height_px, metres_per_px, sha256, uploaded_at)
               VALUES (1, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET
                 mime = excluded.mime, image = excluded.image, width_px = excluded.width_px,
                 height_px = excluded.height_px, metres_per_px = excluded.metres_per_px,
                 sha256 = excluded.sha256, uploaded_at = excluded.uploaded_at""",
            (
                info.mime,
                data,
                info.width_px,
                info.height_px,
                scale,
                hashlib.sha256(data).hexdigest(),
                now_iso(),
            ),
        )
        image = get_plan_image(db)
    assert image is not None
    return image


def validate_scale(metres_per_px: float) -> float:
    if not math.isfinite(metres_per_px) or metres_per_px <= 0:
        raise InvalidScale("The scale must be a positive number of metres per pixel.")
    if not MIN_METRES_PER_PX <= metres_per_px <= MAX_METRES_PER_PX:
        raise InvalidScale(
            f"A scale of {metres_per_px:.4g} m per pixel is outside {MIN_METRES_PER_PX:g} to "
            f"{MAX_METRES_PER_PX:g}; check the length you typed is in metres."
        )
    return metres_per_px


def scale_from_line(start_px: Point, end_px: Point, length_m: float) -> float:
    """Metres per pixel from a line of known length drawn on the picture, ends in pixels."""
    if not all(math.isfinite(v) for v in (*start_px, *end_px)):
        raise InvalidScale("Draw the line on the plan: its two ends must be positions.")
    if not math.isfinite(length_m) or length_m <= 0:
        raise InvalidScale("Type the line's real length in metres, more than 0.")
    pixels = math.hypot(end_px[0] - start_px[0], end_px[1] - start_px[1])
    if pixels < 1:
        raise InvalidScale("The line's two ends are the same point; click two different places.")
    return validate_scale(length_m / pixels)


def set_scale(db: sqlite_utils.Database, metres_per_px: float) -> PlanImage:
    """Change the picture's scale; zones and sensors stay in metres, so the picture moves."""
    validate_scale(metres_per_px)
    with transaction(db):
        image = get_plan_image(db)
        if image is None:
            raise InvalidScale("Upload a floor plan picture before setting its scale.")
        db.conn.execute("UPDATE floorplan SET metres_per_px = ? WHERE id = 1", (metres_per_px,))
    return replace(image, metres_per_px=metres_per_px)


# -- sensor health -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorHealth:
    """Whether the presence daemon has heard a sensor lately."""

    sensor_id: str
    status: str  # SENSOR_OK, SENSOR_STALE or SENSOR_NEVER
    last_seen_at: str | None
    seconds_ago: int | None


def sensor_health(
    db: sqlite_utils.Database, now: datetime | None = None
) -> dict[str, SensorHealth]:
    """Each sensor's health by id: ok within ``SENSOR_OK_SECONDS``, else stale, or never seen."""
    now = now or utcnow()
    health: dict[str, SensorHealth] = {}
    for sensor_id, last_seen_at in db.conn.execute(
        "SELECT id, last_seen_at FROM sensors ORDER BY id"
    ):
        if not last_seen_at:
            health[sensor_id] = SensorHealth(sensor_id, SENSOR_NEVER, None, None)
            continue
        ago = max(0, int((now - from_iso(last_seen_at)).total_seconds()))
        status = SENSOR_OK if ago <= SENSOR_OK_SECONDS else SENSOR_STALE
        health[sensor_id] = SensorHealth(sensor_id, status, last_seen_at, ago)
    return health


__all__ = [
    "InvalidPlanImage",
    "InvalidScale",
    "PlanImage",
    "PlanView",
    "SensorHealth",
    "get_plan_image",
    "get_plan_image_bytes",
    "plan_view",
    "scale_from_line",
    "sensor_health",
    "set_scale",
    "store_plan_image",
]
