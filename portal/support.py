"""The member's side of the support inbox: "Ask the store", their threads, one conversation.

Reached from the store page and the account page. Like the store page, the member is the signed-in
one or the one whose phone this WiFi session is (``shopping_member``): a staff answer arrives as a
notification on the store page, and its link must open even where the sign-in cookie is not (the
OS captive sheet keeps its cookies). A member only ever sees their own threads; anyone else's id
is a 404, exactly like an id that does not exist.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from community import support
from instore import members
from instore.clock import utcnow
from portal.clients import current_session
from portal.database import get_db
from portal.pages import shopping_member

bp = Blueprint("support", __name__, url_prefix="/support")


class AskForm(FlaskForm):
    subject = StringField(
        _l("What is it about?"),
        validators=[
            DataRequired(_l("Write a few words about what you need.")),
            Length(max=support.MAX_SUBJECT, message=_l("Keep the subject under 120 characters.")),
        ],
    )
    body = TextAreaField(
        _l("Your question"),
        validators=[
            DataRequired(_l("Write your question.")),
            Length(max=support.MAX_MESSAGE, message=_l("Keep your message under 2000 characters.")),
        ],
    )


class ReplyForm(FlaskForm):
    body = TextAreaField(
        _l("Your message"),
        validators=[
            DataRequired(_l("Write your message.")),
            Length(max=support.MAX_MESSAGE, message=_l("Keep your message under 2000 characters.")),
        ],
    )


def _member() -> members.Member:
    member = shopping_member(current_session())
    if member is None:
        abort(redirect(url_for("account.signin")))
    return member


def _own_thread(member: members.Member, thread_id: int) -> support.Thread:
    thread = support.member_thread(get_db(), thread_id, member.id)
    if thread is None:
        abort(404)  # someone else's thread reads exactly like one that does not exist
    return thread


@bp.route("")
def threads() -> str:
    """The member's questions, most recently active first."""
    member = _member()
    return render_template(
        "support/threads.html", threads=support.member_threads(get_db(), member.id)
    )


@bp.route("/new", methods=["GET", "POST"])
def ask() -> Response | str | tuple[str, int]:
    """Ask the store a question; it lands in the staff's shared inbox."""
    member = _member()
    form = AskForm()
    if not form.validate_on_submit():
        return render_template("support/ask.html", form=form), 400 if form.is_submitted() else 200
    try:
        thread_id = support.open_thread(
            get_db(), member.id, form.subject.data or "", form.body.data or "", utcnow()
        )
    except support.TooManyThreads:
        error = _(
            "You have asked %(count)d questions in the last hour. Please add to one of them, "
            "or ask again later.",
            count=support.NEW_THREADS_PER_HOUR,
        )
        return render_template("support/ask.html", form=form, error=error), 429
    return redirect(url_for("support.thread", thread_id=thread_id))


@bp.route("/<int:thread_id>", methods=["GET", "POST"])
def thread(thread_id: int) -> Response | str | tuple[str, int]:
    """One conversation; the member's reply reopens a closed thread."""
    member = _member()
    found = _own_thread(member, thread_id)
    db = get_db()
    form = ReplyForm()
    if form.validate_on_submit():
        try:
            support.member_reply(db, found.id, member.id, form.body.data or "", utcnow())
        except support.SupportError:
            abort(404)  # the thread went away since the page was read
        return redirect(url_for("support.thread", thread_id=found.id))
    return (
        render_template(
            "support/thread.html",
            thread=found,
            messages=support.messages(db, found.id),
            form=form,
        ),
        400 if form.is_submitted() else 200,
    )
