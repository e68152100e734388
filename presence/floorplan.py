"""The floor plan as the console draws it: the uploaded picture, its scale, zones and sensors.

Zones and sensors are stored in metres (``presence.zones``); the picture is stored in pixels with
a scale (metres per pixel). ``plan_view`` puts them in one frame, in metres, with the picture's
top-left corner at (0, 0) and y growing downwards, which is an SVG ``viewBox`` as it stands.
With no picture uploaded, the frame is the zones' and sensors' bounding box plus a margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from presence.zones import Sensor, Zone, list_sensors, list_zones

# Space around the zones when there is no picture: room to start drawing next to them.
MARGIN_M = 2.0
# The frame of an empty store (no picture, no zones): a small shop, so drawing can begin.
EMPTY_PLAN_M: tuple[float, float] = (30.0, 20.0)


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


def get_plan_image(db: sqlite_utils.Database) -> PlanImage | None:
    row = db.conn.execute(
        "SELECT mime, width_px, height_px, metres_per_px, sha256, uploaded_at"
        " FROM floorplan WHERE id = 1"
    ).fetchone()
    return PlanImage(*row) if row else None


def get_plan_image_bytes(db: sqlite_utils.Database) -> tuple[str, bytes] | None:
    """(mime, bytes) of the uploaded picture, for serving it."""
    row = db.conn.execute("SELECT mime, image FROM floorplan WHERE id = 1").fetchone()
    return (row[0], bytes(row[1])) if row else None


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
