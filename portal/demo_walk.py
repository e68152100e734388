"""The demo's "walk my phone to zone…" control, which exists only with ``[portal] demo_controls``.

The demo store has no radios: the simulator walks phones around the floor plan. This control lets
a member on the store page send their own phone to a zone and watch what the real pipeline does
(presence → zone events → offers and friend notes). The portal and the presence daemon share only
the database, so the request is a row (``presence.walks``) that the simulator takes within a
second or so. Off the demo the route is not even registered: ``/demo/walk`` is a 404 there.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import IntegerField
from wtforms.validators import InputRequired

from instore import members
from portal.clients import current_session
from portal.database import get_db
from portal.pages import shopping_member
from presence.walks import linked_macs, request_walk
from presence.zones import InvalidZone, get_zone, list_zones

log = logging.getLogger(__name__)

bp = Blueprint("demo_walk", __name__)


class DemoWalkForm(FlaskForm):
    """Which zone to walk to; Flask-WTF adds and checks the CSRF token."""

    zone_id = IntegerField(validators=[InputRequired()])


def demo_controls_on() -> bool:
    return bool(current_app.config["INSTORE"]["portal"]["demo_controls"])


@bp.app_context_processor
def demo_walk_context() -> dict[str, Any]:
    """``demo_controls`` and the zones (id, name) for the store page's control, in the demo only:
    elsewhere templates get nothing, and no query runs."""
    if not demo_controls_on():
        return {}
    try:
        zones = [(zone.id, zone.name) for zone in list_zones(get_db())]
    except sqlite3.Error:
        # Also used while rendering error pages: a broken database must not break those too.
        log.exception("zones for the demo walk control not read")
        zones = []
    return {"demo_controls": True, "demo_zones": zones}


def _no_such_zone() -> tuple[str, int]:
    return (
        render_template(
            "error.html",
            title=_("No such area"),
            message=_(
                "This store has no area like that. Go back, reload the page and pick an area "
                "from the list."
            ),
            status=400,
        ),
        400,
    )


def walk() -> Response | tuple[str, int]:
    """Ask the simulator to walk the shopping member's phone to the chosen zone."""
    member = shopping_member(current_session())
    if member is None:
        return redirect(url_for("account.signin"))
    form = DemoWalkForm()
    if not form.validate_on_submit() or form.zone_id.data is None:
        return _no_such_zone()
    db = get_db()
    try:
        zone = get_zone(db, form.zone_id.data)
    except InvalidZone:
        return _no_such_zone()
    if not linked_macs(db, member.id):
        flash(_("No phone is linked to your account yet. Sign in to the store WiFi with it first."))
        return redirect(url_for("pages.store"))
    request_walk(db, member.id, zone.id)
    log.info("demo walk requested", extra={"member_id": member.id, "zone_id": zone.id})
    location = members.current_consents(db, member.id).get("location", {})
    if location.get("granted"):
        flash(
            _(
                "Your phone is walking to %(zone)s. Offers for that area appear on this page "
                "once it gets there.",
                zone=zone.name,
            )
        )
    else:
        flash(
            _(
                "Your phone is walking to %(zone)s, but you have not allowed us to use where you "
                "are in the store, so no offers for that area will appear.",
                zone=zone.name,
            )
        )
    return redirect(url_for("pages.store"))


@bp.record_once
def _add_routes(state: BlueprintSetupState) -> None:
    """The control exists only in the demo; elsewhere its address is unknown (404), before any
    CSRF check, so a real box does not even reveal that it has one."""
    if state.app.config["INSTORE"]["portal"]["demo_controls"]:
        state.add_url_rule("/demo/walk", view_func=walk, methods=["POST"])
