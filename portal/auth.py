"""flask-login wiring: the signed-in member, remembered per phone by a revocable token.

``get_id`` returns the member's ``login_token`` rather than the row id, so the "stay signed in on
this phone" cookie names a token we can rotate (erasing an account or signing out everywhere
invalidates every remembered phone), never the password.
"""

from __future__ import annotations

from flask import Flask
from flask_login import LoginManager, UserMixin

from instore import members
from portal.database import get_db


class PortalUser(UserMixin):
    """A member as flask-login sees them."""

    def __init__(self, member: members.Member) -> None:
        self.member = member

    def get_id(self) -> str:
        return self.member.login_token

    @property
    def id(self) -> int:
        return self.member.id

    @property
    def display_name(self) -> str:
        return self.member.display_name


def _load_user(token: str) -> PortalUser | None:
    member = members.get_by_login_token(get_db(), token)
    return PortalUser(member) if member else None


def init_app(app: Flask) -> None:
    manager = LoginManager(app)
    manager.user_loader(_load_user)
    manager.login_view = "account.signin"
    manager.login_message = None  # the sign-in page explains itself
    # "basic" keeps a stolen session cookie from outliving a change of network identity.
    manager.session_protection = "basic"
