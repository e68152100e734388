"""The members' feedback pages: the catalogue with reviews, the store's polls, the suggestions box.

The rules live in ``community.reviews``, ``community.polls`` and ``community.suggestions``; these
pages add what a member must be told:

- Like the store page, the member is the signed-in one or the one whose phone this WiFi session is
  (``shopping_member``): a staff answer's notification links here and must open in the browser
  the captive sheet handed over to.
- Every write is screened; a refusal shows its sentence under the field with HTTP 400 and keeps
  what the member typed. Their own review or suggestion shows with a label when others cannot
  see it (held, hidden, rejected).
- A suggestion the member may not read (someone else's held one, or a blocked member's) is a
  404, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import Field, RadioField, SelectChoice, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from community import catalogue, feedback, polls, reviews, suggestions
from community.screening import Limits, Refused
from instore import members
from instore.clock import utcnow
from portal.clients import current_session
from portal.database import get_db
from portal.forms import ActionForm
from portal.pages import shopping_member

bp = Blueprint("feedback", __name__)

# Products per page of the catalogue: a phone screen or two of names and prices.
PRODUCTS_PAGE_SIZE = 20
# A search box is for a few words; anything longer is cut, not refused (it is only a search).
MAX_QUERY = 100
# Nobody pages this far by hand; a larger number is a crafted URL, answered as the last page.
MAX_PAGE = 1000
_TOO_LONG = _l("Keep it under 2000 characters.")
# What a member's own item says when others cannot see it (the visibility rule's labels).
STATUS_LABELS: dict[str, Any] = {
    "held": _l("Waiting for a moderator"),
    "hidden": _l("Hidden after reports — you can edit it"),
    "rejected": _l("Removed by a moderator"),
}


def _check_rating(form: FlaskForm, field: Field) -> None:
    if field.data not in {str(n) for n in range(reviews.LOWEST_RATING, reviews.HIGHEST_RATING + 1)}:
        raise ValidationError(_("Choose 1 to 5 stars."))


class ReviewForm(FlaskForm):
    rating = RadioField(
        _l("Your rating"),
        choices=[SelectChoice(str(n), str(n)) for n in range(reviews.HIGHEST_RATING, 0, -1)],
        validate_choice=False,  # _check_rating says it in a sentence
        validators=[_check_rating],
    )
    body = TextAreaField(
        _l("Your review (optional)"),
        validators=[Length(max=feedback.MAX_TEXT, message=_TOO_LONG)],
    )


class SuggestionForm(FlaskForm):
    body = TextAreaField(
        _l("Your suggestion"),
        validators=[
            DataRequired(_l("Write your suggestion.")),
            Length(max=feedback.MAX_TEXT, message=_TOO_LONG),
        ],
    )


def _check_option(form: FlaskForm, field: Field) -> None:
    if not (field.data or "").isdecimal():
        raise ValidationError(_("Choose one of the answers."))


class VoteForm(FlaskForm):
    option = RadioField(
        _l("Your answer"), choices=[], validate_choice=False, validators=[_check_option]
    )


@bp.app_template_filter("rating_average")
def rating_average(value: float | None) -> str:
    """An average rating with one decimal, written the reader's way ("4,5")."""
    return "" if value is None else str(format_decimal(value, "0.0"))


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {"feedback_status_labels": STATUS_LABELS}


def _member() -> members.Member:
    member = shopping_member(current_session())
    if member is None:
        abort(redirect(url_for("account.signin")))
    return member


def _limits() -> Limits:
    return Limits.from_config(current_app.config["INSTORE"]["community"])


def _page() -> int:
    """The ``page`` query argument, 1 when it is missing or not a number."""
    text = request.args.get("page", "1")
    return min(int(text), MAX_PAGE) if text.isdecimal() and int(text) > 0 else 1


# -- the catalogue and reviews -------------------------------------------------------------------


@bp.route("/products")
def products() -> str:
    """Browse the catalogue: search by name or SKU, one category, paged, each with its stars."""
    _member()
    db = get_db()
    query = request.args.get("q", "")[:MAX_QUERY].strip()
    category = request.args.get("category", "").strip().lower() or None
    page = _page()
    found = catalogue.search_products(
        db,
        query,
        category,
        limit=PRODUCTS_PAGE_SIZE,
        offset=(page - 1) * PRODUCTS_PAGE_SIZE,
    )
    total = catalogue.count_products(db, query, category)
    summaries = reviews.rating_summaries(db, (p.id for p in found))
    return render_template(
        "community/products.html",
        products=found,
        ratings={p.id: summaries.get(p.id, reviews.NO_RATINGS) for p in found},
        categories=catalogue.categories(db),
        query=query,
        category=category or "",
        page=page,
        has_next=page * PRODUCTS_PAGE_SIZE < total,
        total=total,
    )


def _product_or_404(product_id: int) -> catalogue.Product:
    found = catalogue.get_product(get_db(), product_id)
    if found is None:
        abort(404)
    return found


def _product_page(
    member: members.Member,
    product: catalogue.Product,
    form: ReviewForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    db = get_db()
    mine = reviews.member_review(db, product.id, member.id)
    if form is None:
        form = ReviewForm()
        if mine is not None:
            form.rating.data = str(mine.rating)
            form.body.data = mine.body
    page = _page()
    listed, has_next = reviews.product_reviews(db, product.id, member.id, page)
    shown = listed + ([mine] if mine is not None else [])
    page_html = render_template(
        "community/products_detail.html",
        product=product,
        summary=reviews.rating_summary(db, product.id),
        mine=mine,
        reviews=listed,
        answers=feedback.answers_for(db, "review", (r.id for r in shown)),
        page=page,
        has_next=has_next,
        form=form,
        delete_form=ActionForm(),
    )
    return page_html, status


@bp.route("/products/<int:product_id>")
def product(product_id: int) -> tuple[str, int]:
    """One product: price, where to find it, its reviews with the store's answers, your review."""
    return _product_page(_member(), _product_or_404(product_id))


@bp.post("/products/<int:product_id>/review")
def review(product_id: int) -> Response | tuple[str, int]:
    """Write or replace the member's review of the product."""
    member = _member()
    found = _product_or_404(product_id)
    if not found.active:
        abort(404)  # withdrawn: the page shows its reviews but offers no form
    form = ReviewForm()
    if not form.validate_on_submit():
        return _product_page(member, found, form, 400)
    try:
        saved = reviews.save_review(
            get_db(),
            found.id,
            member.id,
            int(form.rating.data or 0),
            form.body.data or "",
            utcnow(),
            _limits(),
        )
    except Refused as refused:
        form.body.errors = [str(refused)]
        return _product_page(member, found, form, 400)
    except feedback.NotFound:
        abort(404)
    if saved.status == "visible":
        flash(_("Thank you! Your review is saved."))
    else:
        flash(_("Thank you! A moderator will look at your review before others see it."))
    return redirect(url_for("feedback.product", product_id=found.id, _anchor="your-review"))


@bp.post("/products/<int:product_id>/review/delete")
def delete_review(product_id: int) -> Response:
    """Take the member's own review of the product down."""
    member = _member()
    db = get_db()
    mine = reviews.member_review(db, product_id, member.id)
    if mine is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)  # CSRFProtect answers first; this keeps the check if it is ever exempted
    reviews.delete_review(db, mine.id, member.id)
    flash(_("Your review is deleted."))
    return redirect(url_for("feedback.product", product_id=product_id))


# -- polls ---------------------------------------------------------------------------------------


@bp.route("/polls", endpoint="polls")
def polls_list() -> str:
    """The store's polls, open ones first."""
    member = _member()
    return render_template(
        "community/polls.html", polls=polls.list_polls(get_db(), member.id, utcnow()), now=utcnow()
    )


def _poll_page(
    poll: polls.Poll, form: VoteForm | None = None, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    if form is None:
        form = VoteForm()
        form.option.data = None if poll.my_vote is None else str(poll.my_vote)
    form.option.choices = [SelectChoice(str(option.id), option.label) for option in poll.options]
    return (
        render_template(
            "community/polls_detail.html", poll=poll, form=form, error=error, now=utcnow()
        ),
        status,
    )


@bp.route("/polls/<int:poll_id>", methods=["GET", "POST"])
def poll(poll_id: int) -> Response | tuple[str, int]:
    """One poll: vote (or change your vote) while it is open; results once voted or closed."""
    member = _member()
    db = get_db()
    found = polls.get_poll(db, poll_id, member.id)
    if found is None:
        abort(404)
    if request.method == "GET":
        return _poll_page(found)
    form = VoteForm()
    if not form.validate_on_submit():
        return _poll_page(found, form, status=400)
    try:
        polls.vote(db, found.id, int(form.option.data or 0), member.id, utcnow())
    except polls.PollClosed:
        return _poll_page(found, form, _("This poll is closed, so it takes no more votes."), 400)
    except feedback.NotFound:
        abort(404)
    except feedback.FeedbackError:
        form.option.errors = [_("Choose one of the answers.")]
        return _poll_page(found, form, status=400)
    flash(_("Thank you! Your vote is counted."))
    return redirect(url_for("feedback.poll", poll_id=found.id))


# -- the suggestions box -------------------------------------------------------------------------


def _suggestions_page(
    member: members.Member, form: SuggestionForm | None = None, status: int = 200
) -> tuple[str, int]:
    db = get_db()
    page = _page()
    listed, has_next = suggestions.public_suggestions(db, member.id, page)
    return (
        render_template(
            "community/suggestions.html",
            suggestions=listed,
            answers=feedback.answers_for(db, "suggestion", (s.id for s in listed)),
            form=form or SuggestionForm(),
            me=member.id,
            page=page,
            has_next=has_next,
        ),
        status,
    )


@bp.route("/suggestions", methods=["GET", "POST"], endpoint="suggestions")
def suggestions_box() -> Response | tuple[str, int]:
    """The suggestions everyone may read, with the store's answers, and the box to add one."""
    member = _member()
    if request.method == "GET":
        return _suggestions_page(member)
    form = SuggestionForm()
    if not form.validate_on_submit():
        return _suggestions_page(member, form, 400)
    try:
        saved = suggestions.post_suggestion(
            get_db(), member.id, form.body.data or "", utcnow(), _limits()
        )
    except Refused as refused:
        form.body.errors = [str(refused)]
        return _suggestions_page(member, form, 400)
    if saved.status == "visible":
        flash(_("Thank you! Your suggestion is posted."))
    else:
        flash(_("Thank you! A moderator will look at your suggestion before others see it."))
    return redirect(url_for("feedback.suggestion", suggestion_id=saved.id))


def _suggestion_page(
    member: members.Member,
    found: suggestions.Suggestion,
    form: SuggestionForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    if form is None:
        form = SuggestionForm()
        form.body.data = found.body
    return (
        render_template(
            "community/suggestions_detail.html",
            suggestion=found,
            answers=feedback.answers_for(get_db(), "suggestion", [found.id])[found.id],
            form=form,
            delete_form=ActionForm(),
            mine=found.author_id == member.id,
        ),
        status,
    )


def _readable_or_404(member: members.Member, suggestion_id: int) -> suggestions.Suggestion:
    found = suggestions.readable(get_db(), suggestion_id, member.id)
    if found is None:
        abort(404)
    return found


@bp.route("/suggestions/<int:suggestion_id>", methods=["GET", "POST"])
def suggestion(suggestion_id: int) -> Response | tuple[str, int]:
    """One suggestion and the store's answers; its author may edit it here."""
    member = _member()
    found = _readable_or_404(member, suggestion_id)
    if request.method == "GET":
        return _suggestion_page(member, found)
    if found.author_id != member.id:
        abort(404)
    form = SuggestionForm()
    if not form.validate_on_submit():
        return _suggestion_page(member, found, form, 400)
    try:
        saved = suggestions.edit_suggestion(
            get_db(), found.id, member.id, form.body.data or "", utcnow(), _limits()
        )
    except Refused as refused:
        form.body.errors = [str(refused)]
        return _suggestion_page(member, found, form, 400)
    except feedback.NotFound:
        abort(404)
    if saved.status == "visible":
        flash(_("Your suggestion is saved."))
    else:
        flash(_("Your suggestion is saved. A moderator will look at it before others see it."))
    return redirect(url_for("feedback.suggestion", suggestion_id=found.id))


@bp.post("/suggestions/<int:suggestion_id>/delete")
def delete_suggestion(suggestion_id: int) -> Response:
    member = _member()
    found = _readable_or_404(member, suggestion_id)
    if found.author_id != member.id:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    suggestions.delete_suggestion(get_db(), found.id, member.id)
    flash(_("Your suggestion is deleted."))
    return redirect(url_for("feedback.suggestions"))
