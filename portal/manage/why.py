""" "Why didn't I get the deal?": the decision log explained for one member, for staff.

A shopper at the till asks why their friend got an offer and they did not; staff look the member
up here and read, per offer and per friend, the engine's own sentence for its latest decision
(``offers.decide.why``, ``offers.friends.why_friend``) — the same text ``instore offers why``
prints at the box.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _

from instore import members
from offers.decide import UnknownSubject, why
from offers.friends import why_friend
from offers.model import list_offers
from portal.database import get_db
from portal.manage.access import require_role

bp = Blueprint("manage_why", __name__, url_prefix="/manage/why")
require_role(bp, "staff")

# Offers and friends explained per lookup: a member's recent history, not their whole life.
SUBJECTS_SHOWN = 20
MAX_IDENTIFIER = 254  # the longest valid email address
MAX_ID_DIGITS = 18  # row ids fit SQLite's 64-bit integers; a longer number is a typo


@dataclass(frozen=True, slots=True)
class Explanation:
    about: str
    sentence: str


def _subjects(member_id: int) -> tuple[list[int], list[int]]:
    """Offer ids and friend ids the member was last considered for, most recent first."""
    rows = (
        get_db()
        .conn.execute(
            """SELECT offer_id, friend_id, MAX(id) AS latest FROM decisions WHERE member_id = ?
           GROUP BY offer_id, friend_id ORDER BY latest DESC LIMIT ?""",
            (member_id, SUBJECTS_SHOWN),
        )
        .fetchall()
    )
    offers = [int(o) for o, f, _ in rows if o is not None]
    friends = [int(f) for o, f, _ in rows if f is not None]
    return offers, friends


def explain(member: members.Member, offer_id: int | None) -> list[Explanation]:
    """The sentences for this member: the chosen offer first, then their recent history."""
    db = get_db()
    timezone = current_app.config["INSTORE"]["store"]["timezone"]
    offer_ids, friend_ids = _subjects(member.id)
    if offer_id is not None and offer_id not in offer_ids:
        offer_ids.insert(0, offer_id)
    names = {offer.id: offer.name for offer in list_offers(db)}
    found: list[Explanation] = []
    for oid in offer_ids:
        try:
            found.append(Explanation(names.get(oid, f"#{oid}"), why(db, member.id, oid, timezone)))
        except UnknownSubject:
            continue  # deleted since: nothing left to explain
    for fid in friend_ids:
        friend = members.get_member(db, fid)
        try:
            sentence = why_friend(db, member.id, fid, timezone)
        except UnknownSubject:
            continue
        label = _("Friend note about %(name)s", name=friend.display_name if friend else fid)
        found.append(Explanation(label, sentence))
    return found


@bp.route("/", strict_slashes=False)
def page() -> tuple[str, int]:
    """Look a member up by email or loyalty number (a GET form: it changes nothing)."""
    db = get_db()
    identifier = request.args.get("member", "").strip()[:MAX_IDENTIFIER]
    offer_arg = request.args.get("offer", "")
    offer_id = int(offer_arg) if offer_arg.isdigit() and len(offer_arg) <= MAX_ID_DIGITS else None
    error, member, explanations = None, None, []
    if identifier:
        member = members.find_by_identifier(db, identifier)
        if member is None and identifier.isdigit() and len(identifier) <= MAX_ID_DIGITS:
            member = members.get_member(db, int(identifier))
        if member is None:
            error = _(
                "There is no member with that email or loyalty number. Check it and try again."
            )
        else:
            explanations = explain(member, offer_id)
    return (
        render_template(
            "manage/why.html",
            identifier=identifier,
            offer_id=offer_id,
            offers=list_offers(db),
            member=member,
            explanations=explanations,
            error=error,
        ),
        400 if error else 200,
    )
