"""The member's side of moderation: reporting an item, the decisions about them, their appeals.

- "Report" beside anything a member wrote opens ``/report/<kind>/<id>``: why (spam, offensive,
  harassment, other) and an optional note. An item the member cannot see, or their own, is a 404
  exactly like one that does not exist. Enough members' reports hide the item, and its author is
  told (a 'moderation' note on their store page linking to ``/account/moderation``).
- ``/account/moderation`` lists the member's items others cannot see now and every decision about
  them, each with its one appeal.
- A suspended or banned member cannot sign in, so the sign-in pages call ``refusal_page``: with the
  right password they are told why and until when, and may appeal there. The form carries a
  signed, short-lived token naming them and the decision; their password was the proof, and the
  appeals table's one-per-decision rule makes the token single-use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response
from wtforms import HiddenField, RadioField, SelectChoice, TextAreaField
from wtforms.validators import InputRequired, Length

from community import appeals, moderation, moderation_queue, sanctions
from community.content import HELD, HIDDEN, REJECTED
from community.schema_social import FLAG_REASONS
from instore import members
from instore.clock import utcnow
from instore.db import transaction
from portal.clients import current_session
from portal.community_notes import notify
from portal.database import get_db
from portal.pages import shopping_member

bp = Blueprint("moderation", __name__)

# How long the appeal form on a sign-in refusal stays good: time to write a paragraph, and a
# copied page goes stale the same day.
APPEAL_TOKEN_SECONDS = 60 * 60
APPEAL_TOKEN_SALT = "instore-moderation-appeal"  # noqa: S105 - a namespace, not a secret
# A "back" link is a path on this site, never a long or odd one.
MAX_BACK = 512

KIND_NAMES: dict[str, Any] = {
    "board": _l("board"),
    "comment": _l("comment"),
    "review": _l("review"),
    "suggestion": _l("suggestion"),
    "profile": _l("profile"),
}
REASON_LABELS: dict[str, Any] = {
    "spam": _l("Spam or advertising"),
    "offensive": _l("Offensive"),
    "harassment": _l("Harassment or bullying"),
    "other": _l("Something else"),
    # The system's reasons, shown to staff in the queue.
    "watched_word": _l("Watched word"),
    "machine": _l("Machine score"),
}
STATUS_LABELS: dict[str, Any] = {
    HELD: _l("Waiting for a moderator"),
    HIDDEN: _l("Hidden after reports — you can edit it"),
    REJECTED: _l("Removed by a moderator"),
}
ACTION_LABELS: dict[str, Any] = {
    "warn": _l("Warning"),
    "reject": _l("Removed"),
    "edit": _l("Edited by a moderator"),
    "silence": _l("Read-only"),
    "suspend": _l("Suspended"),
    "ban": _l("Banned"),
    "approve": _l("Approved"),
    "lift": _l("Lifted"),
    "appeal_upheld": _l("Appeal upheld"),
    "appeal_overturned": _l("Appeal overturned"),
}
# Where the author edits each kind of item, for the link beside it: (endpoint, {argument: row
# column}). Left out when the feature's page is not registered.
ITEM_PAGES: dict[str, tuple[str, dict[str, str]]] = {
    "board": ("boards.edit", {"board_id": "id"}),
    "comment": ("boards.edit_comment", {"board_id": "board_id", "comment_id": "id"}),
    "review": ("feedback.product", {"product_id": "product_id"}),
    "suggestion": ("feedback.suggestion", {"suggestion_id": "id"}),
    "profile": ("profile.edit", {}),
}


class Labels:
    """The words templates show for kinds, statuses, actions and reasons (``labels`` in them)."""

    kind = staticmethod(lambda kind: kind_name(kind))
    status = STATUS_LABELS
    action = ACTION_LABELS
    reason = REASON_LABELS


class FlagForm(FlaskForm):
    reason = RadioField(
        _l("Why are you reporting it?"),
        choices=[SelectChoice(reason, REASON_LABELS[reason]) for reason in FLAG_REASONS],
        validators=[InputRequired(_l("Choose why you are reporting it."))],
    )
    note = TextAreaField(
        _l("Anything a moderator should know (optional)"),
        validators=[
            Length(max=moderation.MAX_NOTE, message=_l("Keep the note under 500 characters."))
        ],
    )
    back = HiddenField()


class AppealForm(FlaskForm):
    body = TextAreaField(
        _l("Why should the decision change?"),
        validators=[
            InputRequired(_l("Write why the decision should change.")),
            Length(max=appeals.MAX_APPEAL, message=_l("Keep your appeal under 1000 characters.")),
        ],
    )


class SignedOutAppealForm(AppealForm):
    token = HiddenField()


def kind_name(kind: str) -> str:
    return str(KIND_NAMES.get(kind, kind))


def item_link(item: moderation.Item) -> str | None:
    """Where the member edits the item, when that page exists."""
    endpoint, arguments = ITEM_PAGES[item.kind]
    try:
        return url_for(endpoint, **{name: item.row[column] for name, column in arguments.items()})
    except BuildError:
        return None


def tell_member(member_id: int | None, title: Callable[[], str], body: str) -> None:
    """A 'moderation' note for the member, in their language, linking to their moderation page.

    ``title`` is called in the member's language. The caller owns the transaction.
    """
    if member_id is None:
        return
    notify(
        get_db(),
        member_id,
        "moderation",
        title=title,
        body=body,
        link=url_for("moderation.notices"),
    )


def _local_path(raw: str | None) -> str | None:
    """``raw`` as a path on this site (from the Referer or the form), or None."""
    if not raw or len(raw) > MAX_BACK or any(ord(ch) < 0x21 or ch == "\\" for ch in raw):
        return None
    parts = urlsplit(raw)
    if parts.netloc and parts.netloc != request.host:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if not path.startswith("/") or path.startswith("//"):
        return None
    return path


def _member() -> members.Member:
    member = shopping_member(current_session())
    if member is None:
        abort(redirect(url_for("account.signin")))
    return member


def _report_page(
    item: moderation.Item, form: FlagForm | None, error: str | None, status: int
) -> tuple[str, int]:
    return (
        render_template(
            "community/report.html",
            item=item,
            kind=kind_name(item.kind),
            form=form,
            error=error,
        ),
        status,
    )


@bp.route("/report/<kind>/<int:item_id>", methods=["GET", "POST"])
def flag(kind: str, item_id: int) -> Response | tuple[str, int]:
    """Report an item to the moderators, once."""
    member = _member()
    db = get_db()
    found = moderation.get_item(db, kind, item_id)
    if found is not None and moderation.has_flagged(db, member.id, kind, item_id):
        return _report_page(found, None, None, 200)  # "you reported this", even once it is hidden
    try:
        item = moderation.flaggable_item(db, member.id, kind, item_id)
    except moderation.ItemNotFound:
        abort(404)
    form = FlagForm()
    if request.method == "GET":
        form.back.data = _local_path(request.referrer) or ""
    if not form.validate_on_submit():
        return _report_page(item, form, None, 400 if form.is_submitted() else 200)
    threshold = int(current_app.config["INSTORE"]["community"]["flags_to_hide"])
    try:
        with transaction(db):
            outcome = moderation.flag_item(
                db,
                member.id,
                kind,
                item_id,
                form.reason.data or "",
                form.note.data or "",
                utcnow(),
                threshold,
            )
            if outcome.hidden:
                tell_member(
                    item.author_id,
                    lambda: _(
                        "Your %(kind)s is hidden after reports. You can edit it.",
                        kind=kind_name(kind),
                    ),
                    item.text,
                )
    except moderation.ItemNotFound:
        abort(404)
    except moderation.AlreadyFlagged:
        return _report_page(item, None, None, 200)  # a second tab sent it meanwhile
    except moderation.TooManyFlags:
        error = _("You have reported a lot in the last hour. Try again later.")
        return _report_page(item, form, error, 429)
    except moderation.ModerationError as exc:
        return _report_page(item, form, str(exc), 400)
    flash(_("Thank you. A moderator will look at it."))
    back = _local_path(form.back.data)
    return redirect(back or url_for("moderation.flag", kind=kind, item_id=item_id))


# -- the member's moderation page ----------------------------------------------------------------


def _items_of(notices: list[appeals.Notice]) -> dict[tuple[str, int], moderation.Item]:
    """The items the decisions were about, where they still exist."""
    db = get_db()
    found: dict[tuple[str, int], moderation.Item] = {}
    for notice in notices:
        if notice.item_kind and notice.item_id is not None:
            item = moderation.get_item(db, notice.item_kind, notice.item_id)
            if item is not None:
                found[(item.kind, item.id)] = item
    return found


def _notices_page(
    member_id: int,
    failed: tuple[int, AppealForm] | None = None,
    status: int = 200,
    error: str | None = None,
) -> tuple[str, int]:
    db = get_db()
    notices = appeals.notices(db, member_id)
    forms = {
        notice.action_id: AppealForm(prefix=f"appeal-{notice.action_id}")
        for notice in notices
        if notice.appeal is None
    }
    if failed is not None:
        forms[failed[0]] = failed[1]
    waiting = moderation_queue.items_waiting(db, member_id)
    return (
        render_template(
            "community/moderation.html",
            notices=notices,
            forms=forms,
            items=_items_of(notices),
            waiting=waiting,
            links={(item.kind, item.id): item_link(item) for item in waiting},
            labels=Labels,
            error=error,
            now=utcnow(),
        ),
        status,
    )


@bp.route("/account/moderation")
@login_required
def notices() -> tuple[str, int]:
    """The member's hidden or waiting items and the decisions about them, with appeals."""
    member: members.Member = current_user.member
    return _notices_page(member.id)


@bp.post("/account/moderation/<int:action_id>/appeal")
@login_required
def appeal(action_id: int) -> Response | tuple[str, int]:
    """Appeal one decision about the member, once."""
    member: members.Member = current_user.member
    db = get_db()
    if appeals.appealable_action(db, member.id, action_id) is None:
        abort(404)  # someone else's decision reads like one that does not exist
    form = AppealForm(prefix=f"appeal-{action_id}")
    if not form.validate_on_submit():
        return _notices_page(member.id, (action_id, form), 400)
    try:
        appeals.appeal(db, member.id, action_id, form.body.data or "", utcnow())
    except LookupError:
        abort(404)
    except sanctions.AlreadyAppealed:
        already = _("You have already appealed this decision. Each gets one appeal.")
        return _notices_page(member.id, status=400, error=already)
    except sanctions.SanctionError as exc:
        form.body.errors = [str(exc)]
        return _notices_page(member.id, (action_id, form), 400)
    flash(_("Your appeal is sent. A moderator will answer it here."))
    return redirect(url_for("moderation.notices"))


# -- suspended members at the sign-in ------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=APPEAL_TOKEN_SALT)


def _refusal(
    member_id: int,
    sanction: sanctions.Sanction,
    form: SignedOutAppealForm | None,
    status: int,
    message: str | None = None,
) -> tuple[str, int]:
    db = get_db()
    appealed = None
    if sanction.action_id is not None:
        appealed = next(
            (n.appeal for n in appeals.notices(db, member_id) if n.action_id == sanction.action_id),
            None,
        )
    if form is None and appealed is None and sanction.action_id is not None:
        form = SignedOutAppealForm()
        form.token.data = _serializer().dumps({"member": member_id, "action": sanction.action_id})
    return (
        render_template(
            "community/appeal_signin.html",
            sanction=sanction,
            banned=sanctions.is_ban(db, sanction),
            appealed=appealed,
            form=form,
            message=message,
        ),
        status,
    )


def refusal_page(member: members.Member) -> tuple[str, int] | None:
    """The page for a suspended or banned member whose password was right, or None to go on.

    The password was right, so saying why (and until when) tells them nothing they may not know.
    """
    sanction = sanctions.suspension(get_db(), member.id, utcnow())
    if sanction is None:
        return None
    return _refusal(member.id, sanction, None, 403)


@bp.post("/appeal")
def signed_out_appeal() -> tuple[str, int]:
    """The appeal a suspended member writes on the sign-in refusal page."""
    form = SignedOutAppealForm()
    try:
        claim = _serializer().loads(form.token.data or "", max_age=APPEAL_TOKEN_SECONDS)
        member_id, action_id = int(claim["member"]), int(claim["action"])
    except (BadSignature, KeyError, TypeError, ValueError):
        expired = _("This appeal form has expired. Sign in again to get a new one.")
        return render_template("community/appeal_done.html", message=expired), 400
    db = get_db()
    sanction = sanctions.suspension(db, member_id, utcnow())
    if sanction is None or sanction.action_id != action_id:
        lifted = _("This suspension has ended. Sign in again.")
        return render_template("community/appeal_done.html", message=lifted), 400
    if not form.validate_on_submit():
        return _refusal(member_id, sanction, form, 400)
    try:
        appeals.appeal(db, member_id, action_id, form.body.data or "", utcnow())
    except LookupError:
        abort(404)
    except sanctions.AlreadyAppealed:
        already = _("You have already appealed this decision. Each gets one appeal.")
        return _refusal(member_id, sanction, None, 400, already)
    except sanctions.SanctionError as exc:
        return _refusal(member_id, sanction, None, 400, str(exc))
    sent = _(
        "Your appeal is sent. Sign in again later: the answer is shown there, and if the "
        "decision is overturned you can sign in as before."
    )
    return render_template("community/appeal_done.html", message=sent), 200
