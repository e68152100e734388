"""Web Push: RFC 8291 encryption, VAPID keys and tokens, and how push-service answers are read.

Nothing here reaches a real push service: the sending tests post to a server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid
from py_vapid import jwt as vapid_jwt

from instore import clock
from offers.channels import webpush
from offers.channels.webpush import (
    InvalidSubscription,
    PayloadTooLarge,
    PreparedPush,
    PushRejected,
    PushResponse,
    PushRetryLater,
    SubscriptionGone,
    VapidKeys,
    WebPushError,
    b64url_decode,
    b64url_encode,
    build_push_request,
    encrypt_message,
    ensure_vapid_keys,
    send_push,
)

# RFC 8291 §5 and Appendix A: the worked example, all values base64url as the RFC prints them.
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_AS_PUBLIC = (
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
)
RFC_AUTH_SECRET = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
# Appendix A intermediate values.
RFC_ECDH_SECRET = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"
RFC_PRK_KEY = "Snr3JMxaHVDXHWJn5wdC52WjpCtd2EIEGBykDcZW32k"
RFC_KEY_INFO = (
    "V2ViUHVzaDogaW5mbwAEJXGyvs3942BVGq8e0PTNNmwRzr5VX4m8t7GGpTM5FzFo7OLr4BhZe9MEebhuPI-OztV3"
    "ylkYfpJGmQ22ggCLDgT-M_SrDepxkU21WCP3O1SUj0EwbZIHMtu5pZpTKGSCIA5Zent7wmC6HCJ5mFgJkuk5cwAv"
    "MBKiiujwa7t45ewP"
)
RFC_IKM = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg"
RFC_PRK = "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc"
RFC_CEK = "oIhVW04MRdy2XN9CiKLxTg"
RFC_NONCE = "4h_95klXJ5E_qnoN"
RFC_HEADER = (  # salt || rs = 4096 || idlen = 65 || the application server's public key
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYW"
    "AmS6TlzAC8wEqKK6PBru3jl7A8"
)
RFC_CIPHERTEXT = "8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ"
RFC_BODY = (  # §5, the three lines joined
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)
RFC_KEYS = {"p256dh": RFC_UA_PUBLIC, "auth": RFC_AUTH_SECRET}

CONTACT = "mailto:manager@shop.example"
FCM_ENDPOINT = "https://fcm.googleapis.com/fcm/send/dGhpcyBpcyBub3QgYSByZWFsIHRva2Vu"


def private_key_from_raw(raw_b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(raw_b64), "big"), ec.SECP256R1())


def public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


# --- RFC 8291 -----------------------------------------------------------------------------------


def test_encryption_reproduces_the_rfc_8291_example_byte_for_byte() -> None:
    body = encrypt_message(
        RFC_PLAINTEXT,
        RFC_KEYS,
        server_key=private_key_from_raw(RFC_AS_PRIVATE),
        salt=b64url_decode(RFC_SALT),
    )
    assert body == b64url_decode(RFC_BODY)
    assert body[:86] == b64url_decode(RFC_HEADER)
    assert body[86:] == b64url_decode(RFC_CIPHERTEXT)


def test_rfc_8291_keys_and_intermediate_values() -> None:
    """The example's key schedule (Appendix A), derived step by step without http_ece."""
    ua_key = private_key_from_raw(RFC_UA_PRIVATE)
    as_key = private_key_from_raw(RFC_AS_PRIVATE)
    assert b64url_encode(public_point(ua_key)) == RFC_UA_PUBLIC
    assert b64url_encode(public_point(as_key)) == RFC_AS_PUBLIC

    ecdh_secret = as_key.exchange(ec.ECDH(), ua_key.public_key())
    assert b64url_encode(ecdh_secret) == RFC_ECDH_SECRET
    prk_key = hmac_sha256(b64url_decode(RFC_AUTH_SECRET), ecdh_secret)
    assert b64url_encode(prk_key) == RFC_PRK_KEY
    key_info = b"WebPush: info\x00" + public_point(ua_key) + public_point(as_key)
    assert b64url_encode(key_info) == RFC_KEY_INFO
    ikm = hmac_sha256(prk_key, key_info + b"\x01")
    assert b64url_encode(ikm) == RFC_IKM
    prk = hmac_sha256(b64url_decode(RFC_SALT), ikm)
    assert b64url_encode(prk) == RFC_PRK
    cek = hmac_sha256(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    assert b64url_encode(cek) == RFC_CEK
    nonce = hmac_sha256(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    assert b64url_encode(nonce) == RFC_NONCE


def test_the_rfc_body_decrypts_with_the_user_agent_key() -> None:
    plaintext = http_ece.decrypt(
        b64url_decode(RFC_BODY),
        private_key=private_key_from_raw(RFC_UA_PRIVATE),
        auth_secret=b64url_decode(RFC_AUTH_SECRET),
        version="aes128gcm",
    )
    assert plaintext == RFC_PLAINTEXT


# --- Encryption with fresh keys -----------------------------------------------------------------


@pytest.fixture
def subscriber() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A browser's side of a subscription: its P-256 key and auth secret."""
    return ec.generate_private_key(ec.SECP256R1()), os.urandom(16)


def keys_of(subscriber: tuple[ec.EllipticCurvePrivateKey, bytes]) -> dict[str, str]:
    key, auth = subscriber
    return {"p256dh": b64url_encode(public_point(key)), "auth": b64url_encode(auth)}


def decrypt_as(subscriber: tuple[ec.EllipticCurvePrivateKey, bytes], body: bytes) -> bytes:
    key, auth = subscriber
    plaintext: bytes = http_ece.decrypt(
        body, private_key=key, auth_secret=auth, version="aes128gcm"
    )
    return plaintext


def test_each_message_gets_a_fresh_server_key_and_salt(subscriber: Any) -> None:
    first = encrypt_message(b"hello", keys_of(subscriber))
    second = encrypt_message(b"hello", keys_of(subscriber))
    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # the application server's public key
    assert decrypt_as(subscriber, first) == decrypt_as(subscriber, second) == b"hello"


def test_the_largest_message_fills_exactly_4096_bytes(subscriber: Any) -> None:
    body = encrypt_message(b"x" * webpush.MAX_PLAINTEXT_LENGTH, keys_of(subscriber))
    assert webpush.MAX_PLAINTEXT_LENGTH == 3993  # the figure RFC 8291 §4 gives
    assert len(body) == 4096
    with pytest.raises(PayloadTooLarge, match="3994 bytes"):
        encrypt_message(b"x" * 3994, keys_of(subscriber))


NOT_A_POINT = b64url_encode(b"\x04" + bytes(64))


@pytest.mark.parametrize(
    ("subscription", "message"),
    [
        ({"keys": RFC_KEYS}, "no endpoint"),
        ({"endpoint": "http://push.example/x", "keys": RFC_KEYS}, "https://"),
        ({"endpoint": "ftp://push.example/x", "keys": RFC_KEYS}, "https://"),
        ({"endpoint": "https://user:pw@push.example/x", "keys": RFC_KEYS}, "credentials"),
        ({"endpoint": "https://push.example:99999/x", "keys": RFC_KEYS}, "not a URL"),
        ({"endpoint": FCM_ENDPOINT}, "no keys"),
        ({"endpoint": FCM_ENDPOINT, "keys": {"auth": RFC_AUTH_SECRET}}, "no p256dh"),
        ({"endpoint": FCM_ENDPOINT, "keys": {**RFC_KEYS, "p256dh": "BCVx"}}, "not 65"),
        ({"endpoint": FCM_ENDPOINT, "keys": {**RFC_KEYS, "p256dh": NOT_A_POINT}}, "P-256 point"),
        ({"endpoint": FCM_ENDPOINT, "keys": {**RFC_KEYS, "auth": "AAAA"}}, "3 bytes, not 16"),
        ({"endpoint": FCM_ENDPOINT, "keys": {**RFC_KEYS, "auth": None}}, "no auth"),
    ],
)
def test_unusable_subscriptions_are_refused_with_a_reason(
    subscription: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSubscription, match=message):
        webpush.parse_subscription(subscription)


def test_padded_standard_base64_keys_are_accepted() -> None:
    """Some server-side libraries store keys padded or with + and /; they are the same keys."""
    standard = {
        name: value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)
        for name, value in RFC_KEYS.items()
    }
    body = encrypt_message(
        RFC_PLAINTEXT,
        standard,
        server_key=private_key_from_raw(RFC_AS_PRIVATE),
        salt=b64url_decode(RFC_SALT),
    )
    assert body == b64url_decode(RFC_BODY)


# --- VAPID keys ---------------------------------------------------------------------------------


def test_vapid_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = ensure_vapid_keys(tmp_path)
    key_file = tmp_path / webpush.VAPID_KEY_FILE
    assert first.path == key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    second = ensure_vapid_keys(tmp_path)
    assert second.application_server_key == first.application_server_key
    assert [p.name for p in tmp_path.iterdir()] == [webpush.VAPID_KEY_FILE]


def test_application_server_key_is_the_uncompressed_point_in_url_safe_base64(
    tmp_path: Path,
) -> None:
    keys = ensure_vapid_keys(tmp_path)
    text = keys.application_server_key
    assert len(text) == 87 and not set(text) & set("=+/")
    point = b64url_decode(text)
    assert len(point) == 65 and point[0] == 4
    assert point == public_point(keys.vapid.private_key)


def test_a_key_file_others_can_read_is_restricted(tmp_path: Path) -> None:
    before = ensure_vapid_keys(tmp_path).application_server_key
    key_file = tmp_path / webpush.VAPID_KEY_FILE
    key_file.chmod(0o644)
    assert ensure_vapid_keys(tmp_path).application_server_key == before
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_second_writer_never_replaces_the_first_key(tmp_path: Path) -> None:
    key_file = tmp_path / webpush.VAPID_KEY_FILE
    webpush._write_new_key(key_file)
    original = key_file.read_bytes()
    webpush._write_new_key(key_file)  # as if another worker raced past the exists() check
    assert key_file.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == [webpush.VAPID_KEY_FILE]


def test_an_unreadable_key_file_is_reported(tmp_path: Path) -> None:
    key_file = tmp_path / webpush.VAPID_KEY_FILE
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    key_file.chmod(0o600)
    with pytest.raises(WebPushError, match="readable VAPID private key"):
        ensure_vapid_keys(tmp_path)


# --- The push request and its VAPID token -------------------------------------------------------


@pytest.fixture
def vapid_keys(tmp_path: Path) -> VapidKeys:
    return ensure_vapid_keys(tmp_path)


def subscription_for(endpoint: str, subscriber: Any) -> dict[str, Any]:
    """What ``PushSubscription.toJSON()`` gives the page."""
    return {"endpoint": endpoint, "expirationTime": None, "keys": keys_of(subscriber)}


def split_authorization(header: str) -> tuple[str, str]:
    scheme, _, params = header.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    return fields["t"], fields["k"]


OFFER = {"kind": "offer", "title": "Trainers −20 %", "body": "Today in Shoes", "code": "K7QX"}


def test_push_request_headers_and_body(vapid_keys: VapidKeys, subscriber: Any) -> None:
    prepared = build_push_request(
        subscription_for(FCM_ENDPOINT, subscriber),
        OFFER,
        vapid_keys,
        ttl=3600,
        urgency="high",
        contact=CONTACT,
        topic="offer-42",
    )
    assert prepared.endpoint == FCM_ENDPOINT
    assert prepared.origin == "https://fcm.googleapis.com"
    assert {name: value for name, value in prepared.headers.items() if name != "Authorization"} == {
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": "3600",
        "Urgency": "high",
        "Topic": "offer-42",
    }
    _token, key = split_authorization(prepared.headers["Authorization"])
    assert key == vapid_keys.application_server_key
    plaintext = decrypt_as(subscriber, prepared.body)
    assert json.loads(plaintext) == OFFER
    assert len(plaintext) % webpush.PAYLOAD_SIZE_STEP == 0  # padded to hide the exact length
    assert "−20 %".encode() in plaintext  # UTF-8, not \u escapes: fewer of the 3993 bytes


@pytest.mark.parametrize(
    ("endpoint", "audience"),
    [
        (FCM_ENDPOINT, "https://fcm.googleapis.com"),
        (
            "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
            "https://updates.push.services.mozilla.com",
        ),
        ("https://Push.Example:8443/p/abc?x=1", "https://push.example:8443"),
    ],
)
@pytest.mark.parametrize("contact", [CONTACT, "https://shop.example"])
def test_vapid_token_claims(
    vapid_keys: VapidKeys, subscriber: Any, endpoint: str, audience: str, contact: str
) -> None:
    before = datetime.now(UTC).timestamp()
    prepared = build_push_request(
        subscription_for(endpoint, subscriber), OFFER, vapid_keys, 60, "normal", contact=contact
    )
    header = prepared.headers["Authorization"]
    token, key = split_authorization(header)
    claims = vapid_jwt.decode(token, key)  # checks the ES256 signature against k
    assert claims["aud"] == audience
    assert claims["sub"] == contact
    assert before < claims["exp"] <= before + 24 * 3600
    jwt_header = json.loads(b64url_decode(token.split(".")[0]))
    assert jwt_header == {"typ": "JWT", "alg": "ES256"}
    assert Vapid.verify(header)


def test_token_expiry_follows_the_clock(
    vapid_keys: VapidKeys, subscriber: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    monkeypatch.setattr(clock, "utcnow", lambda: now)
    prepared = build_push_request(
        subscription_for(FCM_ENDPOINT, subscriber), OFFER, vapid_keys, 60, contact=CONTACT
    )
    token, key = split_authorization(prepared.headers["Authorization"])
    exp = vapid_jwt.decode(token, key)["exp"]
    assert exp == int((now + webpush.VAPID_TOKEN_LIFETIME).timestamp())


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"ttl": -1}, ValueError, "ttl"),
        ({"ttl": 3600.0}, ValueError, "ttl"),
        ({"ttl": True}, ValueError, "ttl"),
        ({"urgency": "urgent"}, ValueError, "urgency"),
        ({"topic": "has space"}, ValueError, "topic"),
        ({"topic": "t" * 33}, ValueError, "topic"),
        ({"contact": "manager@shop.example"}, WebPushError, "mailto:"),
        ({"contact": "mailto:nobody"}, WebPushError, "cannot sign"),
        ({"payload": {"body": "x" * 4000}}, PayloadTooLarge, "at most 3993"),
    ],
)
def test_bad_push_parameters_are_refused(
    vapid_keys: VapidKeys,
    subscriber: Any,
    changes: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    arguments: dict[str, Any] = {
        "subscription": subscription_for(FCM_ENDPOINT, subscriber),
        "payload": OFFER,
        "vapid": vapid_keys,
        "ttl": 60,
        "urgency": "normal",
        "contact": CONTACT,
        **changes,
    }
    with pytest.raises(error, match=message):
        build_push_request(**arguments)


# --- Reading the push service's answer (stub poster) --------------------------------------------


def prepared_push() -> PreparedPush:
    return PreparedPush(endpoint=FCM_ENDPOINT, headers={"TTL": "60"}, body=b"sealed")


def poster_answering(response: PushResponse) -> Any:
    calls: list[tuple[str, Mapping[str, str], bytes]] = []

    def post(endpoint: str, headers: Mapping[str, str], body: bytes) -> PushResponse:
        calls.append((endpoint, headers, body))
        return response

    post.calls = calls  # type: ignore[attr-defined]
    return post


@pytest.mark.parametrize("status", [200, 201, 202])
def test_success_returns_the_answer(status: int) -> None:
    answer = PushResponse(status, {"location": "https://fcm.googleapis.com/m/1"})
    poster = poster_answering(answer)
    assert send_push(prepared_push(), http_post=poster) == answer
    assert poster.calls == [(FCM_ENDPOINT, {"TTL": "60"}, b"sealed")]


@pytest.mark.parametrize(
    ("response", "error", "message", "retry_after"),
    [
        (PushResponse(404), SubscriptionGone, "no longer has this subscription", None),
        (PushResponse(410, text="expired"), SubscriptionGone, "HTTP 410", None),
        (PushResponse(429, {"retry-after": "30"}), PushRetryLater, "rate-limiting", 30.0),
        (PushResponse(429), PushRetryLater, "HTTP 429", None),
        (PushResponse(500, text="oops"), PushRetryLater, r"failing \(HTTP 500\) \(oops\)", None),
        (PushResponse(503, {"retry-after": "soon"}), PushRetryLater, "HTTP 503", None),
        (PushResponse(400, text="bad TTL"), PushRejected, "malformed.*bad TTL", None),
        (PushResponse(401), PushRejected, "clock", None),
        (PushResponse(403), PushRejected, "subscribe again", None),
        (PushResponse(413), PushRejected, "too large", None),
        (PushResponse(301), PushRejected, "refused the message .HTTP 301", None),
    ],
)
def test_failures_say_what_to_do(
    response: PushResponse, error: type[WebPushError], message: str, retry_after: float | None
) -> None:
    with pytest.raises(error, match=message) as caught:
        send_push(prepared_push(), http_post=poster_answering(response))
    assert caught.value.status == response.status
    assert FCM_ENDPOINT not in str(caught.value)  # the endpoint is a capability: origin only
    if isinstance(caught.value, PushRetryLater):
        assert caught.value.retry_after == retry_after


def test_retry_after_as_an_http_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: datetime(2015, 10, 21, 7, 27, tzinfo=UTC))
    answer = PushResponse(503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    with pytest.raises(PushRetryLater) as caught:
        send_push(prepared_push(), http_post=poster_answering(answer))
    assert caught.value.retry_after == 60.0


def test_an_unreachable_service_is_worth_retrying() -> None:
    def refuse(endpoint: str, headers: Mapping[str, str], body: bytes) -> PushResponse:
        raise ConnectionRefusedError

    with pytest.raises(PushRetryLater, match="could not reach"):
        send_push(prepared_push(), http_post=refuse)


# --- A real push service on 127.0.0.1 -----------------------------------------------------------


class FakePushService(ThreadingHTTPServer):
    """Answers like a push service, by path, and keeps every request it got."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), PushHandler)
        self.received: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class PushHandler(BaseHTTPRequestHandler):
    server: FakePushService
    answers: ClassVar[dict[str, tuple[int, dict[str, str]]]] = {
        "/push/ok": (201, {"Location": "/m/1"}),
        "/push/gone": (410, {}),
        "/push/busy": (429, {"Retry-After": "7"}),
        "/push/moved": (307, {"Location": "/push/ok"}),
    }

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"path": self.path, "headers": self.headers, "body": body})
        status, headers = self.answers[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``received`` instead."""


@pytest.fixture
def push_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePushService]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy in the environment must not intercept
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = FakePushService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def push_to(
    service: FakePushService, path: str, subscriber: Any, vapid_keys: VapidKeys
) -> PreparedPush:
    return build_push_request(
        subscription_for(service.base_url + path, subscriber),
        OFFER,
        vapid_keys,
        ttl=600,
        urgency="normal",
        contact=CONTACT,
        require_https=False,
    )


def test_a_delivered_push_decrypts_to_the_payload_on_the_phone(
    push_service: FakePushService, subscriber: Any, vapid_keys: VapidKeys
) -> None:
    response = send_push(push_to(push_service, "/push/ok", subscriber, vapid_keys))
    assert response.status == 201
    assert response.headers["location"] == "/m/1"
    [request] = push_service.received
    headers = request["headers"]
    assert headers["Content-Encoding"] == "aes128gcm"
    assert headers["TTL"] == "600"
    assert headers["Urgency"] == "normal"
    token, key = split_authorization(headers["Authorization"])
    assert vapid_jwt.decode(token, key)["aud"] == push_service.base_url
    assert json.loads(decrypt_as(subscriber, request["body"])) == OFFER


def test_a_gone_subscription_is_reported(
    push_service: FakePushService, subscriber: Any, vapid_keys: VapidKeys
) -> None:
    with pytest.raises(SubscriptionGone):
        send_push(push_to(push_service, "/push/gone", subscriber, vapid_keys))


def test_a_busy_service_asks_for_a_retry(
    push_service: FakePushService, subscriber: Any, vapid_keys: VapidKeys
) -> None:
    with pytest.raises(PushRetryLater) as caught:
        send_push(push_to(push_service, "/push/busy", subscriber, vapid_keys))
    assert caught.value.retry_after == 7.0


def test_redirects_are_not_followed(
    push_service: FakePushService, subscriber: Any, vapid_keys: VapidKeys
) -> None:
    with pytest.raises(PushRejected, match="HTTP 307"):
        send_push(push_to(push_service, "/push/moved", subscriber, vapid_keys))
    assert [request["path"] for request in push_service.received] == ["/push/moved"]


def test_a_closed_port_is_worth_retrying(subscriber: Any, vapid_keys: VapidKeys) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prepared = build_push_request(
        subscription_for(f"http://127.0.0.1:{port}/push", subscriber),
        OFFER,
        vapid_keys,
        60,
        contact=CONTACT,
        require_https=False,
    )
    with pytest.raises(
        PushRetryLater, match=r"could not reach the push service http://127\.0\.0\.1"
    ):
        send_push(prepared)
