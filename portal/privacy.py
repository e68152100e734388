"""A member's privacy pages: "download my data" and "delete my account".

Both are thin: ``instore.member_data`` gathers and erases, from what every package declares.
Deleting asks for the password again, so a phone left signed in on a counter cannot be used to
erase someone's account.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, PasswordField
from wtforms.validators import DataRequired, Length

from instore import member_data, members
from portal.account import nudge_gatekeeper
from portal.database import get_db
from portal.forms import MAX_PASSWORD

log = logging.getLogger(__name__)

bp = Blueprint("privacy", __name__)

# The download's file name stem; the member's id is not in it, as the file may be shared.
DOWNLOAD_NAME = "my-store-data"


class DeleteAccountForm(FlaskForm):
    """The password again, as the confirmation that this is the member and they mean it."""

    password = PasswordField(
        _l("Your password, to confirm"),
        validators=[
            DataRequired(_l("Enter your password to delete your account.")),
            Length(max=MAX_PASSWORD, message=_l("That password is too long.")),
        ],
    )
    keep_posts = BooleanField(
        _l(
            "Leave my comments, reviews and suggestions up, signed “deleted member” "
            "(otherwise they are erased too)"
        )
    )


def _uploads_dir() -> Path:
    """Where members' uploaded files live (beside the database)."""
    return current_app.config["INSTORE"].var_dir / member_data.UPLOADS_DIRNAME


def _password_matches(member: members.Member, password: str) -> bool:
    row = (
        get_db()
        .conn.execute("SELECT password_hash FROM credentials WHERE member_id = ?", (member.id,))
        .fetchone()
    )
    return members.verify_password(row[0] if row else None, password)


@bp.route("/account/data")
@login_required
def data() -> str:
    """What the store keeps about the member, and the two ways to download it."""
    return render_template("account/privacy.html")


def _download(body: bytes | str, mimetype: str, extension: str) -> Response:
    response = current_app.response_class(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{DOWNLOAD_NAME}.{extension}"'
    # The file is the member's personal data: no shared cache may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account/data.json")
@login_required
def data_json() -> Response:
    """Everything stored about the member, as one JSON file."""
    member: members.Member = current_user.member
    log.info("data exported", extra={"member": member.id, "format": "json"})
    return _download(member_data.export_json(get_db(), member), "application/json", "json")


@bp.route("/account/data.zip")
@login_required
def data_zip() -> Response:
    """The JSON file and the member's uploads, in one zip."""
    member: members.Member = current_user.member
    log.info("data exported", extra={"member": member.id, "format": "zip"})
    archive = member_data.export_zip(get_db(), member, _uploads_dir())
    return _download(archive, "application/zip", "zip")


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
def delete() -> Response | str | tuple[str, int]:
    """Confirm with the password, then erase the account, revoke the WiFi and sign out."""
    member: members.Member = current_user.member
    form = DeleteAccountForm()
    if member.role != "shopper":
        # A console account's erasure could lock the store out of its console; a manager or
        # the shell (``instore member erase``) does it, after giving the role away.
        form.password.errors = [
            _("Staff accounts cannot be deleted here. Ask a manager to remove your account.")
        ]
        return render_template("account/privacy_delete.html", form=form), 400
    if form.validate_on_submit():
        if _password_matches(member, form.password.data or ""):
            report = member_data.erase_member(
                get_db(), member, _uploads_dir(), keep_posts=bool(form.keep_posts.data)
            )
            if report.sessions_revoked:
                nudge_gatekeeper()
            logout_user()
            log.info("account deleted", extra={"sessions": len(report.sessions_revoked)})
            flash(_("Your account and your data are deleted, and this phone is off the WiFi."))
            return redirect(url_for("account.signin"))
        form.password.errors = [_("That password is not right. Your account is unchanged.")]
    if form.is_submitted():
        return render_template("account/privacy_delete.html", form=form), 400
    return render_template("account/privacy_delete.html", form=form)
