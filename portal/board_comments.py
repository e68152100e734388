"""Comments and reactions on a board: post, reply, edit, delete, react (routes of ``boards``).

The rules are in ``community.board_comments``. A comment that does not pass comes back on the
board page with HTTP 400, the sentence under the form it was typed in and the text kept. A
published comment tells the board's owner (or the replied-to author) in the same transaction
(``portal.board_news``); a held one tells nobody until a moderator approves it.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.wrappers import Response

from community import board_comments, boards
from community.boards import BoardError, BoardNotFound
from community.content import VISIBLE
from community.schema_social import REACTIONS
from community.screening import Refused
from instore.clock import utcnow
from instore.db import transaction
from portal.board_forms import CommentForm
from portal.board_news import comment_url, notify_published_comment
from portal.boards import PageResult, bp, check_action, limits, me, render_board, visible_or_404
from portal.database import get_db


def _parent_id(form: CommentForm) -> int | None:
    """The comment a reply answers (None: a top-level comment); junk reads as a missing one."""
    raw = (form.parent_id.data or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        abort(404)
    return int(raw)


@bp.route("/<int:board_id>/comments", methods=["POST"])
@login_required
def comment(board_id: int) -> Response | PageResult:
    """Comment on a board, or reply to a comment on it (``parent_id``)."""
    board = visible_or_404(board_id)
    form = CommentForm()
    parent_id = _parent_id(form)

    def again() -> PageResult:
        if parent_id is None:
            return render_board(board, comment_form=form, status=400)
        return render_board(board, reply_form=form, status=400)

    if not form.validate_on_submit():
        return again()
    db = get_db()
    try:
        with transaction(db):
            stored = board_comments.add_comment(
                db, board.id, me(), form.body.data or "", utcnow(), limits(), parent_id
            )
            if stored.status == VISIBLE:
                notify_published_comment(db, stored.id)
    except BoardNotFound:
        abort(404)
    except (Refused, BoardError) as refused:
        form.body.errors = [str(refused)]
        return again()
    if stored.status != VISIBLE:
        flash(_("Your comment waits for a moderator before others see it."))
    return redirect(comment_url(db, board.id, stored.id, me()))


@bp.route("/<int:board_id>/comments/<int:comment_id>/edit", methods=["GET", "POST"])
@login_required
def edit_comment(board_id: int, comment_id: int) -> Response | PageResult:
    """The author rewrites their comment; a held or hidden one goes back to the moderators."""
    board = visible_or_404(board_id)
    found = board_comments.get_comment(get_db(), comment_id)
    if found is None or found.board_id != board.id or found.author_id != me():
        abort(404)
    form = CommentForm(data={"body": found.body})
    if form.validate_on_submit():
        try:
            stored = board_comments.edit_comment(
                get_db(), board.id, found.id, me(), form.body.data or "", utcnow(), limits()
            )
        except BoardNotFound:
            abort(404)
        except (Refused, BoardError) as refused:
            form.body.errors = [str(refused)]
        else:
            if stored.status == VISIBLE:
                flash(_("Your comment is saved."))
            else:
                flash(_("Your comment is saved. Others see it once a moderator has looked."))
            return redirect(comment_url(get_db(), board.id, found.id, me()))
    page = render_template(
        "community/board_comment_edit.html", board=board, comment=found, form=form
    )
    return page, 400 if form.is_submitted() else 200


@bp.route("/<int:board_id>/comments/<int:comment_id>/delete", methods=["POST"])
@login_required
def delete_comment(board_id: int, comment_id: int) -> Response:
    """Delete a comment (with its replies): its author, or the board's owner."""
    check_action()
    db = get_db()
    member_id = me()
    try:
        board_comments.delete_comment(db, board_id, comment_id, member_id)
    except BoardNotFound:
        abort(404)
    flash(_("The comment is deleted."))
    board = boards.get_board(db, board_id)
    if board is None or not boards.can_view(db, board, member_id):
        return redirect(url_for("boards.index"))
    return redirect(url_for("boards.view", board_id=board_id, _anchor="comments"))


@bp.route("/<int:board_id>/react/<reaction>", methods=["POST"])
@login_required
def react(board_id: int, reaction: str) -> Response:
    """Give a reaction to a board, or take it back (the same button)."""
    if reaction not in REACTIONS:
        abort(404)
    check_action()
    board = visible_or_404(board_id)
    try:
        board_comments.toggle_reaction(get_db(), board.id, me(), reaction, utcnow())
    except BoardNotFound:
        abort(404)
    return redirect(url_for("boards.view", board_id=board.id, _anchor="reactions"))
