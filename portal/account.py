"""Sign up, sign in, consents, sign out: how a shopper gets online with their loyalty account."""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from community.sanctions import is_banned
from instore import events, members, sessions, terms
from instore.nudge import send_nudge
from portal.auth import PortalUser
from portal.clients import current_client, current_session
from portal.continue_url import safe_continue
from portal.database import get_db
from portal.forms import ActionForm, ConsentsForm, PreferencesForm, SignInForm, SignUpForm
from portal.moderation import refusal_page

log = logging.getLogger(__name__)

bp = Blueprint("account", __name__)

OPTIONAL_CONSENTS = tuple(
    kind for kind in members.CONSENT_KINDS if kind not in members.REQUIRED_CONSENTS
)


def _portal_setting(key: str) -> int | str:
    value: int | str = current_app.config["INSTORE"]["portal"][key]
    return value


def nudge_gatekeeper() -> None:
    """Tell the gatekeeper the sessions table changed, so the firewall follows at once."""
    send_nudge(current_app.config["INSTORE"]["gateway"]["nudge_socket"])


def url_with_continue(endpoint: str, continue_url: str | None) -> str:
    """A URL for ``endpoint`` that carries the checked continue URL along, if there is one."""
    values: dict[str, Any] = {"continue": continue_url} if continue_url else {}
    return url_for(endpoint, **values)


def _continue_arg() -> str | None:
    return safe_continue(request.values.get("continue") or request.values.get("continue_url"))


def go_online(member: members.Member, continue_url: str | None) -> Response | tuple[str, int]:
    """Authorize this phone on the WiFi for the member and show the online page."""
    client = current_client()
    if client.mac is None:
        log.warning("client MAC unknown", extra={"ip": client.ip, "member": member.id})
        return render_template("account/reconnect.html"), 409
    db = get_db()
    session = sessions.authorize_client(
        db,
        mac=client.mac,
        ip=client.ip,
        member_id=member.id,
        hours=int(_portal_setting("session_hours")),
        idle_minutes=int(_portal_setting("idle_minutes")),
    )
    members.link_device(db, client.mac, member.id)
    nudge_gatekeeper()
    events.append(db, "portal.login", {"member_id": member.id, "session_id": session.id})
    log.info("client authorized", extra={"member": member.id, "session": session.id})
    return redirect(url_with_continue("pages.online", continue_url))


def terms_version() -> str:
    """The WiFi terms in force: the newest published in the console, else the configured one."""
    return terms.current_version(get_db(), str(_portal_setting("terms_version")))


def _needs_consents(member: members.Member) -> bool:
    return not members.has_accepted_terms(get_db(), member.id, terms_version())


def _after_sign_in(member: members.Member, continue_url: str | None) -> Response | tuple[str, int]:
    if _needs_consents(member):
        return redirect(url_with_continue("account.consents", continue_url))
    return go_online(member, continue_url)


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Response | str | tuple[str, int]:
    """Email or loyalty number + password. Unknown account and wrong password read the same."""
    form = SignInForm()
    continue_url = _continue_arg()
    if request.method == "GET":
        form.continue_url.data = continue_url or ""
    if form.validate_on_submit():
        member = members.authenticate(
            get_db(), form.identifier.data or "", form.password.data or ""
        )
        if member is not None:
            refusal = refusal_page(member)  # suspended or banned: why, and how to appeal
            if refusal is not None:
                return refusal
            login_user(PortalUser(member), remember=bool(form.remember.data))
            log.info("signed in", extra={"member": member.id})
            return _after_sign_in(member, continue_url)
        log.info("sign-in failed", extra={"ip": request.remote_addr})
        form.password.errors = [
            _("That email or loyalty number and password do not match. Check them and try again.")
        ]
    return render_template(
        "account/signin.html", form=form, action_form=ActionForm(), continue_url=continue_url
    )


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Response | str:
    """Create a loyalty account. Without email we cannot hide that an identifier is taken, so
    sign-up is rate-limited per IP and per identifier instead."""
    form = SignUpForm()
    continue_url = _continue_arg()
    if request.method == "GET":
        form.continue_url.data = continue_url or ""
    if form.validate_on_submit():
        kind, value = members.normalize_identifier(form.identifier.data or "")
        if is_banned(get_db(), value):
            form.identifier.errors = [
                _("This email or loyalty number cannot be used to sign up here.")
            ]
            return render_template("account/signup.html", form=form, continue_url=continue_url)
        try:
            member = members.create_member(
                get_db(),
                display_name=(form.display_name.data or "").strip(),
                password=form.password.data or "",
                email=value if kind == "email" else None,
                loyalty_number=value if kind == "loyalty" else None,
                locale=request.accept_languages.best_match(["en", "es"]),
            )
        except members.AlreadyRegistered:
            form.identifier.errors = [
                _("That email or loyalty number already has an account. Sign in instead.")
            ]
        else:
            events.append(get_db(), "member.created", {"member_id": member.id})
            login_user(PortalUser(member), remember=True)
            log.info("member created", extra={"member": member.id})
            return redirect(url_with_continue("account.consents", continue_url))
    return render_template("account/signup.html", form=form, continue_url=continue_url)


@bp.route("/connect", methods=["POST"])
@login_required
def connect() -> Response | tuple[str, int]:
    """One tap for a shopper this phone already remembers."""
    form = ActionForm()
    if not form.validate_on_submit():
        return redirect(url_for("account.signin"))
    member: members.Member = current_user.member
    return _after_sign_in(member, _continue_arg())


@bp.route("/consents", methods=["GET", "POST"])
@login_required
def consents() -> Response | str | tuple[str, int]:
    """WiFi terms (required) and each optional consent, asked separately, then online."""
    member: members.Member = current_user.member
    db = get_db()
    form = ConsentsForm()
    continue_url = _continue_arg()
    if request.method == "GET":
        current = members.current_consents(db, member.id)
        for kind in OPTIONAL_CONSENTS:
            getattr(form, kind).data = current.get(kind, {}).get("granted", False)
        form.continue_url.data = continue_url or ""
    if form.validate_on_submit():
        choices = {kind: bool(getattr(form, kind).data) for kind in members.CONSENT_KINDS}
        members.record_consents(db, member.id, choices, terms_version())
        events.append(db, "member.consents", {"member_id": member.id, **choices})
        return go_online(member, continue_url)
    return render_template(
        "account/consents.html",
        form=form,
        terms_version=terms_version(),
        continue_url=continue_url,
    )


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Response | str:
    """Change optional consents at any time; the WiFi terms stay accepted while signed in."""
    member: members.Member = current_user.member
    db = get_db()
    form = PreferencesForm()
    if form.validate_on_submit():
        current = members.current_consents(db, member.id)
        changed = {
            kind: bool(getattr(form, kind).data)
            for kind in OPTIONAL_CONSENTS
            if bool(getattr(form, kind).data) != current.get(kind, {}).get("granted", False)
        }
        if changed:
            members.record_consents(db, member.id, changed, terms_version())
            events.append(db, "member.consents", {"member_id": member.id, **changed})
        flash(_("Your choices are saved."))
        return redirect(url_for("account.account"))
    current = members.current_consents(db, member.id)
    if request.method == "GET":
        for kind in OPTIONAL_CONSENTS:
            getattr(form, kind).data = current.get(kind, {}).get("granted", False)
    return render_template(
        "account/account.html",
        form=form,
        member=member,
        consents=current,
        signout_form=ActionForm(),
        optional=OPTIONAL_CONSENTS,
    )


@bp.route("/signout", methods=["POST"])
def signout() -> Response:
    """Sign out and take this phone off the WiFi."""
    form = ActionForm()
    if form.validate_on_submit():
        session = current_session()
        if session is not None:
            sessions.revoke_session(get_db(), session.id, "signed out")
            nudge_gatekeeper()
        if current_user.is_authenticated:
            log.info("signed out", extra={"member": current_user.id})
        logout_user()
        flash(_("You are signed out, and this phone is off the store WiFi."))
    return redirect(url_for("account.signin"))
