"""A member's friends page: requests, friends, blocks and who sees them arrive in the store.

The rules live in ``community.friends``; this page adds what a person must and must not be told:

- Asking by email or loyalty number always answers with the same sentence, whether the account
  exists, has blocked the asker, or is already a friend, so the form cannot be used to learn who
  shops here or who blocked whom. A request to someone who blocked the asker is kept unseen
  (``ask_without_telling``) so the "sent" list looks the same too.
- Blocking from this page also ends the friendship, because a member who blocks someone expects
  them gone from their friends; the library keeps friendships across blocks only for callers that
  block without meaning to unfriend.
- Anyone with a block between the two is left out of every list here except the blocker's own
  "blocked" list, so the blocked member's pages show nothing a plain unfriend would not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, RadioField, SelectChoice, SelectMultipleField, StringField
from wtforms.validators import DataRequired, InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from community import friends
from community.migrations import VISIBILITY_CHOICES
from instore import members
from instore.db import transaction
from portal import community_notes
from portal.database import get_db
from portal.forms import MAX_IDENTIFIER, ActionForm, _check_identifier

log = logging.getLogger(__name__)

bp = Blueprint("friends", __name__, url_prefix="/friends")

VISIBILITY_LABELS = {
    "all": _l("All my friends"),
    "chosen": _l("Only the friends I choose below"),
    "nobody": _l("Nobody"),
}


class MemberIdentifierForm(FlaskForm):
    """Someone named by email or loyalty number: to ask as a friend, or to block."""

    identifier = StringField(
        _l("Their email or loyalty number"),
        validators=[
            DataRequired(_l("Enter their email or loyalty number.")),
            Length(max=MAX_IDENTIFIER, message=_l("That is too long for an email address.")),
            _check_identifier,
        ],
    )


class VisibilityForm(FlaskForm):
    """Who sees this member arrive in the store; the chosen list's choices are their friends."""

    visibility = RadioField(
        _l("Who sees when you are in the store"),
        choices=[SelectChoice(choice, VISIBILITY_LABELS[choice]) for choice in VISIBILITY_CHOICES],
        validators=[InputRequired(_l("Choose who sees you."))],
    )
    chosen = SelectMultipleField(
        _l("The friends I choose"),
        coerce=int,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    ghost = BooleanField(_l("Ghost mode: hide me from every friend, and tell me about none"))


def _me() -> int:
    member: members.Member = current_user.member
    return member.id


def _unblocked(member_id: int, ids: list[int]) -> list[int]:
    """The ids with no block either way between them and the member."""
    db = get_db()
    return [other for other in ids if not friends.blockers_between(db, member_id, other)]


def _blocked_by(member_id: int) -> list[int]:
    """Whom this member blocked, earliest first."""
    rows = (
        get_db()
        .conn.execute(
            "SELECT blocked_id FROM blocks WHERE blocker_id = ? ORDER BY created_at, blocked_id",
            (member_id,),
        )
        .fetchall()
    )
    return [int(row[0]) for row in rows]


def _lists(member_id: int) -> dict[str, list[int]]:
    """The page's lists of member ids, each already cleared of blocks (except "blocked")."""
    db = get_db()
    return {
        "incoming": _unblocked(member_id, friends.pending_requests(db, member_id)),
        # A hidden request to a blocker stays listed: it must read like any unanswered one.
        "sent": friends.sent_requests(db, member_id),
        "friends": _unblocked(member_id, friends.mutual_friends(db, member_id)),
        "blocked": _blocked_by(member_id),
    }


def _people(ids: list[int]) -> list[members.Member]:
    db = get_db()
    found = (members.get_member(db, member_id) for member_id in ids)
    return [member for member in found if member is not None]


def _visibility_form(member_id: int, friend_ids: list[int]) -> VisibilityForm:
    form = VisibilityForm(prefix="seen")
    form.chosen.choices = [SelectChoice(m.id, m.display_name) for m in _people(friend_ids)]
    return form


def _render(
    request_form: MemberIdentifierForm | None = None,
    block_form: MemberIdentifierForm | None = None,
    visibility_form: VisibilityForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The whole page; a form that failed is passed in so its errors show beside its fields."""
    member_id = _me()
    db = get_db()
    lists = _lists(member_id)
    if visibility_form is None:
        visibility_form = _visibility_form(member_id, lists["friends"])
        settings = friends.friend_settings(db, member_id)
        visibility_form.visibility.data = settings.visibility
        visibility_form.ghost.data = settings.ghost
        visibility_form.chosen.data = sorted(settings.chosen)
    consents = members.current_consents(db, member_id)
    page = render_template(
        "community/friends.html",
        people={name: _people(ids) for name, ids in lists.items()},
        request_form=request_form or MemberIdentifierForm(prefix="ask"),
        block_form=block_form or MemberIdentifierForm(prefix="block"),
        visibility_form=visibility_form,
        shares_visits=consents.get("friend_visibility", {}).get("granted", False),
    )
    return page, status


@bp.route("", methods=["GET"])
@login_required
def index() -> tuple[str, int]:
    """Friends, requests both ways, blocks and visibility, on one page."""
    return _render()


def _named_member(form: MemberIdentifierForm, member_id: int) -> members.Member | None:
    """The member the form names, or None: no such account (which the answer must not reveal),
    or the form has errors to show again (``form.errors``: bad input, or they named themselves).
    """
    if not form.validate_on_submit():
        return None
    other = members.find_by_identifier(get_db(), form.identifier.data or "")
    if other is not None and other.id == member_id:
        form.identifier.errors = [_("That is your own account.")]
        return None
    return other


@bp.route("/ask", methods=["POST"])
@login_required
def ask() -> Response | tuple[str, int]:
    """Send a request by email or loyalty number; the answer never says who exists."""
    form = MemberIdentifierForm(prefix="ask")
    member_id = _me()
    other = _named_member(form, member_id)
    if form.errors:
        return _render(request_form=form, status=400)
    if other is not None:
        if member_id in friends.blockers_between(get_db(), member_id, other.id):
            form.identifier.errors = [_("You have blocked this member. Unblock them first.")]
            return _render(request_form=form, status=400)
        _ask(member_id, other.id)
    flash(_("If that member exists, they will see your request."))
    return redirect(url_for("friends.index"))


@bp.route("/block", methods=["POST"])
@login_required
def block_by_identifier() -> Response | tuple[str, int]:
    """Block someone by email or loyalty number, whether or not they ever asked."""
    form = MemberIdentifierForm(prefix="block")
    member_id = _me()
    other = _named_member(form, member_id)
    if form.errors:
        return _render(block_form=form, status=400)
    if other is not None:
        _block(member_id, other.id)
    flash(_("If that member exists, they are now blocked."))
    return redirect(url_for("friends.index"))


@bp.route("/visibility", methods=["POST"])
@login_required
def visibility() -> Response | tuple[str, int]:
    """Save who sees this member arrive, the chosen friends and ghost mode together."""
    member_id = _me()
    form = _visibility_form(member_id, _lists(member_id)["friends"])
    if not form.validate_on_submit():
        return _render(visibility_form=form, status=400)
    db = get_db()
    with transaction(db):
        friends.set_visibility(db, member_id, form.visibility.data or "")
        friends.set_ghost(db, member_id, bool(form.ghost.data))
        friends.choose_visible_friends(db, member_id, form.chosen.data or [])
    flash(_("Your visibility settings are saved."))
    return redirect(url_for("friends.index"))


def _block(member_id: int, other_id: int) -> None:
    """Block and end any friendship or request, as one change (see the module docstring)."""
    db = get_db()
    with transaction(db):
        friends.unfriend(db, member_id, other_id)
        friends.block(db, member_id, other_id)
    log.info("member blocked", extra={"member": member_id})


def _ask(member_id: int, other_id: int) -> None:
    """Ask, and tell the other member in their feed when it is news to them.

    Only a request they will actually see is announced: not a repeat, and not one to a member who
    blocked the asker (kept unseen, see the module docstring). Asking someone whose request was
    waiting makes them friends; that is announced as an accepted request.
    """
    db = get_db()
    with transaction(db):
        before = friends.friendship(db, member_id, other_id)
        unseen = bool(friends.blockers_between(db, member_id, other_id))
        status = friends.ask_without_telling(db, member_id, other_id)
        if unseen or before == (member_id, status):
            return
        if status == "accepted":
            _tell_accepted(member_id, other_id)
            return
        name = _display_name(member_id)
        community_notes.notify(
            db,
            other_id,
            "friend_request",
            lambda: _("%(name)s wants to be friends", name=name),
            "",
            url_for("friends.index"),
        )


def _display_name(member_id: int) -> str:
    found = members.get_member(get_db(), member_id)
    return found.display_name if found else ""


def _tell_accepted(member_id: int, requester_id: int) -> None:
    """The member accepted ``requester_id``'s request: tell the one who asked."""
    name = _display_name(member_id)
    community_notes.notify(
        get_db(),
        requester_id,
        "friend_request",
        lambda: _("%(name)s accepted your friend request", name=name),
        "",
        url_for("friends.index"),
    )


def _accept(member_id: int, other_id: int) -> None:
    db = get_db()
    with transaction(db):
        if friends.accept_friend(db, member_id, other_id):
            _tell_accepted(member_id, other_id)


def _end(member_id: int, other_id: int) -> None:
    friends.unfriend(get_db(), member_id, other_id)


def _unblock(member_id: int, other_id: int) -> None:
    friends.unblock(get_db(), member_id, other_id)


# action: (the lists the other member must be in, what to do, what to tell the member)
ACTIONS: dict[str, tuple[tuple[str, ...], Callable[[int, int], None], str]] = {
    "accept": (("incoming",), _accept, _l("You and %(name)s are now friends.")),
    "decline": (("incoming",), _end, _l("You declined the request from %(name)s.")),
    "cancel": (("sent",), _end, _l("Your request to %(name)s is cancelled.")),
    "remove": (("friends",), _end, _l("%(name)s is no longer your friend.")),
    "block": (
        ("incoming", "sent", "friends"),
        _block,
        _l("%(name)s is blocked: they cannot see you, befriend you or message you."),
    ),
    "unblock": (("blocked",), _unblock, _l("%(name)s is unblocked.")),
}


@bp.route("/<int:other_id>/<action>", methods=["POST"])
@login_required
def act(other_id: int, action: str) -> Response:
    """A button beside someone in one of the lists; anyone not in that list is a 404."""
    if action not in ACTIONS:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)  # CSRFProtect answers first; this keeps the check if it is ever exempted
    member_id = _me()
    allowed_in, perform, said = ACTIONS[action]
    lists = _lists(member_id)
    if not any(other_id in lists[name] for name in allowed_in):
        abort(404)
    other = members.get_member(get_db(), other_id)
    if other is None:
        abort(404)
    perform(member_id, other_id)
    flash(str(said) % {"name": other.display_name})
    return redirect(url_for("friends.index"))
