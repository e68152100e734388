"""The floor plan page: upload the plan picture and set its scale, draw zones, place sensors.

Everything is a plain form post (the editor's JavaScript in ``static/manage/plan.js`` draws on the
plan and fills the forms' fields), so the page also works with the keyboard and without
JavaScript: corners typed as "x, y; x, y" in metres, sensor positions as numbers. A form that does
not validate comes back with HTTP 400, the reason next to it and what was sent, and the stored
plan unchanged. Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlite_utils
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from instore.db import atomic
from portal.database import get_db
from portal.manage.access import current_member, has_role, record, require_role
from portal.manage.plan_forms import (
    FormProblem,
    SensorDraft,
    ZoneDraft,
    image_state,
    parse_number,
    parse_points,
    sensor_state,
    zone_state,
)
from presence import floorplan
from presence import zones as zone_store
from presence.floorplan import InvalidScale
from presence.floorplan_image import MAX_IMAGE_BYTES, MAX_IMAGE_PX, InvalidPlanImage

bp = Blueprint("manage_plan", __name__, url_prefix="/manage/plan")
require_role(bp, "manager")

# Room for the multipart framing and the CSRF field around a picture of the largest size.
UPLOAD_OVERHEAD_BYTES = 64 * 1024
PageResult = tuple[str, int]
Result = TypeVar("Result")


@bp.url_value_preprocessor
def _allow_picture_upload(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Raise the app's 16 KB body limit for the picture upload, for managers only.

    A URL value preprocessor runs before every ``before_request`` function, including the
    app-wide CSRF check that reads the form, so the raised limit is in force when the body is read.
    """
    if endpoint == "manage_plan.upload" and has_role(current_member(), "manager"):
        request.max_content_length = MAX_IMAGE_BYTES + UPLOAD_OVERHEAD_BYTES


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> PageResult:
    """A body past even the raised limit: the page again, saying how big a picture may be."""
    if request.endpoint == "manage_plan.upload" and has_role(current_member(), "manager"):
        return render_page(413, errors={"picture": _too_big_message()})
    from portal.security import ERROR_PAGES

    title, message = ERROR_PAGES[413]
    return render_template("error.html", title=title, message=message, status=413), 413


def _too_big_message() -> str:
    return _(
        "The picture is larger than %(mb)s MB. Export it smaller or as SVG.",
        mb=MAX_IMAGE_BYTES // 1_048_576,
    )


def render_page(
    status: int = 200,
    *,
    zone: ZoneDraft | None = None,
    sensor: SensorDraft | None = None,
    errors: dict[str, str] | None = None,
    scale: dict[str, str] | None = None,
) -> PageResult:
    """The page with the plan; ``zone``/``sensor`` are what the forms show (for a retry or an
    edit chosen with ``?zone=`` / ``?sensor=``), ``errors`` the sentence next to each form."""
    db = get_db()
    if zone is None:
        zone_id = request.args.get("zone", type=int)
        zone = ZoneDraft.of(_zone_or_404(zone_id)) if zone_id is not None else ZoneDraft()
    if sensor is None:
        sensor_id = request.args.get("sensor")
        sensor = SensorDraft.of(_sensor_or_404(sensor_id)) if sensor_id else SensorDraft()
    view = floorplan.plan_view(db)
    page = render_template(
        "manage/plan.html",
        view=view,
        health=floorplan.sensor_health(db),
        zone_names={z.id: z.name for z in view.zones},
        zone_form=zone,
        sensor_form=sensor,
        errors=errors or {},
        scale_form=scale or {},
        kinds=zone_store.SENSOR_KINDS,
        ok_seconds=floorplan.SENSOR_OK_SECONDS,
        max_mb=MAX_IMAGE_BYTES // 1_048_576,
        max_px=MAX_IMAGE_PX,
        min_scale=floorplan.MIN_METRES_PER_PX,
        max_scale=floorplan.MAX_METRES_PER_PX,
    )
    return page, status


def _zone_or_404(zone_id: int) -> zone_store.Zone:
    try:
        return zone_store.get_zone(get_db(), zone_id)
    except zone_store.InvalidZone:
        abort(404)


def _sensor_or_404(sensor_id: str) -> zone_store.Sensor:
    try:
        return zone_store.get_sensor(get_db(), sensor_id)
    except zone_store.InvalidSensor:
        abort(404)


def _done(message: str) -> Response:
    """Back to the page after a change, with what was done said at its top."""
    flash(message)
    return redirect(url_for("manage_plan.page"))


def _audit_state(item: zone_store.Zone | zone_store.Sensor | None) -> dict[str, Any] | None:
    """What the audit log keeps of a zone or a sensor (None: there is none)."""
    if isinstance(item, zone_store.Zone):
        return zone_state(item)
    return None if item is None else sensor_state(item)


def _audited(
    action: str,
    before: zone_store.Zone | zone_store.Sensor | None,
    change: Callable[[sqlite_utils.Database], Result],
) -> Result:
    """Change a zone or sensor and write its audit entry ("zone.update" on "zone:7", the states
    before and after) in one transaction, so the log never tells of a change that did not happen.
    """
    db = get_db()
    with atomic(db, action.replace(".", "_")):
        result = change(db)
        after = result if isinstance(result, zone_store.Zone | zone_store.Sensor) else None
        changed = after or before
        assert changed is not None, "a change to nothing is not audited"
        target = f"{action.partition('.')[0]}:{changed.id}"
        record(action, target, _audit_state(before), _audit_state(after))
    return result


@bp.get("", strict_slashes=False)
def page() -> PageResult:
    return render_page()


# -- the picture and its scale -----------------------------------------------------------------


@bp.post("/picture")
def upload() -> Response | PageResult:
    """Store an uploaded PNG, JPEG or SVG as the plan (replacing the one before)."""
    upload: FileStorage | None = request.files.get("picture")
    if upload is None or not upload.filename:
        return render_page(400, errors={"picture": _("Choose a floor plan picture to upload.")})
    data = upload.stream.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        return render_page(400, errors={"picture": _too_big_message()})
    db = get_db()
    try:
        with atomic(db, "plan_picture"):
            before = image_state(floorplan.get_plan_image(db))
            image = floorplan.store_plan_image(db, data)
            record("plan.picture", "floorplan", before, image_state(image))
    except InvalidPlanImage as exc:
        return render_page(400, errors={"picture": str(exc)})
    return _done(
        _(
            "Floor plan uploaded: %(w)s x %(h)s m. Draw a line of known length to set its scale.",
            w=f"{image.width_m:.1f}",
            h=f"{image.height_m:.1f}",
        )
    )


def _posted_scale(width_px: int) -> float:
    """Metres per pixel from the scale form: a drawn line, else a typed scale or picture width."""
    form = request.form
    line = [form.get(name, "").strip() for name in ("x1", "y1", "x2", "y2")]
    length = form.get("length_m", "").strip()
    if all(line) and length:
        x1, y1, x2, y2 = (parse_number(v, _("A point of the line")) for v in line)
        return floorplan.scale_from_line(
            (x1, y1), (x2, y2), parse_number(length, _("The line's length"))
        )
    if length:
        raise InvalidScale(_("Draw the line on the plan first: click its two ends."))
    if form.get("metres_per_px", "").strip():
        return parse_number(form["metres_per_px"], _("Metres per pixel"))
    if form.get("width_m", "").strip():
        width_m = parse_number(form["width_m"], _("The picture's width"))
        if width_m <= 0:
            raise InvalidScale(_("The picture's width must be more than 0 metres."))
        return width_m / width_px
    raise InvalidScale(
        _("Draw a line of known length on the plan, or type the picture's width in metres.")
    )


@bp.post("/scale")
def scale() -> Response | PageResult:
    """Set metres per pixel; zones and sensors keep their metres, the picture moves under them."""
    db = get_db()
    current = floorplan.get_plan_image(db)
    if current is None:
        return render_page(
            400, errors={"scale": _("Upload a floor plan picture before setting its scale.")}
        )
    try:
        metres_per_px = _posted_scale(current.width_px)
        with atomic(db, "plan_scale"):
            image = floorplan.set_scale(db, metres_per_px)
            record("plan.scale", "floorplan", image_state(current), image_state(image))
    except (InvalidScale, FormProblem) as exc:
        return render_page(400, errors={"scale": str(exc)}, scale=dict(request.form))
    return _done(
        _(
            "Scale set: the plan is %(w)s x %(h)s m.",
            w=f"{image.width_m:.2f}",
            h=f"{image.height_m:.2f}",
        )
    )


# -- zones -------------------------------------------------------------------------------------


@bp.post("/zones")
def create_zone() -> Response | PageResult:
    draft = ZoneDraft.posted(request.form)
    try:
        corners = parse_points(draft.points)
        zone = _audited(
            "zone.create",
            None,
            lambda db: zone_store.create_zone(db, draft.name, corners, draft.colour),
        )
    except zone_store.InvalidZone as exc:
        return render_page(400, zone=draft, errors={"zone": str(exc)})
    return _done(_("Zone “%(name)s” added.", name=zone.name))


@bp.post("/zones/<int:zone_id>")
def update_zone(zone_id: int) -> Response | PageResult:
    before = _zone_or_404(zone_id)
    draft = ZoneDraft.posted(request.form, zone_id)
    try:
        corners = parse_points(draft.points)
        zone = _audited(
            "zone.update",
            before,
            lambda db: zone_store.update_zone(
                db, zone_id, name=draft.name, polygon=corners, colour=draft.colour
            ),
        )
    except zone_store.InvalidZone as exc:
        return render_page(400, zone=draft, errors={"zone": str(exc)})
    return _done(_("Zone “%(name)s” saved.", name=zone.name))


@bp.post("/zones/<int:zone_id>/delete")
def delete_zone(zone_id: int) -> Response:
    """Remove a zone; its sensors stay on the plan without a zone."""
    before = _zone_or_404(zone_id)
    _audited("zone.delete", before, lambda db: zone_store.delete_zone(db, zone_id))
    return _done(_("Zone “%(name)s” deleted.", name=before.name))


# -- sensors -----------------------------------------------------------------------------------


@bp.post("/sensors")
def create_sensor() -> Response | PageResult:
    draft = SensorDraft.posted(request.form)
    try:
        x, y, rssi, zone_id = draft.values()
        sensor = _audited(
            "sensor.create",
            None,
            lambda db: zone_store.create_sensor(
                db, draft.sensor_id, draft.kind, x, y, zone_id, rssi
            ),
        )
    except (zone_store.InvalidSensor, FormProblem) as exc:
        return render_page(400, sensor=draft, errors={"sensor": str(exc)})
    return _done(_("Sensor “%(id)s” placed.", id=sensor.id))


@bp.post("/sensors/<path:sensor_id>/delete")
def delete_sensor(sensor_id: str) -> Response:
    before = _sensor_or_404(sensor_id)
    _audited("sensor.delete", before, lambda db: zone_store.delete_sensor(db, sensor_id))
    return _done(_("Sensor “%(id)s” removed.", id=sensor_id))


@bp.post("/sensors/<path:sensor_id>")
def update_sensor(sensor_id: str) -> Response | PageResult:
    """Move, recalibrate or reassign a sensor (its id stays: sightings are filed under it)."""
    before = _sensor_or_404(sensor_id)
    draft = SensorDraft.posted(request.form, sensor_id)
    try:
        x, y, rssi, zone_id = draft.values()
        # x and y are always given, so "by position" re-derives the zone from where it is.
        sensor = _audited(
            "sensor.update",
            before,
            lambda db: zone_store.update_sensor(
                db, sensor_id, kind=draft.kind, x=x, y=y, zone_id=zone_id, rssi_at_1m=rssi
            ),
        )
    except (zone_store.InvalidSensor, FormProblem) as exc:
        return render_page(400, sensor=draft, errors={"sensor": str(exc)})
    return _done(_("Sensor “%(id)s” saved.", id=sensor.id))
