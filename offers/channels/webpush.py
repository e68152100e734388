"""Web Push for the store box: VAPID keys, checked subscriptions, and one push through pywebpush.

Three steps, each testable on its own:

* ``ensure_vapid_keys`` makes the box's VAPID key pair once (py-vapid) and keeps the private key
  beside the database; browsers need its public half to subscribe.
* ``parse_subscription`` checks a browser's ``PushSubscription.toJSON()`` before it is stored, so
  a bad one is refused with a reason when the page sends it, not at every later push.
* ``send_push`` hands one message to pywebpush, which signs the VAPID token (RFC 8292), encrypts
  the body as aes128gcm (RFC 8188 + RFC 8291, by ``http_ece``) and posts it; we add what it leaves
  out (size checks, no redirects, timeouts) and turn the push service's answer into what the caller
  must do: nothing, delete the subscription, or try again later.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pywebpush
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid, VapidException

from instore import clock
from instore.keys import write_once

logger = logging.getLogger(__name__)

VAPID_KEY_FILE = "vapid_private.pem"
# RFC 8292 §2 allows at most 24 h; half of it leaves room for a box whose clock runs fast.
VAPID_TOKEN_LIFETIME = timedelta(hours=12)

CONTENT_ENCODING = "aes128gcm"  # RFC 8291 §4: the only encoding Web Push messages use
SALT_LENGTH = 16  # RFC 8188 §2.1
AUTH_SECRET_LENGTH = 16  # RFC 8291 §3.2: the browser's `auth` value
P256_POINT_LENGTH = 65  # uncompressed point: 0x04 || X || Y
TAG_LENGTH = 16  # AEAD_AES_128_GCM expansion
HEADER_LENGTH = SALT_LENGTH + 4 + 1 + P256_POINT_LENGTH  # salt, rs, idlen, keyid: 86 octets
# RFC 8291 §4: push services need not accept bodies over 4096 octets. http_ece's default record
# size is that same 4096, so a message that fits is always one record, as in the RFC's example.
MAX_BODY_LENGTH = 4096
# 4096 - 86 - 16 - 1 (the 0x02 delimiter) = 3993 octets of plaintext, the figure RFC 8291 §4 gives.
MAX_PLAINTEXT_LENGTH = MAX_BODY_LENGTH - HEADER_LENGTH - TAG_LENGTH - 1
# JSON is padded with spaces to a multiple of this, so the push service learns a size class, not
# whether the message was a short friend note or a long offer.
PAYLOAD_SIZE_STEP = 128

URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 §5.3
MAX_TTL_SECONDS = 28 * 24 * 3600  # the longest any major push service keeps a message
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0  # a push service answers as soon as it has queued the message
RESPONSE_EXCERPT_LENGTH = 200  # of the push service's error text, kept for the human message


class WebPushError(Exception):
    """A push could not be prepared or delivered; the message is meant for a person."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidSubscription(WebPushError):
    """The browser's subscription is unusable (bad endpoint or keys): refuse it when it is saved."""


class PayloadTooLarge(WebPushError):
    """The message does not fit in one push (3993 octets of plaintext)."""


class SubscriptionGone(WebPushError):
    """404/410: the subscription expired or was revoked; the caller deletes it."""


class PushRetryLater(WebPushError):
    """429, 5xx or no answer at all: worth trying again, not before ``retry_after`` seconds."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class PushRejected(WebPushError):
    """Any other refusal: sending the same request again will not help."""


def b64url_encode(data: bytes) -> str:
    """URL-safe base64 without padding, the form the Push API uses for keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode URL-safe base64 with or without padding (some libraries add it, browsers don't)."""
    cleaned = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))


# --- VAPID keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VapidKeys:
    """The box's VAPID identity: a P-256 private key that never leaves the box, and its file."""

    vapid: Any = field(repr=False)  # a py_vapid.Vapid02 holding the private key
    path: Path

    @property
    def application_server_key(self) -> str:
        """The public key as ``pushManager.subscribe({applicationServerKey})`` wants it.

        URL-safe base64, unpadded, of the 65-octet uncompressed point.
        """
        point = self.vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return b64url_encode(point)


def ensure_vapid_keys(directory: Path) -> VapidKeys:
    """The box's VAPID keys from ``directory``, generated (mode 0600) on the first call.

    Every worker must sign with the same key the browsers subscribed with, so the key is made once
    and kept; if two processes race on the first run, the first file written wins.
    """
    path = directory / VAPID_KEY_FILE
    if not path.exists():
        _write_new_key(path)
    if path.stat().st_mode & 0o077:
        logger.warning("%s was readable by others; restricting it to its owner", path)
        path.chmod(0o600)
    try:
        vapid = Vapid.from_pem(path.read_bytes())
    except Exception as exc:  # py-vapid passes on whatever base64 or cryptography raised
        raise WebPushError(f"{path} does not hold a readable VAPID private key: {exc}") from exc
    key = vapid.private_key
    if not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"):
        raise WebPushError(f"{path} holds a key that is not P-256; VAPID needs P-256")
    return VapidKeys(vapid=vapid, path=path)


def _write_new_key(path: Path) -> None:
    """Write a fresh key into place, never overwriting one (the first process to write wins)."""
    vapid = Vapid()
    vapid.generate_keys()
    if write_once(path, vapid.private_pem()):
        logger.info("generated the box's VAPID key in %s", path)


def check_contact(contact: str) -> str:
    """The VAPID ``sub`` (RFC 8292 §2.1): how a push service reaches the store's operator."""
    if not contact.startswith(("mailto:", "https://")):
        raise WebPushError(
            f"the VAPID contact {contact!r} must be a mailto: address or an https:// URL"
        )
    return contact


# --- Subscriptions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """A checked ``PushSubscription.toJSON()``: where to post, and the keys to encrypt for."""

    endpoint: str = field(repr=False)  # a capability URL: whoever holds it can push
    p256dh: str = field(repr=False)
    auth: str = field(repr=False)

    @property
    def origin(self) -> str:
        """Scheme, host and port of the endpoint: the VAPID ``aud`` and what logs may show."""
        return endpoint_origin(self.endpoint)

    def as_info(self) -> dict[str, Any]:
        """The ``subscription_info`` mapping pywebpush takes."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def endpoint_origin(endpoint: str) -> str:
    """``https://host[:port]`` of a push endpoint."""
    parts = urlsplit(endpoint)
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{parts.hostname}{port}"


def parse_subscription(raw: Mapping[str, Any], *, require_https: bool = True) -> Subscription:
    """Check a browser's subscription before it is stored or used.

    Push services only speak HTTPS; refusing anything else also stops a crafted subscription from
    making the box POST to plain-HTTP services on its own network. Tests pass
    ``require_https=False`` to push to a local server.
    """
    endpoint = raw.get("endpoint") if isinstance(raw, Mapping) else None
    if not isinstance(endpoint, str) or not endpoint:
        raise InvalidSubscription("the subscription has no endpoint")
    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # urlsplit checks the port only when asked for it
    except ValueError as exc:
        raise InvalidSubscription(f"the subscription endpoint is not a URL: {exc}") from exc
    allowed = ("https",) if require_https else ("https", "http")
    if parts.scheme.lower() not in allowed or not parts.hostname:
        raise InvalidSubscription("the subscription endpoint must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidSubscription("the subscription endpoint must not carry credentials")
    keys = raw.get("keys")
    if not isinstance(keys, Mapping):
        raise InvalidSubscription("the subscription has no keys; was it made with a VAPID key?")
    point = _decode_key(keys, "p256dh", P256_POINT_LENGTH)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise InvalidSubscription("the subscription's p256dh key is not a P-256 point") from exc
    auth = _decode_key(keys, "auth", AUTH_SECRET_LENGTH)
    # Stored and sent in the browsers' own form, whatever padding or alphabet they came in.
    return Subscription(endpoint=endpoint, p256dh=b64url_encode(point), auth=b64url_encode(auth))


def _decode_key(keys: Mapping[str, Any], name: str, length: int) -> bytes:
    value = keys.get(name)
    if not isinstance(value, str):
        raise InvalidSubscription(f"the subscription has no {name} key")
    try:
        decoded = b64url_decode(value)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSubscription(f"the subscription's {name} key is not base64") from exc
    if len(decoded) != length:
        raise InvalidSubscription(
            f"the subscription's {name} key is {len(decoded)} bytes, not {length}"
        )
    return decoded


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, padded with spaces (still valid JSON) to a PAYLOAD_SIZE_STEP multiple."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    padded_length = min(len(text) + (-len(text) % PAYLOAD_SIZE_STEP), MAX_PLAINTEXT_LENGTH)
    return text.ljust(padded_length, b" ")


# --- Sending ------------------------------------------------------------------------------------


class PushSession(requests.Session):
    """The HTTP client pywebpush posts with: one per channel, so connections are reused.

    Redirects are never followed: push services answer directly, and following one would resend
    the message to wherever a 3xx points.
    """

    def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> Any:
        kwargs["allow_redirects"] = False
        return super().post(url, data=data, json=json, **kwargs)


@dataclass(frozen=True)
class PushResponse:
    """What a push service answered; header names are lower-case."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str = ""

    @classmethod
    def from_requests(cls, response: requests.Response) -> PushResponse:
        """Keep what the mapping and the messages need; the body only as a short excerpt."""
        return cls(
            status=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            text=response.text[:RESPONSE_EXCERPT_LENGTH],
        )


def send_push(
    subscription: Subscription,
    data: bytes,
    vapid: VapidKeys,
    *,
    ttl: int,
    contact: str,
    urgency: str = "normal",
    session: requests.Session | None = None,
) -> PushResponse:
    """Push ``data`` to one subscription with pywebpush; return the service's 2xx answer.

    ``ttl`` is how long, in seconds, the push service keeps the message for a phone that is off;
    ``urgency`` one of URGENCIES (phones on battery saver only wake for ``high``); ``contact`` the
    ``mailto:`` or ``https://`` address the push service can reach the store's operator at;
    ``session`` is the HTTP client (tests may pass their own; the default never follows redirects).

    Raises SubscriptionGone (delete the subscription), PushRetryLater (try again later,
    ``retry_after`` seconds if the service said), PushRejected (give up on this message) and
    PayloadTooLarge or ValueError for a message that cannot be sent at all.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl must be whole seconds from 0 to {MAX_TTL_SECONDS}, not {ttl!r}")
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}, not {urgency!r}")
    if len(data) > MAX_PLAINTEXT_LENGTH:
        raise PayloadTooLarge(
            f"the message is {len(data)} bytes; a push carries at most {MAX_PLAINTEXT_LENGTH}"
        )
    headers = {"Urgency": urgency}
    claims = {
        "sub": check_contact(contact),
        "aud": subscription.origin,
        # pywebpush would use the system clock; ours is the one tests and the box agree on.
        "exp": int((clock.utcnow() + VAPID_TOKEN_LIFETIME).timestamp()),
    }
    # A session of our own is closed at once; a caller's (the channel's) is kept for reuse.
    try:
        with PushSession() if session is None else nullcontext(session) as http:
            response = pywebpush.webpush(
                subscription_info=subscription.as_info(),
                data=data,
                vapid_private_key=vapid.vapid,
                vapid_claims=claims,
                content_encoding=CONTENT_ENCODING,
                ttl=ttl,
                headers=headers,
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                requests_session=http,
            )
    except pywebpush.WebPushException as exc:
        # pywebpush raises for any status above 202, with the response attached.
        if exc.response is None:
            raise WebPushError(f"pywebpush refused the message: {exc.message}") from exc
        return read_answer(PushResponse.from_requests(exc.response), subscription.origin)
    except VapidException as exc:
        raise WebPushError(f"cannot sign for {subscription.origin} as {contact!r}: {exc}") from exc
    except requests.RequestException as exc:
        raise PushRetryLater(
            f"could not reach the push service {subscription.origin}: {exc.__class__.__name__}"
        ) from exc
    return read_answer(PushResponse.from_requests(response), subscription.origin)


_REJECTION_REASONS = {
    400: "the push service found the request malformed",
    401: "the push service refused the VAPID signature (is the box's clock right?)",
    403: "the push service refused the VAPID key: the phone subscribed with another key and "
    "must subscribe again",
    413: f"the push service refused the message as too large (limit {MAX_BODY_LENGTH} bytes)",
}


def read_answer(response: PushResponse, origin: str) -> PushResponse:
    """Return a 2xx answer as it is; raise what the caller must do about any other.

    ``origin`` names the push service in messages; the full endpoint is a capability and never
    goes into a message or a log.
    """
    status = response.status
    logger.debug("push to %s answered %s", origin, status)
    if 200 <= status < 300:
        return response
    excerpt = response.text.strip()[:RESPONSE_EXCERPT_LENGTH]
    detail = f" ({excerpt})" if excerpt else ""
    if status in (404, 410):
        raise SubscriptionGone(
            f"the push service {origin} no longer has this subscription "
            f"(HTTP {status}); it was unsubscribed or expired",
            status,
        )
    if status == 429 or status >= 500:
        retry_after = _retry_after_seconds(response.headers.get("retry-after"))
        what = "is rate-limiting the box" if status == 429 else "is failing"
        raise PushRetryLater(
            f"the push service {origin} {what} (HTTP {status}){detail}", status, retry_after
        )
    reason = _REJECTION_REASONS.get(status, "the push service refused the message")
    raise PushRejected(f"{reason} (HTTP {status} from {origin}){detail}", status)


def _retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now, None if absent or odd."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - clock.utcnow()).total_seconds())
