"""RFC 8908 Captive Portal API: lets the OS ask "am I captive?" instead of guessing from probes.

DHCP option 114 (RFC 8910) tells phones this URL. The answer is per client (by IP and MAC), so
it must not be cached by anything in between.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, url_for

from instore.clock import from_iso, utcnow
from portal.clients import current_session

bp = Blueprint("api", __name__, url_prefix="/api")

CAPTIVE_JSON = "application/captive+json"


def _absolute(endpoint: str) -> str:
    public_url = current_app.config["INSTORE"]["portal"]["public_url"].rstrip("/")
    return public_url + url_for(endpoint)


@bp.route("/captive")
def captive() -> Response:
    session = current_session()
    body: dict[str, object] = {
        "captive": session is None,
        "user-portal-url": _absolute("account.signin"),
        "venue-info-url": _absolute("pages.venue"),
    }
    if session is not None:
        now = utcnow()
        # The session's hard end; the idle deadline moves with activity, so it is not announced.
        ends = from_iso(session.expires_at)
        body["seconds-remaining"] = max(0, int((ends - now).total_seconds()))
        # Extending means signing in again through the portal, which a member can always do.
        body["can-extend-session"] = True
    response = Response(json.dumps(body), content_type=CAPTIVE_JSON)
    response.headers["Cache-Control"] = "private"
    return response
