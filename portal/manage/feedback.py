"""Feedback in the console: staff read reviews and suggestions and answer them in public.

The list puts unanswered items first, then the newest, and filters by answered-ness and status
(staff see held, hidden and rejected items too, labelled). Each item has an answer form; one
item's page lets staff edit or delete the answers. An answer tells the item's author through a
'community' notification in the same transaction, unless the author erased their account, is
the one answering, or has a block with them. Staff text is not screened (it is the store
speaking, and the audit log says who) but is escaped like any text. Polls are in
``portal.manage.feedback_polls`` on this blueprint.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from community import feedback, friends, reviews, suggestions
from community.content import ITEM_STATUSES
from instore.clock import utcnow
from instore.db import atomic
from portal.community_notes import notify
from portal.database import get_db
from portal.forms import ActionForm
from portal.manage.access import actor, record, require_role

bp = Blueprint("manage_feedback", __name__, url_prefix="/manage/feedback")
require_role(bp, "staff")

# The list's tabs: what each shows (the polls tab is its own page, see feedback_polls).
TABS: dict[str, Any] = {"review": _l("Reviews"), "suggestion": _l("Suggestions")}
ANSWER_FILTER_LABELS: dict[str, Any] = {
    "unanswered": _l("Unanswered"),
    "answered": _l("Answered"),
    "all": _l("All"),
}
STATUS_LABELS: dict[str, Any] = {
    "visible": _l("visible"),
    "held": _l("held for review"),
    "hidden": _l("hidden after reports"),
    "rejected": _l("rejected"),
}
# The notification's title, in the author's language, per kind of item.
ANSWER_TITLES: dict[str, Any] = {
    "review": lambda: _("The store answered your review"),
    "suggestion": lambda: _("The store answered your suggestion"),
}


class AnswerForm(FlaskForm):
    body = TextAreaField(
        _l("Answer"),
        validators=[
            DataRequired(_l("Write the answer.")),
            Length(max=feedback.MAX_TEXT, message=_l("Keep the answer under 2000 characters.")),
        ],
    )


def answer_form(kind: str, item_id: int) -> AnswerForm:
    """The new-answer form of one item (prefixed: the list holds one per item)."""
    return AnswerForm(prefix=f"answer-{kind}-{item_id}")


def edit_form(answer: feedback.Answer) -> AnswerForm:
    form = AnswerForm(prefix=f"edit-{answer.id}")
    if form.body.name not in request.form:  # not the form being posted: show the stored text
        form.body.data = answer.body
    return form


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "feedback_answer_form": answer_form,
        "feedback_status_names": STATUS_LABELS,
    }


def _page() -> int:
    text = request.args.get("page", "1")
    return min(int(text), 1000) if text.isdecimal() and int(text) > 0 else 1


@bp.route("")
def index() -> str:
    """Reviews or suggestions, unanswered first, then the newest; filtered as asked."""
    kind = request.args.get("show", "review")
    kind = kind if kind in TABS else "review"
    answered = request.args.get("answered", "unanswered")
    answered = answered if answered in feedback.ANSWER_FILTERS else "unanswered"
    status = request.args.get("status", "")
    status = status if status in ITEM_STATUSES else ""
    page = _page()
    db = get_db()
    items: list[Any]
    if kind == "review":
        items, has_next = reviews.staff_reviews(db, answered, status, page)
    else:
        items, has_next = suggestions.staff_suggestions(db, answered, status, page)
    return render_template(
        "manage/feedback.html",
        kind=kind,
        tabs=TABS,
        items=items,
        answers=feedback.answers_for(db, kind, (item.id for item in items)),
        answered=answered,
        answer_filters=ANSWER_FILTER_LABELS,
        status=status,
        page=page,
        has_next=has_next,
    )


def _item_or_404(kind: str, item_id: int) -> reviews.Review | suggestions.Suggestion:
    db = get_db()
    found: reviews.Review | suggestions.Suggestion | None = None
    if kind == "review":
        found = reviews.get_review(db, item_id)
    elif kind == "suggestion":
        found = suggestions.get_suggestion(db, item_id)
    if found is None:
        abort(404)
    return found


def _item_page(
    kind: str,
    item: reviews.Review | suggestions.Suggestion,
    new_form: AnswerForm | None = None,
    failed: AnswerForm | None = None,
    failed_id: int | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """One item with its answers; a form that failed is shown again with its errors."""
    found = feedback.answers_for(get_db(), kind, [item.id])[item.id]
    forms = {a.id: failed if a.id == failed_id and failed else edit_form(a) for a in found}
    page = render_template(
        "manage/feedback_item.html",
        kind=kind,
        item=item,
        answers=found,
        edit_forms=forms,
        new_form=new_form or answer_form(kind, item.id),
        delete_form=ActionForm(),
    )
    return page, status


@bp.route("/<kind>/<int:item_id>")
def item(kind: str, item_id: int) -> tuple[str, int]:
    return _item_page(kind, _item_or_404(kind, item_id))


def public_link(kind: str, item: reviews.Review | suggestions.Suggestion) -> str:
    """Where the author reads the item and its answers on the members' side."""
    if isinstance(item, reviews.Review):
        return url_for("feedback.product", product_id=item.product_id, _anchor="your-review")
    return url_for("feedback.suggestion", suggestion_id=item.id)


def _tell_author(kind: str, item: reviews.Review | suggestions.Suggestion, body: str) -> None:
    """The answer as community news for the author (see the module docstring for who is not)."""
    author, staff_id = item.author_id, actor().id
    if author is None or author == staff_id:
        return
    if friends.blockers_between(get_db(), author, staff_id):
        return
    notify(get_db(), author, "answer", ANSWER_TITLES[kind], body, public_link(kind, item))


@bp.post("/<kind>/<int:item_id>/answer")
def answer(kind: str, item_id: int) -> Response | tuple[str, int]:
    """Answer the item in public and tell its author."""
    found = _item_or_404(kind, item_id)
    form = answer_form(kind, found.id)
    if not form.validate_on_submit():
        return _item_page(kind, found, new_form=form, status=400)
    body = (form.body.data or "").strip()
    db = get_db()
    try:
        with atomic(db, "feedback_answer_audit"):
            answer_id = feedback.add_answer(db, kind, found.id, actor().id, body, utcnow())
            _tell_author(kind, found, body)
            record(
                "feedback.answer",
                f"{kind} {found.id}",
                after={"answer": answer_id, "body": body},
            )
    except feedback.NotFound:
        abort(404)  # the author deleted it meanwhile
    flash(_("Answer posted."))
    if request.args.get("back") == "list":
        return redirect(url_for("manage_feedback.index", show=kind))
    return redirect(url_for("manage_feedback.item", kind=kind, item_id=found.id))


def _answer_or_404(answer_id: int) -> feedback.Answer:
    found = feedback.get_answer(get_db(), answer_id)
    if found is None:
        abort(404)
    return found


@bp.post("/answers/<int:answer_id>")
def edit_answer(answer_id: int) -> Response | tuple[str, int]:
    """Correct an answer (the author is not told again: it is the same answer)."""
    found = _answer_or_404(answer_id)
    parent = _item_or_404(found.item_kind, found.item_id)
    form = edit_form(found)
    if not form.validate_on_submit():
        return _item_page(found.item_kind, parent, failed=form, failed_id=found.id, status=400)
    body = (form.body.data or "").strip()
    db = get_db()
    with atomic(db, "feedback_answer_edit"):
        feedback.edit_answer(db, found.id, body, utcnow())
        record(
            "feedback.answer_edit",
            f"{found.item_kind} {found.item_id}",
            before={"answer": found.id, "body": found.body},
            after={"answer": found.id, "body": body},
        )
    flash(_("Answer saved."))
    return redirect(url_for("manage_feedback.item", kind=found.item_kind, item_id=found.item_id))


@bp.post("/answers/<int:answer_id>/delete")
def delete_answer(answer_id: int) -> Response:
    found = _answer_or_404(answer_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_db()
    with atomic(db, "feedback_answer_delete"):
        feedback.delete_answer(db, found.id)
        record(
            "feedback.answer_delete",
            f"{found.item_kind} {found.item_id}",
            before={"answer": found.id, "body": found.body},
        )
    flash(_("Answer deleted."))
    return redirect(url_for("manage_feedback.item", kind=found.item_kind, item_id=found.item_id))


# The polls' views are routes on this blueprint (imported for their side effect).
from portal.manage import feedback_polls  # noqa: E402, F401
