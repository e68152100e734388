"""Reading the floor plan page's forms: what the manager typed or drew, kept to show it again.

The page posts plain HTML forms (the editor's JavaScript only fills their fields), so everything
here works without JavaScript too. A form that does not validate comes back with what was sent,
so a manager fixes one corner instead of drawing the zone again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from flask_babel import gettext as _

from presence.floorplan import PlanImage
from presence.zones import DEFAULT_COLOUR, DEFAULT_RSSI_AT_1M, InvalidZone, Point, Sensor, Zone

# The textarea holds "x, y; x, y; ..." in metres; a pasted JSON list is longer per corner.
MAX_POINTS_TEXT = 8000


class FormProblem(ValueError):
    """A field that is not what the page expects; the message is for the manager."""


@dataclass
class ZoneDraft:
    """The zone form's values: a zone being drawn (``zone_id`` None) or edited."""

    name: str = ""
    colour: str = DEFAULT_COLOUR
    points: str = ""
    zone_id: int | None = None

    @classmethod
    def of(cls, zone: Zone) -> ZoneDraft:
        return cls(zone.name, zone.colour, format_points(zone.polygon), zone.id)

    @classmethod
    def posted(cls, form: Mapping[str, str], zone_id: int | None = None) -> ZoneDraft:
        return cls(
            form.get("name", ""),
            form.get("colour", DEFAULT_COLOUR),
            form.get("points", "")[:MAX_POINTS_TEXT],
            zone_id,
        )


@dataclass
class SensorDraft:
    """The sensor form's values: a sensor being placed (``original_id`` None) or edited."""

    sensor_id: str = ""
    kind: str = "wifi"
    x: str = ""
    y: str = ""
    rssi_at_1m: str = f"{DEFAULT_RSSI_AT_1M:g}"
    zone_id: str = ""  # "" means: the zone its position lies in
    original_id: str | None = None

    @classmethod
    def of(cls, sensor: Sensor) -> SensorDraft:
        zone = "" if sensor.zone_id is None else str(sensor.zone_id)
        return cls(
            sensor.id,
            sensor.kind,
            f"{sensor.x:g}",
            f"{sensor.y:g}",
            f"{sensor.rssi_at_1m:g}",
            zone,
            sensor.id,
        )

    @classmethod
    def posted(cls, form: Mapping[str, str], original_id: str | None = None) -> SensorDraft:
        return cls(
            original_id if original_id is not None else form.get("sensor_id", ""),
            form.get("kind", ""),
            form.get("x", ""),
            form.get("y", ""),
            form.get("rssi_at_1m", f"{DEFAULT_RSSI_AT_1M:g}"),
            form.get("zone_id", ""),
            original_id,
        )

    def values(self) -> tuple[float, float, float, int | None]:
        """x, y, rssi at 1 m and the zone id, as numbers; raises ``FormProblem``."""
        x = parse_number(self.x, _("The sensor's x position"))
        y = parse_number(self.y, _("The sensor's y position"))
        rssi = parse_number(self.rssi_at_1m, _("The signal at 1 m"))
        if not self.zone_id:
            return x, y, rssi, None
        try:
            return x, y, rssi, int(self.zone_id)
        except ValueError:
            raise FormProblem(_("Choose the sensor's zone from the list.")) from None


def format_points(polygon: tuple[Point, ...] | list[Point]) -> str:
    """Corners as the textarea shows them: "x, y; x, y" in metres."""
    return "; ".join(f"{x:g}, {y:g}" for x, y in polygon)


def parse_number(text: str, what: str) -> float:
    """A finite number typed in a field (a decimal comma is accepted); raises ``FormProblem``."""
    try:
        value = float(str(text).strip().replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise FormProblem(_("%(what)s must be a number, like 3.5.", what=what))
    return value


def parse_points(text: str) -> list[Point]:
    """Corners from "x, y; x, y" (or one per line, or a JSON list of pairs), in metres.

    Raises ``InvalidZone`` naming the first corner that is not two numbers; the outline itself
    (enough corners, not crossing itself) is checked by ``presence.zones``.
    """
    text = text.strip()
    if not text:
        raise InvalidZone(
            _("Draw the zone on the plan, or type its corners as x, y; x, y; … in metres.")
        )
    if text.startswith("["):
        try:
            pairs = json.loads(text)
        except ValueError:
            pairs = None
        if not isinstance(pairs, list):
            raise InvalidZone(_("The corners are not a list like [[0, 0], [4, 0], [4, 3]]."))
        chunks = [pair if isinstance(pair, list) else [pair] for pair in pairs]
    else:
        chunks = [
            chunk.replace(",", " ").split()
            for line in text.splitlines()
            for chunk in line.split(";")
            if chunk.strip()
        ]
    corners: list[Point] = []
    for number, chunk in enumerate(chunks, start=1):
        try:
            if len(chunk) != 2:
                raise ValueError
            x, y = float(chunk[0]), float(chunk[1])
        except (TypeError, ValueError):
            shown = " ".join(str(part) for part in chunk)[:40]
            raise InvalidZone(
                _(
                    "Corner %(number)s (“%(shown)s”) is not two numbers like 3.5, 7.",
                    number=number,
                    shown=shown,
                )
            ) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidZone(_("Corner %(number)s is not a position.", number=number))
        corners.append((x, y))
    return corners


# -- the states written to the audit log -------------------------------------------------------


def zone_state(zone: Zone) -> dict[str, Any]:
    return {
        "id": zone.id,
        "name": zone.name,
        "colour": zone.colour,
        "polygon": [list(p) for p in zone.polygon],
    }


def sensor_state(sensor: Sensor) -> dict[str, Any]:
    return asdict(sensor)


def image_state(image: PlanImage | None) -> dict[str, Any] | None:
    """The picture's metadata (never its bytes) and its width and height in metres."""
    if image is None:
        return None
    state = asdict(image)
    state.update(width_m=round(image.width_m, 3), height_m=round(image.height_m, 3))
    return state
