"""Members' boards: the lists, one board, making and changing one, and shopping it in store.

The rules live in ``community.boards`` (who sees what, limits, screening); this blueprint adds
what a person must be told, and how:

- Every page needs a signed-in member. A board the member may not see answers 404 exactly like
  an id that does not exist, and so does anyone's attempt to change a board not theirs.
- A form that does not pass (too long, a watched word, a picture Pillow refuses, a product not in
  the catalogue) comes back with HTTP 400, the sentence under its field and what was typed kept;
  nothing is stored.
- Photos are the only large uploads: the app's 16 KB body limit is raised for the add-item
  endpoint alone, and every picture is re-encoded before it is kept (``community.images``).

The comment and reaction routes are on the same blueprint, in ``portal.board_comments``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from community import board_comments, boards, catalogue, images
from community.boards import Board, BoardError, BoardNotFound
from community.schema_social import REACTIONS
from community.screening import Limits, Refused
from instore.clock import utcnow
from instore.member_data import UPLOADS_DIRNAME
from portal.board_forms import AUDIENCE_LABELS, NO_PRODUCT, BoardForm, CommentForm, ItemForm
from portal.database import get_db
from portal.forms import ActionForm

bp = Blueprint("boards", __name__, url_prefix="/boards")

# Room for the multipart framing, the note and the CSRF field around the largest photo.
UPLOAD_OVERHEAD_BYTES = 64 * 1024
# Catalogue search results on the add-item page: a phone screen or two of names.
SEARCH_RESULTS = 20
# The longest search a member can type that is still a product name (longer is cut, not refused).
MAX_QUERY = 80
# Past this page of the public feed nobody pages by hand; a bigger number is cut to it (an
# unbounded one would overflow SQLite's OFFSET).
MAX_PAGE = 10_000
# Comment ids in ``?before=``, ``?after=``, ``?around=``: longer is past SQLite's integers.
MAX_ID_DIGITS = 18

PageResult = tuple[str, int]


def me() -> int:
    """The signed-in member's id (every view here is ``login_required``)."""
    return int(current_user.member.id)


def limits() -> Limits:
    """The ``[community]`` settings that screening applies."""
    return Limits.from_config(current_app.config["INSTORE"]["community"])


def uploads_dir() -> Path:
    """Where members' uploaded pictures live (beside the database)."""
    return Path(current_app.config["INSTORE"].var_dir) / UPLOADS_DIRNAME


def visible_or_404(board_id: int) -> Board:
    """The board if this member may see it; else 404, the same as an id that does not exist."""
    try:
        return boards.visible_board(get_db(), board_id, me())
    except BoardNotFound:
        abort(404)


def own_or_404(board_id: int) -> Board:
    """The board if it is this member's own; anyone else's is a 404."""
    try:
        return boards.own_board(get_db(), board_id, me())
    except BoardNotFound:
        abort(404)


def check_action() -> None:
    """A button's POST: just the CSRF token (CSRFProtect answers first; this keeps the check)."""
    if not ActionForm().validate_on_submit():
        abort(400)


@bp.url_value_preprocessor
def _allow_photo_upload(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Raise the app's 16 KB body limit for the add-item form, for signed-in members only.

    A URL value preprocessor runs before the app-wide CSRF check reads the body, so the raised
    limit is in force when it does.
    """
    if endpoint == "boards.add_item" and current_user.is_authenticated:
        request.max_content_length = images.MAX_UPLOAD_BYTES + UPLOAD_OVERHEAD_BYTES


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> Response | PageResult:
    """A photo past even the raised limit: the add page again, saying how big one may be."""
    board_id = (request.view_args or {}).get("board_id")
    if request.endpoint == "boards.add_item" and current_user.is_authenticated and board_id:
        try:  # not own_or_404: an abort inside an error handler would be a 500
            board = boards.own_board(get_db(), int(board_id), me())
        except BoardNotFound:
            board = None
        if board is not None:
            form = ItemForm(formdata=None)
            form.photo.errors = [_("The photo is larger than 8 MB. Choose a smaller one.")]
            return _add_page(board, form, 413)
    from portal.security import ERROR_PAGES

    title, message = ERROR_PAGES[413]
    return render_template("error.html", title=title, message=message, status=413), 413


# -- the lists -----------------------------------------------------------------------------------


@bp.route("")
@login_required
def index() -> str:
    """The member's own boards, their friends' and everyone's public ones (paged)."""
    db = get_db()
    member_id = me()
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    return render_template(
        "community/boards.html",
        mine=boards.my_boards(db, member_id),
        friends=boards.friends_boards(db, member_id),
        public=boards.public_boards(db, member_id, page),
        audiences=AUDIENCE_LABELS,
    )


# -- one board -----------------------------------------------------------------------------------


def _comment_id_arg(name: str) -> int | None:
    """A comment id from the query string; anything else (junk, a number SQLite cannot hold)
    reads as none given, so the board shows its latest comments."""
    raw = request.args.get(name, "")
    return int(raw) if raw.isdecimal() and len(raw) <= MAX_ID_DIGITS else None


def render_board(
    board: Board,
    comment_form: CommentForm | None = None,
    reply_form: CommentForm | None = None,
    status: int = 200,
    **paging: int | None,
) -> PageResult:
    """The board page; a comment or reply form that failed is passed in to show its errors.

    ``paging`` picks the page of comments (``before``, ``after`` or ``around`` a comment id, see
    ``board_comments.comment_page``); a failed reply shows the page holding its thread.
    """
    db = get_db()
    member_id = me()
    if reply_form is not None and str(reply_form.parent_id.data or "").isdecimal():
        paging = {"around": int(reply_form.parent_id.data or 0)}
    comments = board_comments.comment_page(db, board, member_id, **paging)
    threads = comments.threads
    if reply_form is not None and reply_form.parent_id.data not in {
        str(t.comment.id)
        for t in threads
        if t.comment is not None and t.comment.status == "visible"
    }:
        # No reply form for that comment on the page (a reply, or gone): say it on the main form.
        comment_form, reply_form = reply_form, None
    page = render_template(
        "community/board.html",
        board=board,
        mine=board.owner_id == member_id,
        me=member_id,
        items=boards.board_items(db, board.id),
        threads=threads,
        comments=comments,
        counts=board_comments.reaction_counts(db, board),
        my_reactions=board_comments.my_reactions(db, board.id, member_id),
        reactors=board_comments.reactors(db, board, member_id),
        reactions=REACTIONS,
        comment_form=comment_form or CommentForm(formdata=None),
        reply_form=reply_form,
        audiences=AUDIENCE_LABELS,
    )
    return page, status


@bp.route("/<int:board_id>")
@login_required
def view(board_id: int) -> PageResult:
    """One board: its items, reactions and a page of comments (the latest unless asked)."""
    return render_board(
        visible_or_404(board_id),
        before=_comment_id_arg("before"),
        after=_comment_id_arg("after"),
        around=_comment_id_arg("around"),
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> Response | PageResult:
    """Start a board; it opens empty, ready for its first item."""
    form = BoardForm()
    error = None
    if form.validate_on_submit():
        try:
            board_id = boards.create_board(
                get_db(),
                me(),
                form.title.data or "",
                form.description.data or "",
                form.audience.data or "",
                utcnow(),
                limits(),
            )
        except (Refused, BoardError) as refused:
            error = str(refused)
        else:
            return redirect(url_for("boards.view", board_id=board_id))
    status = 400 if form.is_submitted() else 200
    return render_template("community/board_form.html", form=form, board=None, error=error), status


@bp.route("/<int:board_id>/edit", methods=["GET", "POST"])
@login_required
def edit(board_id: int) -> Response | PageResult:
    """Change the title, description or audience of one's own board."""
    board = own_or_404(board_id)
    form = BoardForm(data=vars(board))
    error = None
    if form.validate_on_submit():
        try:
            status = boards.edit_board(
                get_db(),
                board.id,
                board.owner_id,
                form.title.data or "",
                form.description.data or "",
                form.audience.data or "",
                utcnow(),
                limits(),
            )
        except BoardNotFound:
            abort(404)
        except (Refused, BoardError) as refused:
            error = str(refused)
        else:
            if status == "visible":
                flash(_("Your board is saved."))
            else:
                flash(_("Your board is saved. It shows to others once a moderator has looked."))
            return redirect(url_for("boards.view", board_id=board.id))
    status_code = 400 if form.is_submitted() else 200
    return render_template(
        "community/board_form.html", form=form, board=board, error=error
    ), status_code


@bp.route("/<int:board_id>/delete", methods=["GET", "POST"])
@login_required
def delete(board_id: int) -> Response | PageResult:
    """Ask first; then delete the board with its items, comments, reactions and photos."""
    board = own_or_404(board_id)
    form = ActionForm()
    if form.validate_on_submit():
        try:
            photos = boards.delete_board(get_db(), board.id, board.owner_id)
        except BoardNotFound:
            abort(404)
        for photo in photos:
            images.remove_upload(uploads_dir(), photo)
        flash(_("Your board “%(title)s” is deleted.", title=board.title))
        return redirect(url_for("boards.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("community/board_delete.html", board=board, form=form), status


# -- items ---------------------------------------------------------------------------------------


def _search_query() -> str:
    return (request.args.get("q") or "").strip()[:MAX_QUERY]


def _add_page(board: Board, form: ItemForm, status: int = 200) -> PageResult:
    """The add-item page: the catalogue search (a GET form) and the item form (a POST)."""
    db = get_db()
    query = _search_query()
    results = catalogue.search_products(db, query, limit=SEARCH_RESULTS)
    chosen = _chosen_product(form)
    if chosen is not None and all(product.id != chosen for product in results):
        product = catalogue.get_product(db, chosen)
        if product is not None and product.active:
            results.insert(0, product)
    page = render_template(
        "community/board_item_add.html",
        board=board,
        form=form,
        query=query,
        results=results,
        chosen=chosen,
        no_product=NO_PRODUCT,
        full=board.item_count >= boards.MAX_ITEMS,
    )
    return page, status


def _chosen_product(form: ItemForm) -> int | None:
    """The product id the form (or a ``?product=`` link) picked, or None for a photo only."""
    raw = form.product.data if form.is_submitted() else request.args.get("product")
    if raw and str(raw).isdigit():
        return int(raw)
    return None


@bp.route("/<int:board_id>/items/new", methods=["GET", "POST"])
@login_required
def add_item(board_id: int) -> Response | PageResult:
    """Find a product in the catalogue, pick it, add a note and optionally a photo."""
    board = own_or_404(board_id)
    form = ItemForm()
    if not form.validate_on_submit():
        return _add_page(board, form, 400 if form.is_submitted() else 200)
    raw_product = (form.product.data or "").strip()
    product_id = _chosen_product(form)
    upload = form.photo.data
    has_photo = upload is not None and bool(getattr(upload, "filename", ""))
    if raw_product not in ("", NO_PRODUCT) and product_id is None:
        form.product.errors = [_("That product is not in the catalogue.")]
        return _add_page(board, form, 400)
    if product_id is None and not has_photo:
        form.product.errors = [_("Choose a product from the catalogue or add a photo.")]
        return _add_page(board, form, 400)
    photo_path = None
    if has_photo:
        try:
            photo_path = images.store_upload(
                uploads_dir(), "boards", upload.read(), images.PHOTO_SIDE
            )
        except images.ImageRefused as refused:
            form.photo.errors = [str(refused)]
            return _add_page(board, form, 400)
    try:
        boards.add_item(
            get_db(),
            board.id,
            board.owner_id,
            product_id,
            form.note.data or "",
            photo_path,
            utcnow(),
            limits(),
        )
    except BoardNotFound:
        images.remove_upload(uploads_dir(), photo_path)
        abort(404)
    except Refused as refused:  # the note: a watched word, or the member may not post now
        images.remove_upload(uploads_dir(), photo_path)
        form.note.errors = [str(refused)]
        return _add_page(board, form, 400)
    except BoardError as refused:  # the product went out of the catalogue, or the board is full
        images.remove_upload(uploads_dir(), photo_path)
        form.product.errors = [str(refused)]
        return _add_page(board, form, 400)
    flash(_("Added to your board."))
    return redirect(url_for("boards.view", board_id=board.id))


@bp.route("/<int:board_id>/items/<int:item_id>/remove", methods=["POST"])
@login_required
def remove_item(board_id: int, item_id: int) -> Response:
    """Take one item off one's own board (its photo is deleted too)."""
    check_action()
    board = own_or_404(board_id)
    try:
        photo = boards.remove_item(get_db(), board.id, board.owner_id, item_id)
    except BoardNotFound:
        abort(404)
    images.remove_upload(uploads_dir(), photo)
    flash(_("The item is off your board."))
    return redirect(url_for("boards.view", board_id=board.id, _anchor="items"))


@bp.route("/<int:board_id>/items/<int:item_id>/<any(up, down):direction>", methods=["POST"])
@login_required
def move_item(board_id: int, item_id: int, direction: str) -> Response:
    """Move an item one place earlier (up) or later (down) on one's own board."""
    check_action()
    board = own_or_404(board_id)
    try:
        boards.move_item(
            get_db(), board.id, board.owner_id, item_id, -1 if direction == "up" else 1
        )
    except BoardNotFound:
        abort(404)
    return redirect(url_for("boards.view", board_id=board.id, _anchor=f"i-{item_id}"))


# -- shop this board in store --------------------------------------------------------------------


@bp.route("/<int:board_id>/shop")
@login_required
def shop(board_id: int) -> str:
    """The board's products by zone, the zone the member stands in first."""
    board = visible_or_404(board_id)
    return render_template(
        "community/board_shop.html",
        board=board,
        plan=boards.shop_in_store(get_db(), board, me()),
    )


# The comment and reaction routes join this blueprint (they need ``bp`` and the helpers above).
from portal import board_comments as _comment_routes  # noqa: E402, F401
