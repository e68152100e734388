"""The portal's own pages that are not forms: home, "You're online", store, terms, venue."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from instore import members, sessions
from instore import terms as wifi_terms
from instore.clock import from_iso, to_iso, utcnow
from offers.notifications import recent_notifications
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
        member=shopping_member(session),
        ends=from_iso(session.expires_at),
        continue_url=continue_url,
        continue_host=continue_host(continue_url),
        signout_form=ActionForm(),
    )


def shopping_member(session: sessions.ClientSession | None) -> members.Member | None:
    """The signed-in member, else the member whose phone this WiFi session belongs to.

    The OS captive sheet keeps its cookies to itself: when the shopper later opens the store page
    in their browser, the sign-in cookie is not there, but the phone (MAC and IP together) is still
    the one they signed in. Only read-only shopping pages use this; the account page, which shows
    email and loyalty number, still needs a real sign-in.
    """
    if current_user.is_authenticated:
        member: members.Member = current_user.member
        return member
    if session is None or session.member_id is None:
        return None
    return members.get_member(get_db(), session.member_id)


@bp.route("/store")
def store() -> Response | str:
    """The member's page for this store while they shop."""
    session = current_session()
    member = shopping_member(session)
    if member is None:
        return redirect(url_for("account.signin"))
    db = get_db()
    consents = members.current_consents(db, member.id)
    notifications = recent_notifications(db, member.id)
    return render_template(
        "captive/store.html",
        member=member,
        location_on=consents.get("location", {}).get("granted", False),
        online=session is not None,
        notifications=notifications,  # newest first; the live feed adds newer ones on top
        last_notification_id=max((n.id for n in notifications), default=0),
        now_iso=to_iso(utcnow()),  # stored times sort as text: expired offers compare lower
        demo_controls=current_app.config["INSTORE"]["portal"]["demo_controls"],
    )


@bp.route("/terms")
def terms() -> str:
    default = current_app.config["INSTORE"]["portal"]["terms_version"]
    current = wifi_terms.current_terms(get_db(), default)
    return render_template("captive/terms.html", version=current.version, terms=current)


@bp.route("/venue")
def venue() -> str:
    """RFC 8908 venue-info-url: who runs this WiFi and where."""
    return render_template("captive/venue.html", store=current_app.config["INSTORE"]["store"])
