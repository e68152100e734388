"""Sending Web Push: the request and its VAPID token, and how push-service answers are read.

Nothing here reaches a real push service: the sending tests post to a server on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from py_vapid import Vapid
from py_vapid import jwt as vapid_jwt

from instore import clock
from offers.channels import webpush
from offers.channels.webpush import (
    PayloadTooLarge,
    PreparedPush,
    PushRejected,
    PushResponse,
    PushRetryLater,
    SubscriptionGone,
    VapidKeys,
    WebPushError,
    b64url_decode,
    build_push_request,
    ensure_vapid_keys,
    send_push,
)
from tests.webpush_helpers import (
    CONTACT,
    FCM_ENDPOINT,
    OFFER,
    FakePushService,
    Subscriber,
    decrypt_as,
    new_subscriber,
    split_authorization,
    subscription_for,
)

# --- The push request and its VAPID token -------------------------------------------------------


@pytest.fixture
def vapid_keys(tmp_path: Path) -> VapidKeys:
    return ensure_vapid_keys(tmp_path)


@pytest.fixture
def subscriber() -> Subscriber:
    """A browser's side of a subscription: its P-256 key and auth secret."""
    return new_subscriber()


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
