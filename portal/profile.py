"""Profiles: a member edits their own (``/profile``) and opens other members' (``/members/<id>``).

The rules are in ``community.profiles``; this page adds what a person must and must not see:

- Another member's profile across a block, either way, is the same 404 as an id that does not
  exist, so a blocked member cannot tell they were blocked, nor probe which ids are members.
- A bio or picture that is not ``visible`` (held for review, hidden after reports, rejected)
  shows to others as the display name alone; the member sees their own with a label saying why.
- The picture upload is the one request here allowed to be large: the app's 16 KB body limit is
  raised for that endpoint only, and only for a signed-in member, before the CSRF check reads
  the body. Anything past the raised limit gets the page again with the size to keep under.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response
from wtforms import SelectChoice, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from community import friends, images, profiles
from community.catalogue import categories
from community.screening import Limits, Refused
from instore import members
from instore.clock import utcnow
from instore.member_data import UPLOADS_DIRNAME
from portal.database import get_db
from portal.forms import ActionForm

log = logging.getLogger(__name__)

bp = Blueprint("profile", __name__)

# Room for the multipart framing and the CSRF field around the largest picture accepted.
UPLOAD_OVERHEAD_BYTES = 64 * 1024
# The endpoint whose request may carry a picture.
AVATAR_ENDPOINT = "profile.avatar"

PageResult = tuple[str, int]


class ProfileForm(FlaskForm):
    """Name, bio and interests, saved together; the interests' choices are the categories."""

    display_name = StringField(
        _l("Your name, as other members see it"),
        validators=[
            DataRequired(_l("Enter a name.")),
            Length(
                max=profiles.MAX_DISPLAY_NAME,
                message=_l("Keep your name under 60 characters."),
            ),
        ],
    )
    bio = TextAreaField(
        _l("About you"),
        validators=[
            Length(max=profiles.MAX_BIO, message=_l("Keep your bio under 500 characters."))
        ],
    )
    interests = SelectMultipleField(
        _l("What you are interested in"),
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


def _me() -> members.Member:
    member: members.Member = current_user.member
    return member


def _uploads_dir() -> Path:
    """Where members' uploaded files live (beside the database)."""
    return Path(current_app.config["INSTORE"].var_dir) / UPLOADS_DIRNAME


def _limits() -> Limits:
    return Limits.from_config(current_app.config["INSTORE"]["community"])


def _profile_form(formdata: Any = None) -> ProfileForm:
    """The form with its choices; filled from ``formdata`` (the posted form) or left empty.

    Never from the request by default: the picture upload's error page must not read (or
    re-read, past the size limit) a body that is not this form's.
    """
    form = ProfileForm(formdata=formdata)
    form.interests.choices = [SelectChoice(c, c.capitalize()) for c in categories(get_db())]
    return form


def _too_big_message() -> str:
    return _(
        "The picture is larger than %(mb)s MB. Choose a smaller one.",
        mb=images.MAX_UPLOAD_BYTES // 1_048_576,
    )


@bp.url_value_preprocessor
def _allow_picture_upload(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Raise the body limit for the picture upload, for signed-in members only.

    A URL value preprocessor runs before every ``before_request`` function, including the
    app-wide CSRF check that reads the form, so the raised limit holds when the body is read.
    """
    if endpoint == AVATAR_ENDPOINT and current_user.is_authenticated:
        request.max_content_length = images.MAX_UPLOAD_BYTES + UPLOAD_OVERHEAD_BYTES


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> PageResult:
    """A body past even the raised limit: the page again, saying how big a picture may be."""
    if request.endpoint == AVATAR_ENDPOINT and current_user.is_authenticated:
        return _edit_page(avatar_error=_too_big_message(), status=413)
    from portal.security import ERROR_PAGES

    title, message = ERROR_PAGES[413]
    return render_template("error.html", title=title, message=message, status=413), 413


def _edit_page(
    form: ProfileForm | None = None, avatar_error: str | None = None, status: int = 200
) -> PageResult:
    """The edit page; a form that failed is passed in so its errors show beside its fields."""
    db = get_db()
    me = _me()
    profile = profiles.get_profile(db, me.id)
    if profile is None:
        abort(404)  # erased meanwhile
    if form is None:
        form = _profile_form()
        form.display_name.data = profile.display_name
        form.bio.data = profile.bio
        form.interests.data = profiles.interests(db, me.id)
    page = render_template(
        "community/profile.html",
        profile=profile,
        form=form,
        avatar_error=avatar_error,
        max_picture_mb=images.MAX_UPLOAD_BYTES // 1_048_576,
    )
    return page, status


@bp.route("/profile", methods=["GET"])
@login_required
def edit() -> PageResult:
    """The member's own profile: name, bio, picture and interests."""
    return _edit_page()


@bp.route("/profile", methods=["POST"])
@login_required
def save() -> Response | PageResult:
    """Save name, bio and interests; a refused bio keeps what the member typed, with the reason."""
    form = _profile_form(request.form)
    if not form.validate_on_submit():
        return _edit_page(form, status=400)
    try:
        profiles.save_profile(
            get_db(),
            _me().id,
            display_name=form.display_name.data or "",
            bio=form.bio.data or "",
            chosen_interests=form.interests.data or [],
            now=utcnow(),
            limits=_limits(),
        )
    except Refused as exc:
        form.bio.errors = [str(exc)]
        return _edit_page(form, status=400)
    except profiles.ProfileError as exc:
        form.display_name.errors = [str(exc)]
        return _edit_page(form, status=400)
    flash(_("Your profile is saved."))
    return redirect(url_for("profile.edit"))


@bp.route("/profile/avatar", methods=["POST"])
@login_required
def avatar() -> Response | PageResult:
    """Replace the member's picture with an upload, re-encoded and stripped of its metadata."""
    if not ActionForm().validate_on_submit():
        abort(400)  # CSRFProtect answers first; this keeps the check if it is ever exempted
    upload: FileStorage | None = request.files.get("picture")
    if upload is None or not upload.filename:
        return _edit_page(avatar_error=_("Choose a picture to upload."), status=400)
    data = upload.stream.read(images.MAX_UPLOAD_BYTES + 1)
    try:
        profiles.set_avatar(get_db(), _uploads_dir(), _me().id, data, utcnow())
    except images.ImageRefused as exc:
        return _edit_page(avatar_error=str(exc), status=400)
    flash(_("Your picture is saved."))
    return redirect(url_for("profile.edit"))


@bp.route("/profile/avatar/remove", methods=["POST"])
@login_required
def remove_avatar() -> Response:
    """Take the picture down; the profile shows the member's initial instead."""
    if not ActionForm().validate_on_submit():
        abort(400)
    profiles.remove_avatar(get_db(), _uploads_dir(), _me().id, utcnow())
    flash(_("Your picture is removed."))
    return redirect(url_for("profile.edit"))


@bp.route("/members/<int:member_id>")
@login_required
def member(member_id: int) -> str:
    """A member's public profile: name, picture, bio and the boards the viewer may open."""
    db = get_db()
    me = _me()
    profile = profiles.viewable_profile(db, member_id, me.id)
    if profile is None:
        abort(404)
    own = member_id == me.id
    return render_template(
        "community/profile_member.html",
        profile=profile,
        own=own,
        boards=profiles.visible_boards(db, member_id, me.id),
        friends_now=not own and member_id in friends.mutual_friends(db, me.id),
    )
