"""The till API: redeem a member's offer code, or record a loyalty purchase. JSON in, JSON out.

Tills authenticate with ``Authorization: Bearer <key>`` (keys come from ``instore offers till
add``), never with cookies. That is why this blueprint is exempt from CSRF protection: CSRF abuses
a browser attaching the cookies it holds for our site to a request forged by another site. No
browser attaches a bearer key by itself, so a forged request arrives without one and gets a 401;
a CSRF token would add nothing but a page for the till to fetch it from.

Every answer is JSON, errors too: ``{"error": "<machine code>", "message": "<sentence>"}``. The
one exception is a wrong method or path (e.g. GET): Flask routes before it knows the blueprint, so
those get the portal's own 404/405 page.

====  ==========================================================================================
201   redeemed / recorded
400   bad JSON, not an object, a field missing, of the wrong type or too long; a malformed code
401   no key, a wrong key or a revoked one (with ``WWW-Authenticate: Bearer``)
404   unknown code, unknown loyalty number
409   code already redeemed; the offer's redemption budget is spent
410   code expired; its offer withdrawn
413   body bigger than the app's MAX_CONTENT_LENGTH
415   body not sent as ``application/json``
422   another store's code
429   over ``[offers] till_limit`` for this till key
====  ==========================================================================================
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from limits import parse_many
from werkzeug.exceptions import HTTPException

from instore.clock import utcnow
from instore.config import ConfigError
from offers.redemption import TillRefusal, record_purchase, redeem
from offers.tills import Till, authenticate_till, hash_key
from portal.database import get_db

bp = Blueprint("tills_api", __name__, url_prefix="/api")

# Named in WWW-Authenticate so a till's log says which credentials were asked for (RFC 6750).
REALM = "instore-till"
# A code is 14 characters; a scan may carry spaces or a prefix, but nothing needs more than this.
CODE_MAX_CHARS = 64
# A 12-digit card number with room for spaces and dashes as printed.
LOYALTY_NUMBER_MAX_CHARS = 32
# A product name or SKU as the till knows it, matched against an offer's ``product``.
PRODUCT_MAX_CHARS = 120

# Machine codes and sentences for the HTTP errors Flask or its extensions raise in this blueprint.
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be read; send a JSON object."),
    413: ("too_large", "The request body is too big; a till request is a few short fields."),
    415: ("not_json", "Send the body as JSON with 'Content-Type: application/json'."),
    429: ("rate_limited", "This till sent too many requests ({limit}); wait a minute and retry."),
    500: ("internal_error", "Something went wrong on the store's box; try again."),
}


def _error(status: int, error_code: str, message: str) -> Response:
    response = jsonify(error=error_code, message=message)
    response.status_code = status
    if status == 401:
        # RFC 6750: "invalid_token" only when a token was sent; none when it was missing.
        detail = ', error="invalid_token"' if error_code == "invalid_key" else ""
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"{detail}'
    return response


def _bearer_key() -> str | None:
    """The key from ``Authorization: Bearer <key>``, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def _rate_limit_key() -> str:
    """Limit per presented till key, hashed so no working key sits in the limiter's storage.

    Requests without a key are counted per address. Guessing keys with a fresh key per request is
    not slowed by this, and needs not be: a key is 256 random bits.
    """
    key = _bearer_key()
    return f"till:{hash_key(key)}" if key else f"ip:{request.remote_addr}"


@bp.before_request
def _authenticate() -> Response | None:
    """Every till request needs an active till's key; the till is kept in ``g.till``."""
    key = _bearer_key()
    if key is None:
        return _error(
            401, "missing_key", "Send the till's API key as 'Authorization: Bearer <key>'."
        )
    till = authenticate_till(get_db(), key)
    if till is None:
        return _error(
            401,
            "invalid_key",
            "That till key is wrong or has been revoked; ask IT for a new one.",
        )
    g.till = till
    return None


def _json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 415/400 refusal (413 comes from Werkzeug)."""
    if not request.is_json:
        code, message = HTTP_ERRORS[415]
        raise TillRefusal(415, code, message)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise TillRefusal(400, "bad_json", 'The body must be a JSON object, like {"code": "…"}.')
    return body


def _text_field(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str | None):
        raise TillRefusal(400, "wrong_type", f"{name} must be text.")
    if value is None or not value.strip():
        raise TillRefusal(400, "missing_field", f"{name} is required.")
    if len(value) > limit:
        raise TillRefusal(
            400, "too_long", f"{name} is {len(value)} characters long; at most {limit} fit."
        )
    return value


def _cents_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if value is None:
        raise TillRefusal(400, "missing_field", f"{name} is required.")
    # bool is an int in Python (and true is 1 in JSON's eyes here); neither is an amount.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TillRefusal(
            400, "wrong_type", f"{name} must be a whole number of cents, e.g. 1999 for 19.99."
        )
    return value


def _current_till() -> Till:
    till: Till = g.till
    return till


@bp.post("/redemptions")
def redemptions() -> tuple[Response, int]:
    """Redeem ``{"code": "S001-7KQ2-M9XD"}`` at the calling till."""
    body = _json_object()
    code = _text_field(body, "code", CODE_MAX_CHARS)
    store = current_app.config["INSTORE"]["store"]
    redemption = redeem(
        get_db(), code, _current_till(), utcnow(), store["id"], timezone=store["timezone"]
    )
    return jsonify(redemption.to_json()), 201


@bp.post("/purchases")
def purchases() -> tuple[Response, int]:
    """Record ``{"loyalty_number", "product", "amount_cents"}`` scanned without a code."""
    body = _json_object()
    loyalty_number = _text_field(body, "loyalty_number", LOYALTY_NUMBER_MAX_CHARS)
    product = _text_field(body, "product", PRODUCT_MAX_CHARS)
    amount_cents = _cents_field(body, "amount_cents")
    purchase = record_purchase(
        get_db(), loyalty_number, product, amount_cents, _current_till(), utcnow()
    )
    return jsonify(purchase.to_json()), 201


@bp.errorhandler(TillRefusal)
def _refused(refusal: TillRefusal) -> Response:
    return _error(refusal.status, refusal.error_code, refusal.message)


def _http_error(error: HTTPException) -> Response:
    """JSON instead of the shoppers' HTML error pages, for any HTTP error in this blueprint.

    Registered for each status the app has an HTML page for as well as for HTTPException as a
    whole: Flask prefers a handler for the exact status, the app's included, over a blueprint's
    handler for the exception class.
    """
    status = error.code or 500
    code, message = HTTP_ERRORS.get(status, ("error", error.description or "Request refused."))
    if status == 429:
        message = message.format(limit=error.description)
    return _error(status, code, message)


for _status in HTTP_ERRORS:
    bp.register_error_handler(_status, _http_error)
bp.register_error_handler(HTTPException, _http_error)


def init_app(app: Flask) -> None:
    """Register the till API, exempt from CSRF (see the module docstring), limited per till key.

    Call after ``security.apply_rate_limits``, which creates the app's limiter.
    """
    limit = app.config["INSTORE"]["offers"]["till_limit"]
    try:
        parse_many(limit)
    except ValueError:
        raise ConfigError(
            f"offers.till_limit: {limit!r} is not a rate limit (use e.g. '60 per minute')"
        ) from None
    app.register_blueprint(bp)
    app.extensions["csrf"].exempt(bp)
    # Shared: both endpoints draw on one allowance per till, as the config key promises.
    app.extensions["instore_limiter"].shared_limit(limit, scope="till", key_func=_rate_limit_key)(
        bp
    )
