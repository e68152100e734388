"""Web Push for the store box: VAPID keys, RFC 8291 message encryption and the push request.

Three steps, each testable on its own:

* ``ensure_vapid_keys`` makes the box's VAPID key pair once (py-vapid) and keeps the private key
  beside the database; browsers need its public half to subscribe.
* ``build_push_request`` turns a browser's subscription and a JSON payload into everything one POST
  needs: the aes128gcm body (RFC 8188 + RFC 8291, encrypted by ``http_ece``) and the headers,
  including the VAPID ``Authorization`` (RFC 8292). It touches no network.
* ``send_push`` makes that POST through an injectable poster and turns the push service's answer
  into what the caller must do: nothing, delete the subscription, or try again later.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import http_ece
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid, VapidException

from instore import clock

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
# RFC 8291 §4: push services need not accept bodies over 4096 octets, so a record of that size
# always holds the whole message in one record (as in the RFC's own example).
RECORD_SIZE = 4096
MAX_BODY_LENGTH = 4096
# Zero octets after the 0x02 delimiter that ends the last record, as in RFC 8291 §5. http_ece
# writes the delimiter only; length hiding happens on the JSON instead (PAYLOAD_SIZE_STEP).
RECORD_PADDING = 0
# 4096 - 86 - 16 - 1 = 3993 octets of plaintext, the figure RFC 8291 §4 gives.
MAX_PLAINTEXT_LENGTH = MAX_BODY_LENGTH - HEADER_LENGTH - TAG_LENGTH - 1 - RECORD_PADDING
# JSON is padded with spaces to a multiple of this, so the push service learns a size class, not
# whether the message was a short friend note or a long offer.
PAYLOAD_SIZE_STEP = 128

URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 §5.3
MAX_TTL_SECONDS = 28 * 24 * 3600  # the longest any major push service keeps a message
TOPIC_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 §5.4: ≤ 32 URL-safe base64 chars
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

    def authorization(self, audience: str, contact: str, expires: datetime) -> str:
        """The ``Authorization: vapid t=<JWT>,k=<public key>`` value for one push service."""
        if not contact.startswith(("mailto:", "https://")):
            raise WebPushError(
                f"the VAPID contact {contact!r} must be a mailto: address or an https:// URL"
            )
        claims = {"aud": audience, "sub": contact, "exp": int(expires.timestamp())}
        try:
            header: str = self.vapid.sign(claims)["Authorization"]
        except VapidException as exc:
            raise WebPushError(f"cannot sign for {audience} as {contact!r}: {exc}") from exc
        return header


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
    """Write a fresh key beside ``path`` and link it into place, never overwriting one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    vapid = Vapid()
    vapid.generate_keys()
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(vapid.private_pem())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # A link appears complete or not at all, and fails if another process won the race.
            os.link(scratch, path)
        except FileExistsError:
            return
        logger.info("generated the box's VAPID key in %s", path)
    finally:
        scratch.unlink(missing_ok=True)


# --- Subscriptions and encryption ---------------------------------------------------------------


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
    _user_agent_key_material(keys)
    return Subscription(endpoint=endpoint, p256dh=keys["p256dh"], auth=keys["auth"])


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


def _user_agent_key_material(keys: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The browser's public point (checked to lie on P-256) and its auth secret."""
    point = _decode_key(keys, "p256dh", P256_POINT_LENGTH)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise InvalidSubscription("the subscription's p256dh key is not a P-256 point") from exc
    return point, _decode_key(keys, "auth", AUTH_SECRET_LENGTH)


def encrypt_message(
    payload: bytes,
    subscription_keys: Mapping[str, Any],
    *,
    server_key: ec.EllipticCurvePrivateKey | None = None,
    salt: bytes | None = None,
) -> bytes:
    """Encrypt ``payload`` for one subscription as an aes128gcm body (RFC 8188, RFC 8291).

    ``subscription_keys`` is the subscription's ``keys`` object (``p256dh``, ``auth``). Each message
    gets a fresh application server key pair and salt, as RFC 8291 §3.1 requires; the two keyword
    arguments exist so a test can replay the RFC's example and must stay unset otherwise.
    """
    user_agent_point, auth_secret = _user_agent_key_material(subscription_keys)
    if len(payload) > MAX_PLAINTEXT_LENGTH:
        raise PayloadTooLarge(
            f"the message is {len(payload)} bytes; a push carries at most {MAX_PLAINTEXT_LENGTH}"
        )
    if server_key is None:
        server_key = ec.generate_private_key(ec.SECP256R1())
    if salt is None:
        salt = os.urandom(SALT_LENGTH)
    if len(salt) != SALT_LENGTH:
        raise ValueError(f"the salt must be {SALT_LENGTH} bytes")
    # With a private key and no keyid, http_ece writes the server's public point as the keyid,
    # which is exactly where RFC 8291 §4 puts it.
    body: bytes = http_ece.encrypt(
        payload,
        salt=salt,
        private_key=server_key,
        dh=user_agent_point,
        auth_secret=auth_secret,
        rs=RECORD_SIZE,
        version=CONTENT_ENCODING,
    )
    return body


# --- The push request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedPush:
    """One POST to a push service, ready to send."""

    endpoint: str = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    @property
    def origin(self) -> str:
        """The push service, safe to log (the full endpoint is a capability)."""
        return endpoint_origin(self.endpoint)


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, padded with spaces (still valid JSON) to a PAYLOAD_SIZE_STEP multiple."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    padded_length = min(len(text) + (-len(text) % PAYLOAD_SIZE_STEP), MAX_PLAINTEXT_LENGTH)
    return text.ljust(padded_length, b" ")


def build_push_request(
    subscription: Mapping[str, Any],
    payload: Mapping[str, Any],
    vapid: VapidKeys,
    ttl: int,
    urgency: str = "normal",
    *,
    contact: str,
    topic: str | None = None,
    require_https: bool = True,
) -> PreparedPush:
    """Everything needed to push ``payload`` (JSON) to one subscription; no network involved.

    ``ttl`` is how long, in seconds, the push service keeps the message for a phone that is off;
    ``urgency`` one of URGENCIES (phones on battery saver only wake for ``high``); ``contact`` the
    ``mailto:`` or ``https://`` address the push service can reach the store's operator at;
    ``topic`` makes a newer message replace an undelivered older one with the same topic.
    """
    checked = parse_subscription(subscription, require_https=require_https)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl must be whole seconds from 0 to {MAX_TTL_SECONDS}, not {ttl!r}")
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}, not {urgency!r}")
    if topic is not None and not TOPIC_PATTERN.fullmatch(topic):
        raise ValueError("a topic is 1-32 characters of A-Z, a-z, 0-9, '-' and '_'")
    body = encrypt_message(
        encode_payload(payload), {"p256dh": checked.p256dh, "auth": checked.auth}
    )
    headers = {
        "Authorization": vapid.authorization(
            checked.origin, contact, clock.utcnow() + VAPID_TOKEN_LIFETIME
        ),
        "Content-Encoding": CONTENT_ENCODING,
        "Content-Type": "application/octet-stream",
        "TTL": str(ttl),
        "Urgency": urgency,
    }
    if topic is not None:
        headers["Topic"] = topic
    return PreparedPush(endpoint=checked.endpoint, headers=headers, body=body)


# --- Sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResponse:
    """What a push service answered; header names are lower-case."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str = ""


# (endpoint, headers, body) -> response. Raising OSError (requests' errors are OSErrors) means
# the push service could not be reached.
HttpPost = Callable[[str, Mapping[str, str], bytes], PushResponse]


def post_with_requests(endpoint: str, headers: Mapping[str, str], body: bytes) -> PushResponse:
    """POST with ``requests`` (pywebpush's own HTTP client), bounded by the timeouts above."""
    response = requests.post(
        endpoint,
        data=body,
        headers=dict(headers),
        timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
        # Push services answer directly; following a redirect would resend to wherever it points.
        allow_redirects=False,
    )
    return PushResponse(
        status=response.status_code,
        headers={name.lower(): value for name, value in response.headers.items()},
        text=response.text[:RESPONSE_EXCERPT_LENGTH],
    )


_REJECTION_REASONS = {
    400: "the push service found the request malformed",
    401: "the push service refused the VAPID signature (is the box's clock right?)",
    403: "the push service refused the VAPID key: the phone subscribed with another key and "
    "must subscribe again",
    413: f"the push service refused the message as too large (limit {MAX_BODY_LENGTH} bytes)",
}


def send_push(prepared: PreparedPush, http_post: HttpPost = post_with_requests) -> PushResponse:
    """Send one prepared push; return the push service's 2xx answer or raise what to do next.

    SubscriptionGone: delete the subscription. PushRetryLater: try again later (``retry_after``
    seconds if the service said). PushRejected: give up on this message and show the reason.
    """
    try:
        response = http_post(prepared.endpoint, prepared.headers, prepared.body)
    except OSError as exc:
        raise PushRetryLater(
            f"could not reach the push service {prepared.origin}: {exc.__class__.__name__}"
        ) from exc
    status = response.status
    logger.debug("push to %s answered %s", prepared.origin, status)
    if 200 <= status < 300:
        return response
    excerpt = response.text.strip()[:RESPONSE_EXCERPT_LENGTH]
    detail = f" ({excerpt})" if excerpt else ""
    if status in (404, 410):
        raise SubscriptionGone(
            f"the push service {prepared.origin} no longer has this subscription "
            f"(HTTP {status}); it was unsubscribed or expired",
            status,
        )
    if status == 429 or status >= 500:
        retry_after = _retry_after_seconds(response.headers.get("retry-after"))
        what = "is rate-limiting the box" if status == 429 else "is failing"
        raise PushRetryLater(
            f"the push service {prepared.origin} {what} (HTTP {status}){detail}",
            status,
            retry_after,
        )
    reason = _REJECTION_REASONS.get(status, "the push service refused the message")
    raise PushRejected(f"{reason} (HTTP {status} from {prepared.origin}){detail}", status)


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
