"""The floor plan picture, for every console page that draws the plan (staff's live store too).

Its own blueprint because it is gated lower than the plan editor: staff may see the plan, only
managers may change it. An uploaded SVG is a document that could carry script, so it is sent with
a CSP that allows no script and no outside loads at all, even when opened on its own in a tab;
nosniff stops a browser from reading any picture as something else.
"""

from __future__ import annotations

from flask import Blueprint, abort, request
from werkzeug.wrappers import Response

from portal.database import get_db
from portal.manage.access import require_role
from presence.floorplan import get_plan_image_bytes
from presence.floorplan_image import SVG

bp = Blueprint("manage_plan_image", __name__)
require_role(bp, "staff")

# With ``?v=<sha256 prefix>`` the URL changes with the picture, so it can be kept a day; without
# it, a minute, so a re-upload shows up on the live store's next refresh.
VERSIONED_MAX_AGE_S = 86_400
UNVERSIONED_MAX_AGE_S = 60
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@bp.get("/manage/plan-image")
def image() -> Response:
    stored = get_plan_image_bytes(get_db())
    if stored is None:
        abort(404)
    meta, data = stored
    mime = meta.mime
    response = Response(data, mimetype=mime)
    response.set_etag(meta.sha256)
    versioned = request.args.get("v", "")
    max_age = (
        VERSIONED_MAX_AGE_S
        if versioned and meta.sha256.startswith(versioned)
        else UNVERSIONED_MAX_AGE_S
    )
    # private: the plan is the store's own; no shared cache between the LAN and the box keeps it.
    response.headers["Cache-Control"] = f"private, max-age={max_age}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if mime == SVG:
        response.headers["Content-Security-Policy"] = SVG_CSP
    return response.make_conditional(request)
