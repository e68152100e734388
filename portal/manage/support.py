"""The support inbox for staff: the shared queue, one thread, assign, reply, close, canned replies.

The queue lists open threads whose member has waited longer than ``[community]
support_target_minutes`` first, then the longest waiting. A staff reply also writes a 'support'
notification for the member in the same transaction, so it appears live on their store page
through the existing feed. Every staff action is in the audit log.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from community import support
from instore import members, staff
from instore.clock import utcnow
from instore.db import atomic
from offers.notifications import create_notification
from portal.database import get_db
from portal.i18n import LANGUAGES
from portal.manage.access import actor, record, require_role

bp = Blueprint("manage_support", __name__, url_prefix="/manage/support")
require_role(bp, "staff")

# The notification carries the start of the answer; the thread page has all of it.
NOTE_BODY_CHARS = 200
_MESSAGE_TOO_LONG = _l("Keep the reply under 2000 characters.")


class ReplyForm(FlaskForm):
    body = TextAreaField(
        _l("Reply"),
        validators=[
            DataRequired(_l("Write the reply.")),
            Length(max=support.MAX_MESSAGE, message=_MESSAGE_TOO_LONG),
        ],
    )


class AssignForm(FlaskForm):
    assignee = SelectField(_l("Assigned to"), choices=[])


class CannedForm(FlaskForm):
    title = StringField(
        _l("Title"),
        validators=[
            DataRequired(_l("Give the canned reply a title.")),
            Length(max=support.MAX_CANNED_TITLE, message=_l("Keep the title under 60 characters.")),
        ],
    )
    body = TextAreaField(
        _l("Text"),
        validators=[
            DataRequired(_l("Write the reply.")),
            Length(max=support.MAX_MESSAGE, message=_MESSAGE_TOO_LONG),
        ],
    )


def target() -> timedelta:
    """How long a member may wait before their thread jumps the queue."""
    return timedelta(minutes=current_app.config["INSTORE"]["community"]["support_target_minutes"])


@bp.app_template_filter("support_duration")
def support_duration(value: timedelta | None) -> str:
    """A duration in the reader's language ("12 minutes"); a dash when there is none yet."""
    return "—" if value is None else str(format_timedelta(value, threshold=1.5))


def _thread_or_404(thread_id: int) -> support.Thread:
    found = support.get_thread(get_db(), thread_id)
    if found is None:
        abort(404)
    return found


def _assign_form(found: support.Thread) -> AssignForm:
    form = AssignForm(prefix="assign")
    form.assignee.choices = [("", str(_("Nobody (shared inbox)")))] + [
        (str(a.id), a.display_name) for a in staff.console_accounts(get_db())
    ]
    if not form.is_submitted():
        form.assignee.data = "" if found.assignee_id is None else str(found.assignee_id)
    return form


@bp.route("")
def inbox() -> str:
    """Open threads, breaching the target first, with median response and resolution times."""
    db = get_db()
    now = utcnow()
    first_median, resolution_median = support.median_times(db)
    return render_template(
        "manage/support.html",
        threads=support.inbox(db, target(), now),
        target=target(),
        now=now,
        first_median=first_median,
        resolution_median=resolution_median,
    )


def _thread_page(
    found: support.Thread, reply: ReplyForm | None = None, status: int = 200
) -> tuple[str, int]:
    db = get_db()
    canned = support.canned_replies(db)
    if reply is None:
        reply = ReplyForm(prefix="reply")
        picked = request.args.get("canned", "")
        chosen = support.get_canned_reply(db, int(picked)) if picked.isdecimal() else None
        if chosen is not None:
            reply.body.data = chosen.body  # "Insert": the canned text fills the box, no script
    return (
        render_template(
            "manage/support_thread.html",
            thread=found,
            messages=support.messages(db, found.id),
            reply_form=reply,
            assign_form=_assign_form(found),
            canned=canned,
            target=target(),
            now=utcnow(),
        ),
        status,
    )


@bp.route("/<int:thread_id>")
def thread(thread_id: int) -> tuple[str, int]:
    return _thread_page(_thread_or_404(thread_id))


def _notify_member(found: support.Thread, body: str) -> None:
    """The answer as a 'support' notification, written in the member's language."""
    db = get_db()
    member = members.get_member(db, found.member_id)
    if member is None:
        return
    language = (member.locale or "en").split("-")[0].lower()
    with force_locale(language if language in LANGUAGES else "en"):
        title = _("The store answered: %(subject)s", subject=found.subject)
    short = body if len(body) <= NOTE_BODY_CHARS else body[: NOTE_BODY_CHARS - 1] + "…"
    create_notification(
        db,
        member_id=member.id,
        kind="support",
        title=title,
        body=short,
        now=utcnow(),
        data={"thread_id": found.id},
    )


@bp.post("/<int:thread_id>/reply")
def reply(thread_id: int) -> Response | tuple[str, int]:
    """Answer the member; they see it live on their store page."""
    found = _thread_or_404(thread_id)
    form = ReplyForm(prefix="reply")
    if not form.validate_on_submit():
        return _thread_page(found, form, 400)
    body = (form.body.data or "").strip()
    db = get_db()
    try:
        with atomic(db, "support_reply"):
            message_id = support.staff_reply(db, found.id, actor().id, body, utcnow())
            _notify_member(found, body)
            record("support.reply", f"support thread {found.id}", after={"message": message_id})
    except support.SupportError:
        abort(404)  # the thread went away (the member's account was erased) meanwhile
    flash(_("Reply sent."))
    return redirect(url_for("manage_support.thread", thread_id=found.id))


@bp.post("/<int:thread_id>/assign")
def assign(thread_id: int) -> Response | tuple[str, int]:
    """Give the thread to someone (or "me", or back to the shared inbox)."""
    found = _thread_or_404(thread_id)
    form = _assign_form(found)
    if not form.validate_on_submit():
        return _thread_page(found, status=400)
    assignee = int(form.assignee.data) if form.assignee.data else None
    db = get_db()
    with atomic(db, "support_assign_audit"):
        support.assign(db, found.id, assignee, utcnow())
        record(
            "support.assign",
            f"support thread {found.id}",
            before={"assignee_id": found.assignee_id},
            after={"assignee_id": assignee},
        )
    flash(_("Assignment saved."))
    return redirect(url_for("manage_support.thread", thread_id=found.id))


@bp.post("/<int:thread_id>/close")
def close(thread_id: int) -> Response | tuple[str, int]:
    """Close the thread; a member's reply would reopen it."""
    found = _thread_or_404(thread_id)
    if not FlaskForm().validate_on_submit():
        return _thread_page(found, status=400)
    if found.status == "closed":
        flash(_("That thread is already closed."), "error")
        return redirect(url_for("manage_support.thread", thread_id=found.id))
    db = get_db()
    with atomic(db, "support_close_audit"):
        support.close(db, found.id, utcnow())
        record("support.close", f"support thread {found.id}", before={"status": found.status})
    flash(_("Thread closed."))
    return redirect(url_for("manage_support.inbox"))


def _canned_page(form: CannedForm, status: int = 200, error: str | None = None) -> tuple[str, int]:
    return (
        render_template(
            "manage/support_canned.html",
            canned=support.canned_replies(get_db()),
            form=form,
            error=error,
        ),
        status,
    )


@bp.route("/canned")
def canned() -> tuple[str, int]:
    return _canned_page(CannedForm())


@bp.post("/canned")
def add_canned() -> Response | tuple[str, int]:
    form = CannedForm()
    if not form.validate_on_submit():
        return _canned_page(form, 400)
    db = get_db()
    title, body = (form.title.data or "").strip(), (form.body.data or "").strip()
    try:
        with atomic(db, "support_canned_audit"):
            canned_id = support.add_canned_reply(db, title, body, utcnow())
            record("support.canned_add", f"canned reply {canned_id}", after={"title": title})
    except support.SupportError:
        error = _(
            "That title is taken, or there are already %(count)d canned replies.",
            count=support.MAX_CANNED_REPLIES,
        )
        return _canned_page(form, 400, error)
    flash(_("Canned reply saved."))
    return redirect(url_for("manage_support.canned"))


@bp.post("/canned/<int:canned_id>/delete")
def delete_canned(canned_id: int) -> Response | tuple[str, int]:
    db = get_db()
    found = support.get_canned_reply(db, canned_id)
    if found is None:
        abort(404)
    if not FlaskForm().validate_on_submit():
        return _canned_page(CannedForm(), 400)
    with atomic(db, "support_canned_delete"):
        support.delete_canned_reply(db, canned_id)
        record("support.canned_delete", f"canned reply {canned_id}", before={"title": found.title})
    flash(_("Canned reply deleted."))
    return redirect(url_for("manage_support.canned"))
