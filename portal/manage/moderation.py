"""The moderators' console: the review queue, decisions on items, and open appeals.

The queue shows every item that is held (screening), hidden (members' reports) or still visible
with open reports, the longest waiting first, with each report's reason and note and the
system's reasons (watched word, machine score), ``QUEUE_PAGE`` items a page under the count of
all that wait. Each decision needs a reason; the decision, its ``moderation_actions`` row, the
console's audit entry and the note telling the author are one transaction. The member pages
(silence, suspend, ban, lift) are in ``moderation_members``, the watched words in
``moderation_words``; they add routes to this blueprint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from community import appeals, moderation, moderation_queue, sanctions
from community.content import CONTENT_KINDS, HELD, HIDDEN
from instore.clock import utcnow
from instore.db import atomic
from portal.board_news import notify_published_comment
from portal.database import get_db
from portal.manage.access import actor, record, require_role
from portal.moderation import Labels, kind_name, tell_member

log = logging.getLogger(__name__)

bp = Blueprint("manage_moderation", __name__, url_prefix="/manage/moderation")
require_role(bp, "staff")

REASON_LABEL = _l("Reason (the member is told)")
REASON_REQUIRED = _l("Give a reason: the member and the records are told why.")
REASON_TOO_LONG = _l("Keep the reason under 500 characters.")
# Labels of a text column in the edit form.
TEXT_LABELS: dict[str, Any] = {
    "title": _l("Title"),
    "description": _l("Description"),
    "body": _l("Text"),
    "bio": _l("About"),
}
DECISIONS: tuple[str, ...] = ("approve", "reject", "warn")
# A page number longer than this is a crafted URL, not a moderator paging: read as page 1.
MAX_PAGE_DIGITS = 6


def reason_field(label: Any = REASON_LABEL) -> TextAreaField:
    """The reason every moderation action asks for."""
    return TextAreaField(
        label,
        validators=[
            DataRequired(REASON_REQUIRED),
            Length(max=moderation.MAX_REASON, message=REASON_TOO_LONG),
        ],
    )


class DecisionForm(FlaskForm):
    reason = reason_field()


class AppealAnswerForm(FlaskForm):
    answer = reason_field(_l("Answer (the member is told)"))


def _edit_form(kind: str) -> type[FlaskForm]:
    """A form with one box per text column of ``kind``, and the reason."""
    fields: dict[str, Any] = {
        column: TextAreaField(
            TEXT_LABELS.get(column, column),
            validators=[
                Length(
                    max=moderation.MAX_EDITED_TEXT,
                    message=_l("Keep the text under 5000 characters."),
                )
            ],
        )
        for column in CONTENT_KINDS[kind].texts
    }
    fields["reason"] = reason_field()
    return type(f"Edit{kind.title()}Form", (FlaskForm,), fields)


def _prefix(item: moderation.Item) -> str:
    return f"{item.kind}-{item.id}"


def _target(item: moderation.Item) -> str:
    """The audit log's name for an item."""
    return f"{item.kind} {item.id}"


def _page_number() -> int:
    """The ``page`` query argument; missing or not a number reads as the first page (and one
    past the last as the last: ``queue_page`` clamps it), like the console's other lists."""
    raw = request.args.get("page", "1")
    return max(1, int(raw)) if raw.isdecimal() and len(raw) <= MAX_PAGE_DIGITS else 1


def _queue_url(page: int) -> str:
    """The queue at ``page``; the first page has no argument."""
    return url_for("manage_moderation.queue", page=page if page > 1 else None)


def _queue_page(
    failed: dict[tuple[str, int], FlaskForm] | None = None,
    errors: dict[tuple[str, int], str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    db = get_db()
    paged = moderation_queue.queue_page(db, _page_number())
    entries = paged.entries
    forms: dict[tuple[str, int], FlaskForm] = {
        (e.item.kind, e.item.id): DecisionForm(prefix=_prefix(e.item)) for e in entries
    }
    waiting_appeals = appeals.open_appeals(db)
    answer_forms: dict[tuple[str, int], FlaskForm] = {
        ("appeal", a.id): AppealAnswerForm(prefix=f"appeal-{a.id}") for a in waiting_appeals
    }
    forms.update(answer_forms)
    shown = set(forms)  # what the page lists now
    forms.update(failed or {})
    errors = errors or {}
    return (
        render_template(
            "manage/moderation.html",
            entries=entries,
            paged=paged,
            appeals=waiting_appeals,
            forms=forms,
            errors=errors,
            # An error about an item or appeal that left the page meanwhile shows at the top.
            stray_errors=[message for key, message in errors.items() if key not in shown],
            labels=Labels,
            now=utcnow(),
        ),
        status,
    )


@bp.route("")
def queue() -> tuple[str, int]:
    """What waits for a moderator: open appeals, then items, the longest waiting first."""
    return _queue_page()


def _item_or_404(kind: str, item_id: int) -> moderation.Item:
    item = moderation.get_item(get_db(), kind, item_id)
    if item is None:
        abort(404)
    return item


def _approve(item: moderation.Item, reason: str) -> str:
    decision = moderation.approve(get_db(), actor().id, item.kind, item.id, reason, utcnow())
    record(
        "moderation.approve",
        _target(item),
        before={"status": item.status},
        after={"status": "visible", "reason": reason, "action_id": decision.action_id},
    )
    if item.status in (HELD, HIDDEN):
        tell_member(
            item.author_id,
            lambda: _("A moderator approved your %(kind)s.", kind=kind_name(item.kind)),
            reason,
        )
    if item.kind == "comment" and item.status == HELD:
        notify_published_comment(get_db(), item.id)
    return _("Approved.")


def _reject(item: moderation.Item, reason: str) -> str:
    decision = moderation.reject(get_db(), actor().id, item.kind, item.id, reason, utcnow())
    record(
        "moderation.reject",
        _target(item),
        before={"status": item.status},
        after={"status": "rejected", "reason": reason, "action_id": decision.action_id},
    )
    tell_member(
        item.author_id,
        lambda: _("A moderator removed your %(kind)s.", kind=kind_name(item.kind)),
        reason,
    )
    return _("Rejected.")


def _warn(item: moderation.Item, reason: str) -> str:
    if item.author_id is None:
        raise moderation.ModerationError(_("Its author has left; there is nobody to warn."))
    action_id = sanctions.warn(get_db(), actor().id, item.author_id, reason, utcnow(), item)
    record(
        "moderation.warn",
        f"member {item.author_id}",
        after={"item": _target(item), "reason": reason, "action_id": action_id},
    )
    tell_member(item.author_id, lambda: _("A moderator sent you a warning."), reason)
    return _("Warning sent.")


ACTIONS: dict[str, Callable[[moderation.Item, str], str]] = {
    "approve": _approve,
    "reject": _reject,
    "warn": _warn,
}


@bp.post("/item/<kind>/<int:item_id>")
def decide(kind: str, item_id: int) -> Response | tuple[str, int]:
    """Approve, reject or warn from the queue, with a reason."""
    item = _item_or_404(kind, item_id)
    perform = ACTIONS.get(request.form.get("action", ""))
    if perform is None:
        abort(400)
    form = DecisionForm(prefix=_prefix(item))
    key = (item.kind, item.id)
    if not form.validate_on_submit():
        return _queue_page(failed={key: form}, status=400)
    try:
        with atomic(get_db(), "moderation_decide"):
            said = perform(item, (form.reason.data or "").strip())
    except moderation.ModerationError as exc:
        status = 409 if isinstance(exc, moderation.AlreadyDecided) else 400
        return _queue_page(failed={key: form}, errors={key: str(exc)}, status=status)
    log.info("moderated", extra={"item": _target(item), "moderator": actor().id})
    flash(said)
    return redirect(_queue_url(_page_number()))


def _edit_page(item: moderation.Item, form: FlaskForm, error: str | None, status: int) -> Any:
    return (
        render_template(
            "manage/moderation_edit.html",
            item=item,
            form=form,
            text_fields=[form[column] for column in item.storage.texts],
            flags=moderation.open_flags(get_db(), item.kind, item.id),
            error=error,
            labels=Labels,
        ),
        status,
    )


@bp.route("/item/<kind>/<int:item_id>/edit", methods=["GET", "POST"])
def edit(kind: str, item_id: int) -> Response | tuple[str, int]:
    """Edit the item's text and approve it; the original is kept in the action's detail."""
    item = _item_or_404(kind, item_id)
    form = _edit_form(kind)()
    if not form.is_submitted():
        for column, text in item.texts.items():
            form[column].data = text
        return _edit_page(item, form, None, 200)
    if not form.validate_on_submit():
        return _edit_page(item, form, None, 400)
    texts = {column: form[column].data or "" for column in item.storage.texts}
    reason = (form["reason"].data or "").strip()
    db = get_db()
    try:
        with atomic(db, "moderation_edit"):
            decision = moderation.edit_and_approve(
                db, actor().id, kind, item_id, texts, reason, utcnow()
            )
            record(
                "moderation.edit",
                _target(item),
                before={"status": item.status, **item.texts},
                after={
                    "status": "visible",
                    **texts,
                    "reason": reason,
                    "action_id": decision.action_id,
                },
            )
            tell_member(
                item.author_id,
                lambda: _("A moderator edited your %(kind)s.", kind=kind_name(item.kind)),
                reason,
            )
            if item.kind == "comment" and item.status == HELD:
                notify_published_comment(get_db(), item.id)
    except moderation.ModerationError as exc:
        return _edit_page(item, form, str(exc), 400)
    flash(_("Edited and approved."))
    return redirect(url_for("manage_moderation.queue"))


@bp.post("/appeal/<int:appeal_id>")
def answer_appeal(appeal_id: int) -> Response | tuple[str, int]:
    """Uphold or overturn an appeal with an answer; overturning undoes the decision."""
    db = get_db()
    found = appeals.get_appeal(db, appeal_id)
    if found is None:
        abort(404)
    outcome = request.form.get("outcome", "")
    if outcome not in (appeals.APPEAL_UPHELD, appeals.APPEAL_OVERTURNED):
        abort(400)
    form = AppealAnswerForm(prefix=f"appeal-{appeal_id}")
    key = ("appeal", appeal_id)
    if not form.validate_on_submit():
        return _queue_page(failed={key: form}, status=400)
    answer = (form.answer.data or "").strip()
    try:
        with atomic(db, "moderation_appeal"):
            __, action_id = appeals.decide_appeal(
                db, actor().id, appeal_id, outcome, answer, utcnow()
            )
            record(
                f"moderation.appeal_{outcome}",
                f"appeal {appeal_id}",
                before={"decision": found.action_id, "action": found.action},
                after={"outcome": outcome, "answer": answer, "action_id": action_id},
            )
            tell_member(found.member_id, lambda: _("A moderator answered your appeal."), answer)
    except sanctions.SanctionError as exc:
        return _queue_page(failed={key: form}, errors={key: str(exc)}, status=409)
    flash(_("Appeal answered."))
    return redirect(url_for("manage_moderation.queue"))


# The member pages and the watched words add their routes to ``bp``.
from portal.manage import moderation_members, moderation_words  # noqa: E402, F401
