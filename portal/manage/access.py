"""Who may use which console page, and the audit trail of what they did.

Roles are ranked: ``staff`` < ``manager`` < ``admin``; each page asks for the lowest role that may
use it and anyone ranked higher may too. A shopper who is signed in gets a 403 page that says so
(never a redirect back to a sign-in they already passed, which would loop); someone not signed in
is sent to the console's sign-in with the page they wanted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from instore import audit, members
from instore.staff import CONSOLE_ROLES, ROLE_RANK
from portal.database import get_db

__all__ = [
    "CONSOLE_ROLES",
    "ROLE_RANK",
    "actor",
    "has_role",
    "record",
    "require_role",
    "role_name",
]

# Each role as one word in the reader's language (the header, the role-change message).
ROLE_NAMES: dict[str, Any] = {
    "shopper": _l("shopper"),
    "staff": _l("staff"),
    "manager": _l("manager"),
    "admin": _l("admin"),
}


def role_name(role: str) -> str:
    """``role`` as one word in the reader's language; an unknown role as it is stored."""
    return str(ROLE_NAMES.get(role, role))


def has_role(member: members.Member | None, role: str) -> bool:
    """True when ``member`` ranks at least ``role``."""
    return member is not None and ROLE_RANK.get(member.role, 0) >= ROLE_RANK[role]


def current_member() -> members.Member | None:
    """The signed-in member, or None."""
    if not current_user.is_authenticated:
        return None
    member: members.Member = current_user.member
    return member


def safe_next(target: str | None) -> str | None:
    """A console path to return to after sign-in; anything else (``//host``, a URL) is dropped."""
    if not target or not target.startswith("/manage") or target.startswith("//"):
        return None
    if any(ch in target for ch in "\\\r\n\t"):
        return None
    return target


def forbidden(role: str) -> tuple[str, int]:
    return render_template("manage/forbidden.html", role=role), 403


def require_role(bp: Blueprint, role: str) -> None:
    """Gate every view of ``bp`` on ``role``: sign-in first, then a 403 for too low a rank."""

    @bp.before_request
    def _gate() -> Response | tuple[str, int] | None:
        member = current_member()
        if member is None:
            return redirect(url_for("manage.signin", next=request.full_path.rstrip("?")))
        if not has_role(member, role):
            return forbidden(role)
        return None


def actor() -> members.Member:
    """The console user making this request (the gate has already checked there is one)."""
    member = current_member()
    assert member is not None, "console views run behind require_role"
    return member


def record(
    action: str,
    target: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> int:
    """Log a change by the current console user; call inside the change's transaction."""
    who = actor()
    return audit.record(get_db(), who.id, who.display_name, action, target, before, after)


# The console's menu: (endpoint, label, lowest role). Entries whose blueprint is not registered
# are left out, so a feature can be switched off by leaving its module out of FEATURES.
NAV: tuple[tuple[str, Any, str], ...] = (
    ("manage_live.page", _l("Live store"), "staff"),
    ("manage_why.page", _l("Why not?"), "staff"),
    ("manage_support.inbox", _l("Support inbox"), "staff"),
    ("manage_moderation.queue", _l("Moderation"), "staff"),
    ("manage_feedback.index", _l("Feedback"), "staff"),
    ("manage_catalogue.index", _l("Catalogue"), "manager"),
    ("manage_plan.page", _l("Floor plan"), "manager"),
    ("manage_offers.index", _l("Offers"), "manager"),
    ("manage_analytics.page", _l("Analytics"), "manager"),
    ("manage_people.staff", _l("Staff"), "manager"),
    ("manage_people.audit", _l("Audit log"), "manager"),
    ("manage_box.page", _l("Box"), "admin"),
)


def nav_entries() -> list[tuple[str, str]]:
    """(url, label) of the menu entries the current user may open."""
    from flask import current_app

    member = current_member()
    return [
        (url_for(endpoint), str(label))
        for endpoint, label, role in NAV
        if endpoint in current_app.view_functions and has_role(member, role)
    ]
