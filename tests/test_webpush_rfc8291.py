"""Web Push encryption: the RFC 8291 worked example through pywebpush, as sent on the wire,
fresh keys per message, and which subscriptions can be encrypted to at all.
"""

from __future__ import annotations

import hashlib
import hmac
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import http_ece
import pytest
import pywebpush
from cryptography.hazmat.primitives.asymmetric import ec

from offers.channels import webpush
from offers.channels.webpush import (
    InvalidSubscription,
    PayloadTooLarge,
    Subscription,
    VapidKeys,
    b64url_decode,
    b64url_encode,
    ensure_vapid_keys,
    parse_subscription,
    send_push,
)
from tests.webpush_helpers import (
    CONTACT,
    FCM_ENDPOINT,
    RFC_AS_PRIVATE,
    RFC_AS_PUBLIC,
    RFC_AUTH_SECRET,
    RFC_BODY,
    RFC_CEK,
    RFC_CIPHERTEXT,
    RFC_ECDH_SECRET,
    RFC_HEADER,
    RFC_IKM,
    RFC_KEY_INFO,
    RFC_KEYS,
    RFC_NONCE,
    RFC_PLAINTEXT,
    RFC_PRK,
    RFC_PRK_KEY,
    RFC_SALT,
    RFC_UA_PRIVATE,
    RFC_UA_PUBLIC,
    FakePushService,
    Subscriber,
    decrypt_as,
    keys_of,
    new_subscriber,
    private_key_from_raw,
    public_point,
    running_push_service,
)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


# --- RFC 8291 -----------------------------------------------------------------------------------


@pytest.fixture
def push_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePushService]:
    with running_push_service(monkeypatch) as server:
        yield server


@pytest.fixture
def vapid_keys(tmp_path: Path) -> VapidKeys:
    return ensure_vapid_keys(tmp_path)


@pytest.fixture
def rfc_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make pywebpush pick the RFC's application server key and http_ece the RFC's salt.

    Only the two modules' own names are replaced, so nothing else in the process is affected.
    """
    pinned_ec = types.SimpleNamespace(
        SECP256R1=ec.SECP256R1,
        generate_private_key=lambda *args: private_key_from_raw(RFC_AS_PRIVATE),
    )
    monkeypatch.setattr(pywebpush, "ec", pinned_ec)
    monkeypatch.setattr(
        http_ece, "os", types.SimpleNamespace(urandom=lambda n: b64url_decode(RFC_SALT))
    )


def push_bytes(
    service: FakePushService, keys: dict[str, str], data: bytes, vapid: VapidKeys
) -> bytes:
    """Send ``data`` with our send path; return the body the push service received."""
    subscription = parse_subscription(
        {"endpoint": f"{service.base_url}/push/ok", "keys": keys}, require_https=False
    )
    send_push(subscription, data, vapid, ttl=60, contact=CONTACT)
    body: bytes = service.received[-1]["body"]
    return body


@pytest.mark.usefixtures("rfc_randomness")
def test_the_body_on_the_wire_is_the_rfc_8291_example_byte_for_byte(
    push_service: FakePushService, vapid_keys: VapidKeys
) -> None:
    body = push_bytes(push_service, RFC_KEYS, RFC_PLAINTEXT, vapid_keys)
    assert body[:86] == b64url_decode(RFC_HEADER)
    assert body[86:] == b64url_decode(RFC_CIPHERTEXT)
    assert body == b64url_decode(RFC_BODY)
    assert push_service.received[-1]["headers"]["Content-Encoding"] == "aes128gcm"


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
def subscriber() -> Subscriber:
    """A browser's side of a subscription: its P-256 key and auth secret."""
    return new_subscriber()


def test_each_message_gets_a_fresh_server_key_and_salt(
    push_service: FakePushService, vapid_keys: VapidKeys, subscriber: Any
) -> None:
    first = push_bytes(push_service, keys_of(subscriber), b"hello", vapid_keys)
    second = push_bytes(push_service, keys_of(subscriber), b"hello", vapid_keys)
    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # the application server's public key
    assert decrypt_as(subscriber, first) == decrypt_as(subscriber, second) == b"hello"


def test_the_largest_message_fills_exactly_4096_bytes(
    push_service: FakePushService, vapid_keys: VapidKeys, subscriber: Any
) -> None:
    largest = b"x" * webpush.MAX_PLAINTEXT_LENGTH
    body = push_bytes(push_service, keys_of(subscriber), largest, vapid_keys)
    assert webpush.MAX_PLAINTEXT_LENGTH == 3993  # the figure RFC 8291 §4 gives
    assert len(body) == webpush.MAX_BODY_LENGTH == 4096
    assert decrypt_as(subscriber, body) == largest
    with pytest.raises(PayloadTooLarge, match="3994 bytes"):
        push_bytes(push_service, keys_of(subscriber), largest + b"x", vapid_keys)
    assert len(push_service.received) == 1


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


@pytest.mark.usefixtures("rfc_randomness")
def test_padded_standard_base64_keys_are_the_same_keys(
    push_service: FakePushService, vapid_keys: VapidKeys
) -> None:
    """Some server-side libraries store keys padded or with + and /; they are the same keys."""
    standard = {
        name: value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)
        for name, value in RFC_KEYS.items()
    }
    parsed = parse_subscription({"endpoint": FCM_ENDPOINT, "keys": standard})
    assert parsed == Subscription(FCM_ENDPOINT, RFC_KEYS["p256dh"], RFC_KEYS["auth"])
    assert push_bytes(push_service, standard, RFC_PLAINTEXT, vapid_keys) == b64url_decode(RFC_BODY)
