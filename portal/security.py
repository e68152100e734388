"""CSRF, rate limits, security headers and the human error pages.

Every POST carries a CSRF token (Flask-WTF). Sign-in and sign-up are rate-limited per IP and per
account (Flask-Limiter) so guessing passwords or harvesting accounts is slow. Every response from
Flask carries a strict CSP with no inline script, so an escaping slip cannot run code.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from instore.members import normalize_identifier

log = logging.getLogger(__name__)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin: other sites learn nothing of the portal's URLs, while our own POSTs carry the
    # Referer that Flask-WTF demands over https (no-referrer would refuse every form there).
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
}

# Views limited per IP and per account, with the config key holding each limit.
RATE_LIMITED_VIEWS: dict[str, str] = {
    "account.signin": "login_limit",
    "account.signup": "signup_limit",
    "manage.signin": "login_limit",
}
# Views limited per IP only, with the config key holding each limit: asking or blocking someone by
# email or loyalty number must not become a fast way to find out who has an account; community
# writes and uploads must not become a way to flood the store or load its CPU.
IP_LIMITED_VIEWS: dict[str, str] = {
    "friends.ask": "friend_request_limit",
    "friends.block": "friend_request_limit",
    "boards.new": "community_post_limit",
    "boards.edit": "community_post_limit",
    "boards.comment": "community_post_limit",
    "boards.edit_comment": "community_post_limit",
    "feedback.review": "community_post_limit",
    "feedback.suggestions": "community_post_limit",
    "feedback.suggestion": "community_post_limit",
    "profile.save": "community_post_limit",
    "moderation.flag": "community_post_limit",
    "moderation.appeal": "community_post_limit",
    "moderation.signed_out_appeal": "community_post_limit",
    "boards.add_item": "upload_limit",
    "profile.avatar": "upload_limit",
}


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        # Pages show personal data and CSRF tokens: never cache them.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _account_key() -> str:
    """Rate-limit key for the account being tried, whatever the IP."""
    identifier = request.form.get("identifier", "")
    kind, value = normalize_identifier(identifier[:256])
    return f"account:{kind}:{value}"


def _failed(response: Response) -> bool:
    """Count an attempt against the account only when it failed (success redirects)."""
    return response.status_code != 302


def apply_rate_limits(app: Flask) -> None:
    """Wrap the sign-in and sign-up views with per-IP and per-account limits from config."""
    limiter = Limiter(key_func=get_remote_address, app=app)
    app.extensions["instore_limiter"] = limiter
    portal_cfg = app.config["INSTORE"]["portal"]
    for endpoint, key in RATE_LIMITED_VIEWS.items():
        limit = portal_cfg[key]
        view = app.view_functions[endpoint]
        view = limiter.limit(limit, methods=["POST"])(view)  # type: ignore[assignment]
        view = limiter.limit(  # type: ignore[assignment]
            limit, key_func=_account_key, methods=["POST"], deduct_when=_failed, scope="account"
        )(view)
        app.view_functions[endpoint] = view
    for endpoint, key in IP_LIMITED_VIEWS.items():
        if endpoint in app.view_functions:
            limited = limiter.limit(portal_cfg[key], methods=["POST"])(app.view_functions[endpoint])
            app.view_functions[endpoint] = limited  # type: ignore[assignment]


# Status → (title, sentence) for the errors a shopper can run into; each says what to do next.
ERROR_PAGES: dict[int, tuple[LazyString, LazyString]] = {
    400: (
        _l("Something is wrong with that request"),
        _l("Go back, check the form and try again."),
    ),
    404: (_l("Page not found"), _l("There is no page at this address.")),
    405: (_l("Not allowed"), _l("This page cannot be used that way. Go back and try again.")),
    413: (_l("Too much text"), _l("What you sent is too long. Shorten it and try again.")),
    429: (
        _l("Too many attempts"),
        _l("You have tried too many times. Wait a minute, then try again."),
    ),
}


def _http_error(error: HTTPException) -> tuple[str, int]:
    status = error.code or 400
    title, message = ERROR_PAGES[status]
    return _error_page(status, str(title), str(message))


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", title=title, message=message, status=status), status


def init_app(app: Flask) -> None:
    CSRFProtect(app)
    app.after_request(_add_security_headers)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        log.info("csrf rejected", extra={"reason": error.description, "ip": request.remote_addr})
        return _error_page(
            400,
            _("This form has expired"),
            _(
                "The page was open too long or came from another site. Go back, reload the page "
                "and try again."
            ),
        )

    for status in ERROR_PAGES:
        app.register_error_handler(status, _http_error)

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        current_app.logger.exception("unhandled error")
        return _error_page(
            500, _("Something went wrong"), _("Sorry, that did not work. Please try again.")
        )
