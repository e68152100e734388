"""The Web Push channel end to end: notifications in the database, pywebpush's requests to a
push service listening on 127.0.0.1, which decrypts each body with the browser's private key and
checks the VAPID token; then what the channel wrote in ``deliveries`` and ``push_subscriptions``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlite_utils
from py_vapid import jwt as vapid_jwt

from instore import clock, members
from instore.config import Config
from instore.plugins import pm
from offers import subscriptions
from offers.channels import webpush
from offers.channels.webpush import parse_subscription
from offers.channels.webpush_channel import (
    FRIEND_TTL_SECONDS,
    MAX_FAILURES,
    OFFER_TTL_SECONDS,
    WebPushChannel,
)
from offers.notifications import Notification, create_notification, get_notification
from offers.worker import Deliverer
from tests.webpush_helpers import (
    CONTACT,
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
def push_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePushService]:
    with running_push_service(monkeypatch) as server:
        yield server


@pytest.fixture
def channel(tmp_path: Path) -> WebPushChannel:
    """The channel as the worker runs it, except that it may push to http://127.0.0.1."""
    return WebPushChannel(tmp_path / "keys", CONTACT, require_https=False)


_codes = itertools.count()  # redemption codes are unique


def member(db: sqlite_utils.Database, name: str = "Ana") -> members.Member:
    return members.create_member(
        db, display_name=name, password="correct horse battery", email=f"{name}@example.com"
    )


def notify(
    db: sqlite_utils.Database, member_id: int, kind: str = "offer", **fields: Any
) -> Notification:
    values: dict[str, Any] = {
        "title": "Trainers −20 %" if kind == "offer" else "Bea is here",
        "body": "Today in Shoes" if kind == "offer" else "in Shoes",
        "code": f"K7Q{next(_codes)}" if kind == "offer" else None,
        "price_cents": 6400 if kind == "offer" else None,
        **fields,
    }
    notification_id = create_notification(
        db, member_id=member_id, kind=kind, now=clock.utcnow(), **values
    )
    notification = get_notification(db, notification_id)
    assert notification is not None
    return notification


def subscribe(
    db: sqlite_utils.Database, member_id: int, endpoint: str, subscriber: Subscriber
) -> int:
    subscription = parse_subscription(subscription_for(endpoint, subscriber), require_https=False)
    return subscriptions.save_subscription(
        db, member_id, subscription, user_agent="test", now=clock.utcnow()
    )


def one_browser(db: sqlite_utils.Database, endpoint: str) -> tuple[members.Member, int]:
    """Ana, with one browser subscribed at ``endpoint``; returns her and its subscription id."""
    ana = member(db)
    return ana, subscribe(db, ana.id, endpoint, new_subscriber())


def deliveries(db: sqlite_utils.Database, notification_id: int) -> dict[str, tuple[str, str]]:
    """target → (status, detail) of the channel's rows for one notification."""
    rows = db.conn.execute(
        "SELECT target, status, detail FROM deliveries WHERE notification_id = ? "
        "AND channel = 'webpush'",
        (notification_id,),
    ).fetchall()
    return {target: (status, detail) for target, status, detail in rows}


def stored(db: sqlite_utils.Database, subscription_id: int) -> dict[str, Any] | None:
    row = db.conn.execute(
        "SELECT failures, last_success_at FROM push_subscriptions WHERE id = ?", (subscription_id,)
    ).fetchone()
    return None if row is None else {"failures": row[0], "last_success_at": row[1]}


def test_every_browser_of_the_member_gets_the_push_and_can_read_it(
    db: sqlite_utils.Database, channel: WebPushChannel, push_service: FakePushService
) -> None:
    ana, bea = member(db, "Ana"), member(db, "Bea")
    phone, laptop, other = new_subscriber(), new_subscriber(), new_subscriber()
    phone_id = subscribe(db, ana.id, f"{push_service.base_url}/push/ok?phone", phone)
    laptop_id = subscribe(db, ana.id, f"{push_service.base_url}/push/ok?laptop", laptop)
    subscribe(db, bea.id, f"{push_service.base_url}/push/ok?bea", other)
    notification = notify(db, ana.id)

    channel.deliver(db, notification)

    received = {request["path"].split("?")[1]: request for request in push_service.received}
    assert set(received) == {"phone", "laptop"}  # Bea's browser gets nothing of Ana's
    server_key = channel.vapid_keys().application_server_key
    expected = {**notification.to_json(), "url": f"/store#n-{notification.id}"}
    for name, subscriber in [("phone", phone), ("laptop", laptop)]:
        request = received[name]
        payload = json.loads(decrypt_as(subscriber, request["body"]))
        assert payload == expected
        assert "member_id" not in payload  # the push service relays it; it needs no member id
        headers = request["headers"]
        assert headers["Content-Encoding"] == "aes128gcm"
        assert headers["TTL"] == str(OFFER_TTL_SECONDS)
        assert headers["Urgency"] == "normal"
        token, key = split_authorization(headers["Authorization"])
        assert key == server_key
        claims = vapid_jwt.decode(token, key)  # verifies the ES256 signature with k
        assert claims["aud"] == push_service.base_url
        assert claims["sub"] == CONTACT
        assert claims["exp"] > clock.utcnow().timestamp()
    assert deliveries(db, notification.id) == {
        str(phone_id): ("sent", f"HTTP 201 from {push_service.base_url}"),
        str(laptop_id): ("sent", f"HTTP 201 from {push_service.base_url}"),
    }
    assert stored(db, phone_id) == {"failures": 0, "last_success_at": clock.now_iso()}


def test_a_friend_note_wakes_the_phone_and_expires_sooner(
    db: sqlite_utils.Database, channel: WebPushChannel, push_service: FakePushService
) -> None:
    ana, _ = one_browser(db, f"{push_service.base_url}/push/ok")
    channel.deliver(db, notify(db, ana.id, kind="friend", data={"friend_name": "Bea"}))
    [request] = push_service.received
    assert request["headers"]["Urgency"] == "high"
    assert request["headers"]["TTL"] == str(FRIEND_TTL_SECONDS)


def test_the_push_never_outlives_the_offer(
    db: sqlite_utils.Database, channel: WebPushChannel, push_service: FakePushService
) -> None:
    ana, _ = one_browser(db, f"{push_service.base_url}/push/ok")
    ends = clock.utcnow() + timedelta(minutes=5)
    channel.deliver(db, notify(db, ana.id, expires_at=ends))
    [request] = push_service.received
    assert 0 < int(request["headers"]["TTL"]) <= 300


def test_a_gone_subscription_is_deleted_and_the_others_still_get_theirs(
    db: sqlite_utils.Database, channel: WebPushChannel, push_service: FakePushService
) -> None:
    ana, gone_id = one_browser(db, f"{push_service.base_url}/push/gone")
    ok_id = subscribe(db, ana.id, f"{push_service.base_url}/push/ok", new_subscriber())
    notification = notify(db, ana.id)

    channel.deliver(db, notification)

    outcome = deliveries(db, notification.id)
    assert outcome[str(gone_id)][0] == "gone"
    assert "HTTP 410" in outcome[str(gone_id)][1]
    assert outcome[str(ok_id)][0] == "sent"
    assert stored(db, gone_id) is None
    assert [s.id for s in subscriptions.member_subscriptions(db, ana.id)] == [ok_id]


def test_a_failing_subscription_is_dropped_after_max_failures_in_a_row(
    db: sqlite_utils.Database, channel: WebPushChannel, push_service: FakePushService
) -> None:
    ana, failing_id = one_browser(db, f"{push_service.base_url}/push/fail")
    for attempt in range(1, MAX_FAILURES):
        notification = notify(db, ana.id)
        channel.deliver(db, notification)
        status, detail = deliveries(db, notification.id)[str(failing_id)]
        assert (status, stored(db, failing_id)) == (
            "failed",
            {"failures": attempt, "last_success_at": None},
        )
        assert "HTTP 500" in detail and "deleted" not in detail

    last = notify(db, ana.id)
    channel.deliver(db, last)
    status, detail = deliveries(db, last.id)[str(failing_id)]
    assert status == "failed"
    assert f"deleted after {MAX_FAILURES} failures in a row" in detail
    assert stored(db, failing_id) is None
    assert len(push_service.received) == MAX_FAILURES


def test_a_success_starts_the_failure_count_again(
    db: sqlite_utils.Database, channel: WebPushChannel, push_service: FakePushService
) -> None:
    ana = member(db)
    subscriber = new_subscriber()
    subscription_id = subscribe(db, ana.id, f"{push_service.base_url}/push/fail", subscriber)
    for _ in range(MAX_FAILURES - 1):
        channel.deliver(db, notify(db, ana.id))
    assert stored(db, subscription_id) == {"failures": MAX_FAILURES - 1, "last_success_at": None}
    # The browser sends its subscription again, now at a working endpoint: same row, count reset.
    db.conn.execute(
        "UPDATE push_subscriptions SET endpoint = ? WHERE id = ?",
        (f"{push_service.base_url}/push/ok", subscription_id),
    )
    channel.deliver(db, notify(db, ana.id))
    assert stored(db, subscription_id) == {"failures": 0, "last_success_at": clock.now_iso()}


def test_an_http_endpoint_is_refused_when_https_is_required(
    db: sqlite_utils.Database, tmp_path: Path, push_service: FakePushService
) -> None:
    ana, subscription_id = one_browser(db, f"{push_service.base_url}/push/ok")
    notification = notify(db, ana.id)
    WebPushChannel(tmp_path, CONTACT).deliver(db, notification)
    assert push_service.received == []
    status, detail = deliveries(db, notification.id)[str(subscription_id)]
    assert (status, detail) == ("gone", "the subscription endpoint must be an https:// URL")
    assert stored(db, subscription_id) is None


def test_one_broken_subscription_never_stops_the_others(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """A bug or a transport error for one browser is recorded; the next browser still gets its."""

    class Flaky(CannedAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            if "broken" in (request.url or ""):
                self.requests.append(request)
                raise RuntimeError("a bug in a transport")
            return super().send(request, **kwargs)

    adapter = Flaky(201)
    channel = WebPushChannel(tmp_path, CONTACT, session=canned_session(adapter))
    ana, broken_id = one_browser(db, "https://push.example/broken")
    fine_id = subscribe(db, ana.id, "https://push.example/fine", new_subscriber())
    notification = notify(db, ana.id)

    channel.deliver(db, notification)

    outcome = deliveries(db, notification.id)
    assert outcome[str(broken_id)] == ("failed", "a bug in a transport")
    assert outcome[str(fine_id)] == ("sent", "HTTP 201 from https://push.example")
    assert stored(db, broken_id) == {"failures": 1, "last_success_at": None}
    assert len(adapter.requests) == 2


def test_a_message_too_large_fails_without_blaming_the_subscription(
    db: sqlite_utils.Database, channel: WebPushChannel, push_service: FakePushService
) -> None:
    ana, subscription_id = one_browser(db, f"{push_service.base_url}/push/ok")
    notification = notify(db, ana.id, body="x" * 4000)
    channel.deliver(db, notification)
    status, detail = deliveries(db, notification.id)[str(subscription_id)]
    assert status == "failed" and "at most 3993" in detail
    assert stored(db, subscription_id) == {"failures": 0, "last_success_at": None}
    assert push_service.received == []


def test_delivering_again_updates_the_same_delivery_row(
    db: sqlite_utils.Database, channel: WebPushChannel, push_service: FakePushService
) -> None:
    """The worker delivers at least once: a repeat after a crash must not hit UNIQUE."""
    ana, subscription_id = one_browser(db, f"{push_service.base_url}/push/ok")
    notification = notify(db, ana.id)
    channel.deliver(db, notification)
    channel.deliver(db, notification)
    assert list(deliveries(db, notification.id)) == [str(subscription_id)]
    assert len(push_service.received) == 2


def test_no_subscription_means_no_request_and_no_key_file(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    adapter = CannedAdapter(201)
    channel = WebPushChannel(tmp_path / "keys", CONTACT, session=canned_session(adapter))
    notification = notify(db, member(db).id)
    channel.deliver(db, notification)
    assert adapter.requests == []
    assert deliveries(db, notification.id) == {}
    assert not (tmp_path / "keys").exists()


def test_the_plugin_offers_the_channel_with_the_box_settings(config: Config) -> None:
    [channel] = [c for batch in pm.hook.delivery_channels(config=config) for c in batch
                 if c.name == "webpush"]  # fmt: skip
    assert isinstance(channel, WebPushChannel)
    assert channel.contact == config["offers"]["vapid_subject"]
    assert channel.key_dir == config.var_dir
    assert channel.require_https
    assert not (config.var_dir / webpush.VAPID_KEY_FILE).exists()  # made on first push only


def test_an_unusable_key_fails_the_push_without_blaming_subscriptions(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    (tmp_path / webpush.VAPID_KEY_FILE).write_text("not a key")
    (tmp_path / webpush.VAPID_KEY_FILE).chmod(0o600)
    adapter = CannedAdapter(201)
    channel = WebPushChannel(tmp_path, CONTACT, session=canned_session(adapter))
    ana, subscription_id = one_browser(db, "https://push.example/x")
    notification = notify(db, ana.id)
    channel.deliver(db, notification)
    status, detail = deliveries(db, notification.id)[str(subscription_id)]
    assert status == "failed" and "readable VAPID private key" in detail
    assert stored(db, subscription_id) == {"failures": 0, "last_success_at": None}
    assert adapter.requests == []


def test_the_offers_worker_hands_new_notifications_to_the_channel_once(
    db: sqlite_utils.Database, channel: WebPushChannel, push_service: FakePushService
) -> None:
    ana, subscription_id = one_browser(db, f"{push_service.base_url}/push/ok")
    notify(db, ana.id)  # from before the channel started: not pushed
    deliverer = Deliverer(db, [channel], poll_seconds=0.01)
    deliverer.start_at_end()
    notification = notify(db, ana.id)
    assert deliverer.deliver_once() == 1
    assert deliverer.deliver_once() == 0
    assert len(push_service.received) == 1
    assert deliveries(db, notification.id)[str(subscription_id)][0] == "sent"


def test_a_bad_contact_is_refused_when_the_channel_is_made(tmp_path: Path) -> None:
    with pytest.raises(webpush.WebPushError, match="mailto:"):
        WebPushChannel(tmp_path, "it@example.com")
