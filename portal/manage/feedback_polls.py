"""Polls in the console: staff ask, watch the results come in, close early or delete.

Routes on the ``manage_feedback`` blueprint (staff role). The answers are typed one per line
(no script needed to add a field); the closing time is a ``datetime-local`` value in the store's
time zone, stored in UTC like every time. A poll's page reloads itself every
``RESULTS_REFRESH_SECONDS`` (a meta refresh: no script, so the CSP stays strict), which is live
enough for a question that runs for days.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import Field, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from community import feedback, polls
from instore.clock import to_iso, utcnow
from instore.db import atomic
from portal.database import get_db
from portal.forms import ActionForm
from portal.manage.access import actor, record
from portal.manage.feedback import bp

# How often a poll's results page reloads itself.
RESULTS_REFRESH_SECONDS = 30
# Polls run around now: a year outside these is a typo, and staying well inside datetime's range
# means converting to UTC cannot overflow (as the offer form does).
EARLIEST_YEAR, LATEST_YEAR = 2000, 9000
# The answers box: eight answers of 80 characters and their line breaks, with room to spare.
MAX_OPTIONS_TEXT = 1000


def _option_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _check_options(form: FlaskForm, field: Field) -> None:
    lines = _option_lines(field.data or "")
    if not polls.MIN_OPTIONS <= len(lines) <= polls.MAX_OPTIONS:
        raise ValidationError(
            _(
                "Give %(low)d to %(high)d answers, one per line.",
                low=polls.MIN_OPTIONS,
                high=polls.MAX_OPTIONS,
            )
        )
    for number, line in enumerate(lines, start=1):
        if len(line) > polls.MAX_OPTION:
            raise ValidationError(
                _(
                    "Answer %(n)d is longer than %(max)d characters.",
                    n=number,
                    max=polls.MAX_OPTION,
                )
            )
    if len({line.casefold() for line in lines}) < len(lines):
        raise ValidationError(_("Two answers are the same; make each one different."))


class PollForm(FlaskForm):
    question = StringField(
        _l("Question"),
        validators=[
            DataRequired(_l("Write the question.")),
            Length(max=polls.MAX_QUESTION, message=_l("Keep the question under 200 characters.")),
        ],
    )
    options = TextAreaField(
        _l("Answers, one per line"),
        validators=[
            DataRequired(_l("Write the answers, one per line.")),
            Length(max=MAX_OPTIONS_TEXT, message=_l("The answers are too long.")),
            _check_options,
        ],
    )
    closes_at = StringField(_l("Closes at (store time, optional)"))


def _store_zone() -> ZoneInfo:
    return ZoneInfo(str(current_app.config["INSTORE"]["store"]["timezone"]))


def closing_time(form: PollForm, now: datetime) -> tuple[bool, datetime | None]:
    """(valid, the closing time in UTC or None for "until closed"); errors go under the field."""
    text = (form.closes_at.data or "").strip()
    if not text:
        return True, None
    try:
        moment = datetime.fromisoformat(text)
        if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            raise ValueError(text)
    except ValueError:
        form.closes_at.errors = [_("Enter a date and time like 2025-03-01 18:00 (store time).")]
        return False, None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_store_zone())
    if moment <= now:
        form.closes_at.errors = [_("That time has already passed; pick a later one.")]
        return False, None
    return True, moment


def _polls_page(form: PollForm | None = None, status: int = 200) -> tuple[str, int]:
    now = utcnow()
    return (
        render_template(
            "manage/feedback_polls.html",
            polls=polls.list_polls(get_db(), None, now),
            form=form or PollForm(),
            action_form=ActionForm(),
            now=now,
        ),
        status,
    )


@bp.route("/polls")
def polls_index() -> tuple[str, int]:
    """Every poll with its results, open ones first, and the form to ask a new one."""
    return _polls_page()


@bp.post("/polls")
def create_poll() -> Response | tuple[str, int]:
    form = PollForm()
    now = utcnow()
    valid = form.validate_on_submit()
    closes_ok, closes_at = closing_time(form, now)
    if not (valid and closes_ok):
        return _polls_page(form, 400)
    question = (form.question.data or "").strip()
    options = _option_lines(form.options.data or "")
    db = get_db()
    try:
        with atomic(db, "feedback_poll_audit"):
            poll_id = polls.create_poll(db, question, options, closes_at, actor().id, now)
            record(
                "feedback.poll_create",
                f"poll {poll_id}",
                after={
                    "question": question,
                    "options": options,
                    "closes_at": None if closes_at is None else to_iso(closes_at),
                },
            )
    except feedback.FeedbackError:
        # The form checks the same rules with translated sentences; this is the backstop.
        form.question.errors = [_("That poll cannot be saved. Check the question and answers.")]
        return _polls_page(form, 400)
    flash(_("Poll opened."))
    return redirect(url_for("manage_feedback.poll", poll_id=poll_id))


def _poll_or_404(poll_id: int) -> polls.Poll:
    found = polls.get_poll(get_db(), poll_id)
    if found is None:
        abort(404)
    return found


@bp.route("/polls/<int:poll_id>")
def poll(poll_id: int) -> str:
    """One poll's results, reloading itself while the poll is open."""
    found = _poll_or_404(poll_id)
    now = utcnow()
    return render_template(
        "manage/feedback_poll.html",
        poll=found,
        action_form=ActionForm(),
        now=now,
        refresh=RESULTS_REFRESH_SECONDS if found.is_open(now) else None,
    )


@bp.post("/polls/<int:poll_id>/close")
def close_poll(poll_id: int) -> Response:
    found = _poll_or_404(poll_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_db()
    with atomic(db, "feedback_poll_close_audit"):
        closed = polls.close_poll(db, found.id, utcnow())
        if closed:
            record("feedback.poll_close", f"poll {found.id}", before={"closed_at": None})
    if closed:
        flash(_("Poll closed."))
    else:
        flash(_("That poll is already closed."), "error")
    return redirect(url_for("manage_feedback.poll", poll_id=found.id))


@bp.post("/polls/<int:poll_id>/delete")
def delete_poll(poll_id: int) -> Response:
    found = _poll_or_404(poll_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_db()
    with atomic(db, "feedback_poll_delete_audit"):
        polls.delete_poll(db, found.id)
        record(
            "feedback.poll_delete",
            f"poll {found.id}",
            before={
                "question": found.question,
                "votes": {option.label: option.votes for option in found.options},
            },
        )
    flash(_("Poll deleted."))
    return redirect(url_for("manage_feedback.polls_index"))
