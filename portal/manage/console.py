"""The console's front door: its own sign-in, the home page and sign-out.

Staff sign in here rather than on the WiFi sign-in, because a manager's laptop is not a phone to
put online and staff do not accept shoppers' consents. The form, its CSRF token and its rate limits
(per IP and per account, like the shoppers' sign-in) are the same.
"""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user
from werkzeug.wrappers import Response

from instore import members
from portal.auth import PortalUser
from portal.database import get_db
from portal.forms import ActionForm, SignInForm
from portal.manage.access import CONSOLE_ROLES, current_member, forbidden, has_role, safe_next
from portal.moderation import refusal_page

log = logging.getLogger(__name__)

bp = Blueprint("manage", __name__, url_prefix="/manage")


@bp.route("/")
def home() -> Response | str | tuple[str, int]:
    """Where each role starts: staff on the live store, managers and admins on the overview."""
    member = current_member()
    if member is None:
        return redirect(url_for("manage.signin"))
    if not has_role(member, "staff"):
        return forbidden("staff")
    return render_template("manage/home.html", member=member)


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Response | str | tuple[str, int]:
    """Email or loyalty number + password; only staff, managers and admins get in."""
    form = SignInForm()
    next_url = safe_next(request.values.get("next"))
    if form.validate_on_submit():
        member = members.authenticate(
            get_db(), form.identifier.data or "", form.password.data or ""
        )
        if member is None:
            log.info("console sign-in failed", extra={"ip": request.remote_addr})
            form.password.errors = [
                _(
                    "That email or loyalty number and password do not match. "
                    "Check them and try again."
                )
            ]
        elif member.role not in CONSOLE_ROLES:
            # The password was right, so saying why reveals nothing the person does not know.
            form.password.errors = [
                _("This account is a shopper's. Ask the store manager for a staff account.")
            ]
        elif (refusal := refusal_page(member)) is not None:
            return refusal  # suspended or banned: why, and how to appeal
        else:
            login_user(PortalUser(member), remember=False)
            log.info("console signed in", extra={"member": member.id, "role": member.role})
            return redirect(next_url or url_for("manage.home"))
    return render_template("manage/signin.html", form=form, next_url=next_url or "")


@bp.route("/signout", methods=["POST"])
@login_required
def signout() -> Response:
    form = ActionForm()
    if form.validate_on_submit():
        logout_user()
    return redirect(url_for("manage.signin"))
