"""The portal's own pages that are not forms: home, "You're online", store, terms, venue."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from instore import members
from portal.clients import current_session
from portal.continue_url import continue_host, safe_continue
from portal.database import get_db
from portal.forms import ActionForm

bp = Blueprint("pages", __name__)


@bp.route("/")
def home() -> Response:
    """Online phones see their status; everyone else the sign-in page."""
    if current_session() is not None:
        return redirect(url_for("pages.online"))
    return redirect(url_for("account.signin"))


@bp.route("/online")
def online() -> Response | str:
    """Shown right after sign-in, usually inside the OS captive sheet."""
    session = current_session()
    if session is None:
        return redirect(url_for("account.signin"))

    continue_url = safe_continue(request.args.get("continue"))
    return render_template(
        "captive/online.html",
        session=session,
        continue_url=continue_url,
        continue_host=continue_host(continue_url),
        signout_form=ActionForm(),
    )


@bp.route("/store")
@login_required
def store() -> str:
    """The member's page for this store while they shop."""
    consents = members.current_consents(get_db(), current_user.id)
    return render_template(
        "captive/store.html",
        location_on=consents.get("location", {}).get("granted", False),
        online=current_session() is not None,
    )


@bp.route("/terms")
def terms() -> str:
    version = current_app.config["INSTORE"]["portal"]["terms_version"]
    return render_template("captive/terms.html", version=version)


@bp.route("/venue")
def venue() -> str:
    """RFC 8908 venue-info-url: who runs this WiFi and where."""
    return render_template("captive/venue.html", store=current_app.config["INSTORE"]["store"])
