"""Sending Web Push with pywebpush: the request and its VAPID token, and how push-service
answers are read.

Nothing here reaches a real push service: the sending tests post to a server on 127.0.0.1, and
the few that need an https endpoint replace requests' transport (the channel's HTTP seam).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from py_vapid import Vapid
from py_vapid import jwt as vapid_jwt

from instore import clock
from offers.channels import webpush
from offers.channels.webpush import (
    PayloadTooLarge,
    PushRejected,
    PushResponse,
    PushRetryLater,
    Subscription,
    SubscriptionGone,
    VapidKeys,
    WebPushError,
    b64url_decode,
    encode_payload,
    ensure_vapid_keys,
    parse_subscription,
    read_answer,
    send_push,
)
from tests.webpush_helpers import (
    CONTACT,
    FCM_ENDPOINT,
    OFFER,
    CannedAdapter,
    FakePushService,
    Subscriber,
    canned_session,
    decrypt_as,
    new_subscriber,
    running_push_service,
    split_authorization,
    subscription_for,
)


@pytest.fixture
def vapid_keys(tmp_path: Path) -> VapidKeys:
    return ensure_vapid_keys(tmp_path)


@pytest.fixture
def subscriber() -> Subscriber:
    """A browser's side of a subscription: its P-256 key and auth secret."""
    return new_subscriber()


@pytest.fixture
def push_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePushService]:
    with running_push_service(monkeypatch) as server:
        yield server


def local(service: FakePushService, path: str, subscriber: Any) -> Subscription:
    return parse_subscription(
        subscription_for(service.base_url + path, subscriber), require_https=False
    )


def push_local(service: FakePushService, path: str, subscriber: Any, vapid: VapidKeys) -> Any:
    return send_push(local(service, path, subscriber), b"{}", vapid, ttl=60, contact=CONTACT)


# --- The request pywebpush makes, seen by a push service on 127.0.0.1 ---------------------------


def test_a_delivered_push_decrypts_to_the_payload_on_the_phone(
    push_service: FakePushService, subscriber: Any, vapid_keys: VapidKeys
) -> None:
    response = send_push(
        local(push_service, "/push/ok", subscriber),
        encode_payload(OFFER),
        vapid_keys,
        ttl=600,
        urgency="high",
        contact=CONTACT,
    )
    assert response.status == 201
    assert response.headers["location"] == "/m/1"
    [request] = push_service.received
    headers = request["headers"]
    assert headers["Content-Encoding"] == "aes128gcm"
    assert headers["TTL"] == "600"
    assert headers["Urgency"] == "high"
    assert "Topic" not in headers
    token, key = split_authorization(headers["Authorization"])
    assert key == vapid_keys.application_server_key
    claims = vapid_jwt.decode(token, key)  # checks the ES256 signature against k
    assert claims["aud"] == push_service.base_url
    assert claims["sub"] == CONTACT
    plaintext = decrypt_as(subscriber, request["body"])
    assert json.loads(plaintext) == OFFER
    assert len(plaintext) % webpush.PAYLOAD_SIZE_STEP == 0  # padded to hide the exact length
    assert "−20 %".encode() in plaintext  # UTF-8, not \\u escapes: fewer of the 3993 bytes


def test_a_gone_subscription_is_reported(
    push_service: FakePushService, subscriber: Any, vapid_keys: VapidKeys
) -> None:
    with pytest.raises(SubscriptionGone, match="HTTP 410"):
        push_local(push_service, "/push/gone", subscriber, vapid_keys)


def test_a_busy_service_asks_for_a_retry(
    push_service: FakePushService, subscriber: Any, vapid_keys: VapidKeys
) -> None:
    with pytest.raises(PushRetryLater) as caught:
        push_local(push_service, "/push/busy", subscriber, vapid_keys)
    assert caught.value.retry_after == 7.0


def test_redirects_are_not_followed(
    push_service: FakePushService, subscriber: Any, vapid_keys: VapidKeys
) -> None:
    with pytest.raises(PushRejected, match="HTTP 307"):
        push_local(push_service, "/push/moved", subscriber, vapid_keys)
    assert [request["path"] for request in push_service.received] == ["/push/moved"]


def test_a_closed_port_is_worth_retrying(subscriber: Any, vapid_keys: VapidKeys) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subscription = parse_subscription(
        subscription_for(f"http://127.0.0.1:{port}/push", subscriber), require_https=False
    )
    with pytest.raises(
        PushRetryLater, match=r"could not reach the push service http://127\.0\.0\.1"
    ):
        send_push(subscription, b"{}", vapid_keys, ttl=60, contact=CONTACT)


# --- The VAPID token for real push services (transport replaced) --------------------------------


def sent_through(
    adapter: CannedAdapter, endpoint: str, subscriber: Any, vapid: VapidKeys, contact: str = CONTACT
) -> requests.PreparedRequest:
    """Send through the replaced transport; return the one request pywebpush made."""
    send_push(
        parse_subscription(subscription_for(endpoint, subscriber)),
        b"{}",
        vapid,
        ttl=60,
        contact=contact,
        session=canned_session(adapter),
    )
    [request] = adapter.requests
    return request


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
    request = sent_through(CannedAdapter(201), endpoint, subscriber, vapid_keys, contact)
    assert request.url and request.url.lower() == endpoint.lower()  # requests lowers the host
    header = request.headers["Authorization"]
    token, key = split_authorization(header)
    claims = vapid_jwt.decode(token, key)
    assert claims["aud"] == audience
    assert claims["sub"] == contact
    assert before < claims["exp"] <= before + 24 * 3600
    jwt_header = json.loads(b64url_decode(token.split(".")[0]))
    assert jwt_header == {"typ": "JWT", "alg": "ES256"}
    assert Vapid.verify(header)


def test_token_expiry_follows_the_box_clock(
    vapid_keys: VapidKeys, subscriber: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    monkeypatch.setattr(clock, "utcnow", lambda: now)
    request = sent_through(CannedAdapter(201), FCM_ENDPOINT, subscriber, vapid_keys)
    token, key = split_authorization(request.headers["Authorization"])
    exp = vapid_jwt.decode(token, key)["exp"]
    assert exp == int((now + webpush.VAPID_TOKEN_LIFETIME).timestamp())


def test_a_timeout_is_worth_retrying(vapid_keys: VapidKeys, subscriber: Any) -> None:
    adapter = CannedAdapter(error=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(PushRetryLater, match=r"could not reach .*ReadTimeout"):
        sent_through(adapter, FCM_ENDPOINT, subscriber, vapid_keys)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"ttl": -1}, ValueError, "ttl"),
        ({"ttl": 3600.0}, ValueError, "ttl"),
        ({"ttl": True}, ValueError, "ttl"),
        ({"urgency": "urgent"}, ValueError, "urgency"),
        ({"contact": "manager@shop.example"}, WebPushError, "mailto:"),
        ({"contact": "mailto:nobody"}, WebPushError, "cannot sign"),
        ({"data": b"x" * 3994}, PayloadTooLarge, "3994 bytes; a push carries at most 3993"),
    ],
)
def test_bad_push_parameters_are_refused_before_anything_is_sent(
    vapid_keys: VapidKeys,
    subscriber: Any,
    changes: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    adapter = CannedAdapter(201)
    arguments: dict[str, Any] = {
        "subscription": parse_subscription(subscription_for(FCM_ENDPOINT, subscriber)),
        "data": b"{}",
        "vapid": vapid_keys,
        "ttl": 60,
        "urgency": "normal",
        "contact": CONTACT,
        "session": canned_session(adapter),
        **changes,
    }
    with pytest.raises(error, match=message):
        send_push(**arguments)
    assert adapter.requests == []


def test_payload_padding_stops_at_the_largest_message() -> None:
    assert len(encode_payload({"body": "x" * 3970})) == webpush.MAX_PLAINTEXT_LENGTH
    assert len(encode_payload({"body": "x"})) == webpush.PAYLOAD_SIZE_STEP


# --- Reading the push service's answer ----------------------------------------------------------

ORIGIN = "https://fcm.googleapis.com"


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_success_returns_the_answer(status: int) -> None:
    answer = PushResponse(status, {"location": "https://fcm.googleapis.com/m/1"})
    assert read_answer(answer, ORIGIN) == answer


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
        read_answer(response, ORIGIN)
    assert caught.value.status == response.status
    assert ORIGIN in str(caught.value)
    if isinstance(caught.value, PushRetryLater):
        assert caught.value.retry_after == retry_after


def test_errors_name_the_origin_never_the_endpoint(vapid_keys: VapidKeys, subscriber: Any) -> None:
    """The endpoint is a capability: whoever reads it can push to the phone."""
    with pytest.raises(SubscriptionGone) as caught:
        sent_through(CannedAdapter(410), FCM_ENDPOINT, subscriber, vapid_keys)
    assert ORIGIN in str(caught.value)
    assert FCM_ENDPOINT not in str(caught.value)


def test_retry_after_as_an_http_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: datetime(2015, 10, 21, 7, 27, tzinfo=UTC))
    answer = PushResponse(503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    with pytest.raises(PushRetryLater) as caught:
        read_answer(answer, ORIGIN)
    assert caught.value.retry_after == 60.0
