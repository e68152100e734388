"""The community's front page (``/community``): where a member finds everything social.

New public boards, open polls and the store's latest answers to suggestions, with the way into
each feature. It needs a signed-in member (it shows other members' names and boards).
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from community import highlights
from instore.clock import utcnow
from portal.database import get_db

bp = Blueprint("community", __name__)


@bp.route("/community")
@login_required
def home() -> str:
    db = get_db()
    member_id = current_user.member.id
    return render_template(
        "community/home.html",
        boards=highlights.public_boards(db, member_id),
        polls=highlights.open_polls(db, member_id, utcnow()),
        suggestions=highlights.answered_suggestions(db, member_id),
    )
