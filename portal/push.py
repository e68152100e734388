"""Web Push sign-up from the store page: the service worker, the VAPID key and subscriptions.

The store page's ``push.js`` registers ``/sw.js``, asks the shopper, subscribes with the box's
VAPID key and posts the subscription here; the offers worker's Web Push channel then pushes to
it. Push needs a secure context (https, or localhost), which a store WiFi page on plain http is
not: ``push.js`` then says so instead, and the live feed on the open page still works.

Every answer to the JSON routes is JSON, errors included (``{"error": "<a sentence>"}``), since
it is a script that reads them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from instore import clock, members
from offers import subscriptions
from offers.channels.webpush import (
    InvalidSubscription,
    WebPushError,
    ensure_vapid_keys,
    parse_subscription,
)
from portal.clients import current_session
from portal.database import get_db
from portal.pages import shopping_member
from portal.security import ERROR_PAGES

log = logging.getLogger(__name__)

bp = Blueprint("push", __name__)

# Flask config key: accept http:// push endpoints. Only tests set it, to push to 127.0.0.1; on a
# box a plain-http endpoint is never a real push service and could be any host on its network.
ALLOW_HTTP_ENDPOINTS = "PUSH_ALLOW_HTTP_ENDPOINTS"
SERVICE_WORKER = "sw.js"
# Cached in app.extensions: the key file is read once per process, not once per page.
PUBLIC_KEY_EXTENSION = "instore_vapid_public_key"

JsonAnswer = tuple[Response, int]


def _error(status: int, sentence: str) -> JsonAnswer:
    return jsonify(error=sentence), status


@bp.errorhandler(CSRFError)
def csrf_refused(error: CSRFError) -> JsonAnswer:
    """The script's token is missing or stale: a reload gets a fresh one."""
    log.info("csrf rejected", extra={"reason": error.description, "ip": request.remote_addr})
    return _error(400, _("This page has expired. Reload it and try again."))


def http_error(error: HTTPException) -> JsonAnswer:
    """413 and friends as JSON, with the same sentences as the error pages."""
    status = error.code or 400
    _title, sentence = ERROR_PAGES.get(status, ERROR_PAGES[400])
    return _error(status, str(sentence))


# By status code, as the app registers its HTML pages: Flask looks for a handler by code (the
# blueprint's, then the app's) before it looks by exception class.
for _status in ERROR_PAGES:
    bp.register_error_handler(_status, http_error)


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker, from the site root so that its scope covers /store (and all else)."""
    static_folder = Path(current_app.static_folder or "")
    response = send_from_directory(static_folder, SERVICE_WORKER, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    # Browsers check for a new worker on every visit; revalidating lets an update reach them.
    response.headers["Cache-Control"] = "no-cache"
    return response


def application_server_key() -> str:
    """The box's VAPID public key (made on first use, beside the database)."""
    key: str | None = current_app.extensions.get(PUBLIC_KEY_EXTENSION)
    if key is None:
        keys = ensure_vapid_keys(current_app.config["INSTORE"].var_dir)
        key = current_app.extensions[PUBLIC_KEY_EXTENSION] = keys.application_server_key
    return key


@bp.get("/push/key")
def public_key() -> Response | JsonAnswer:
    """What ``pushManager.subscribe({applicationServerKey})`` needs."""
    try:
        return jsonify(publicKey=application_server_key())
    except (OSError, WebPushError) as exc:  # e.g. a key file damaged by hand: the box's problem
        log.error("no VAPID key for the store page", extra={"error": str(exc)})
        return _error(503, _("Notifications are not available right now. Try again later."))


def _member_and_body() -> tuple[members.Member | None, dict[str, Any] | None]:
    member = shopping_member(current_session())
    body = request.get_json(silent=True)
    return member, body if isinstance(body, dict) else None


@bp.post("/push/subscribe")
def subscribe() -> JsonAnswer:
    """Store this browser's subscription for the shopper (again: its keys are refreshed)."""
    member, body = _member_and_body()
    if member is None:
        return _error(401, _("Sign in to the store WiFi to get notifications."))
    if body is None:
        return _error(400, _("The browser did not send a push subscription."))
    try:
        subscription = parse_subscription(
            body, require_https=not current_app.config.get(ALLOW_HTTP_ENDPOINTS, False)
        )
    except InvalidSubscription as exc:
        return _error(
            400, _("This browser's push subscription cannot be used: %(reason)s.", reason=exc)
        )
    subscription_id = subscriptions.save_subscription(
        get_db(),
        member.id,
        subscription,
        user_agent=request.user_agent.string,
        now=clock.utcnow(),
    )
    log.info(
        "push subscription saved",
        extra={"member_id": member.id, "subscription_id": subscription_id},
    )
    return jsonify(subscribed=True), 201


@bp.post("/push/unsubscribe")
def unsubscribe() -> JsonAnswer:
    """Forget this browser's subscription (the page has already unsubscribed it)."""
    member, body = _member_and_body()
    if member is None:
        return _error(401, _("Sign in to the store WiFi to change notifications."))
    endpoint = None if body is None else body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        return _error(400, _("The browser did not say which subscription to turn off."))
    removed = subscriptions.remove_subscription(get_db(), member.id, endpoint)
    return jsonify(subscribed=False, removed=removed), 200
