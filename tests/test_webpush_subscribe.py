"""The store page's Web Push routes: the service worker, the VAPID key, subscribe and unsubscribe
(with their CSRF check and JSON errors), and the subscriptions table behind them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from hardware.clients import DemoLookup
from instore import clock, members, sessions
from instore.config import Config
from offers import subscriptions
from offers.channels import webpush
from offers.channels.webpush import b64url_decode, parse_subscription
from portal.push import ALLOW_HTTP_ENDPOINTS
from tests.conftest import TEST_CLIENT_IP, AuthActions
from tests.webpush_helpers import FCM_ENDPOINT, RFC_KEYS, keys_of, new_subscriber

MOZILLA_ENDPOINT = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk"


def subscription_json(endpoint: str = FCM_ENDPOINT) -> dict[str, Any]:
    """What ``PushSubscription.toJSON()`` gives the page."""
    return {"endpoint": endpoint, "expirationTime": None, "keys": keys_of(new_subscriber())}


def rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(
        db.query("SELECT member_id, endpoint, p256dh, auth, failures FROM push_subscriptions")
    )


# --- The service worker and the key -------------------------------------------------------------


def test_the_service_worker_is_served_from_the_root_for_the_whole_site(client: FlaskClient) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert response.headers["Cache-Control"] == "no-cache"
    body = response.get_data(as_text=True)
    assert 'addEventListener("push"' in body
    assert 'addEventListener("notificationclick"' in body


def test_the_key_is_the_boxes_vapid_public_key(client: FlaskClient, config: Config) -> None:
    key_file = config.var_dir / webpush.VAPID_KEY_FILE
    assert not key_file.exists()  # made on first use, not when the portal starts
    answer = client.get("/push/key")
    assert answer.status_code == 200
    public_key = answer.get_json()["publicKey"]
    assert key_file.exists()
    assert public_key == webpush.ensure_vapid_keys(config.var_dir).application_server_key
    assert len(b64url_decode(public_key)) == 65
    assert client.get("/push/key").get_json() == {"publicKey": public_key}


def test_a_damaged_key_file_is_a_503_with_a_sentence(client: FlaskClient, config: Config) -> None:
    config.var_dir.mkdir(parents=True, exist_ok=True)
    (config.var_dir / webpush.VAPID_KEY_FILE).write_text("damaged")
    answer = client.get("/push/key")
    assert answer.status_code == 503
    assert answer.get_json() == {
        "error": "Notifications are not available right now. Try again later."
    }


# --- Subscribe and unsubscribe ------------------------------------------------------------------


def test_subscribe_stores_this_browser_for_the_shopper(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    ana = auth.go_online()
    sent = subscription_json()
    answer = client.post("/push/subscribe", json=sent, headers={"User-Agent": "Phone/1.0"})
    assert answer.status_code == 201
    assert answer.get_json() == {"subscribed": True}
    assert rows(db) == [
        {
            "member_id": ana.id,
            "endpoint": FCM_ENDPOINT,
            "p256dh": sent["keys"]["p256dh"],
            "auth": sent["keys"]["auth"],
            "failures": 0,
        }
    ]
    [stored] = subscriptions.member_subscriptions(db, ana.id)
    assert stored.user_agent == "Phone/1.0"

    # The browser sends it again on its next visit, with renewed keys: one row, new keys.
    renewed = subscription_json()
    assert client.post("/push/subscribe", json=renewed).status_code == 201
    assert [row["p256dh"] for row in rows(db)] == [renewed["keys"]["p256dh"]]


def test_unsubscribe_forgets_only_the_shoppers_own_browser(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    ana = auth.go_online()
    bea = members.create_member(db, display_name="Bea", password="x" * 12, email="bea@example.com")
    subscriptions.save_subscription(
        db,
        bea.id,
        parse_subscription(subscription_json(MOZILLA_ENDPOINT)),
        user_agent="",
        now=clock.utcnow(),
    )
    client.post("/push/subscribe", json=subscription_json())

    foreign = client.post("/push/unsubscribe", json={"endpoint": MOZILLA_ENDPOINT})
    assert foreign.get_json() == {"subscribed": False, "removed": False}
    answer = client.post("/push/unsubscribe", json={"endpoint": FCM_ENDPOINT})
    assert answer.status_code == 200
    assert answer.get_json() == {"subscribed": False, "removed": True}
    assert [(row["member_id"], row["endpoint"]) for row in rows(db)] == [(bea.id, MOZILLA_ENDPOINT)]
    assert subscriptions.member_subscriptions(db, ana.id) == []


@pytest.mark.parametrize("path", ["/push/subscribe", "/push/unsubscribe"])
def test_a_phone_nobody_signed_in_on_gets_401(client: FlaskClient, path: str) -> None:
    answer = client.post(path, json=subscription_json())
    assert answer.status_code == 401
    assert answer.get_json()["error"].startswith("Sign in to the store WiFi")


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b"not json", "did not send a push subscription"),
        (b"[1, 2]", "did not send a push subscription"),
        (b'{"endpoint": "https://push.example/x"}', "cannot be used: the subscription has no keys"),
        (
            b'{"endpoint": "http://push.example/x", "keys": {}}',
            "cannot be used: the subscription endpoint must be an https:// URL.",
        ),
        (
            b'{"endpoint": "https://push.example/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}',
            "p256dh key is 3 bytes, not 65",
        ),
        (b'{"keys": {}}', "the subscription has no endpoint"),
    ],
)
def test_a_bad_subscription_is_refused_with_a_sentence(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database, body: bytes, sentence: str
) -> None:
    auth.go_online()
    answer = client.post("/push/subscribe", data=body, content_type="application/json")
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert sentence in error
    assert error[0].isupper() and error.endswith(".")
    assert rows(db) == []


def test_unsubscribe_without_an_endpoint_is_a_400(client: FlaskClient, auth: AuthActions) -> None:
    auth.go_online()
    answer = client.post("/push/unsubscribe", json={})
    assert answer.status_code == 400
    assert "which subscription" in answer.get_json()["error"]


def test_a_body_too_large_is_a_json_413(client: FlaskClient, auth: AuthActions) -> None:
    auth.go_online()
    answer = client.post(
        "/push/subscribe", data=b"{" + b" " * 20_000 + b"}", content_type="application/json"
    )
    assert answer.status_code == 413
    assert "too long" in answer.get_json()["error"]


def test_http_endpoints_only_with_the_explicit_allowance(
    config: Config, db: sqlite_utils.Database
) -> None:
    from portal import create_app

    app = create_app(
        config, {"TESTING": True, "WTF_CSRF_ENABLED": False, ALLOW_HTTP_ENDPOINTS: True}
    )
    client = app.test_client()
    AuthActions(client, db).go_online()
    answer = client.post("/push/subscribe", json=subscription_json("http://127.0.0.1:9/push"))
    assert answer.status_code == 201
    assert [row["endpoint"] for row in rows(db)] == ["http://127.0.0.1:9/push"]


# --- CSRF: the token from the store page, in the X-CSRFToken header -----------------------------


@pytest.fixture
def phone_on_wifi(app: Flask, db: sqlite_utils.Database) -> FlaskClient:
    """A CSRF-checking portal and a phone the WiFi session identifies (no sign-in cookie)."""
    member = members.create_member(db, display_name="Ana", password="x" * 12, email="a@example.com")
    mac = DemoLookup().mac_for(TEST_CLIENT_IP)
    assert mac is not None
    sessions.authorize_client(
        db, mac=mac, ip=TEST_CLIENT_IP, member_id=member.id, hours=1, idle_minutes=30
    )
    return app.test_client()


def store_page_token(client: FlaskClient) -> str:
    page = client.get("/store").get_data(as_text=True)
    assert 'id="push-panel"' in page and "push.js" in page
    assert 'data-label-insecure="Notifications when this page is closed need' in page  # for push.js
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found, "the store page carries no CSRF token for push.js"
    return found.group(1)


def test_subscribe_with_the_pages_token_in_the_header(
    phone_on_wifi: FlaskClient, db: sqlite_utils.Database
) -> None:
    token = store_page_token(phone_on_wifi)
    answer = phone_on_wifi.post(
        "/push/subscribe", json=subscription_json(), headers={"X-CSRFToken": token}
    )
    assert answer.status_code == 201
    assert len(rows(db)) == 1


@pytest.mark.parametrize("headers", [{}, {"X-CSRFToken": "forged"}])
@pytest.mark.parametrize("path", ["/push/subscribe", "/push/unsubscribe"])
def test_without_the_token_nothing_changes(
    phone_on_wifi: FlaskClient, db: sqlite_utils.Database, headers: dict[str, str], path: str
) -> None:
    store_page_token(phone_on_wifi)  # the session has a token; the request does not carry it
    answer = phone_on_wifi.post(path, json=subscription_json(), headers=headers)
    assert answer.status_code == 400
    assert answer.get_json() == {"error": "This page has expired. Reload it and try again."}
    assert rows(db) == []


# --- The table --------------------------------------------------------------------------------


def test_a_member_keeps_at_most_the_newest_subscriptions(db: sqlite_utils.Database) -> None:
    ana = members.create_member(db, display_name="Ana", password="x" * 12, email="a@example.com")
    endpoints = [
        f"{FCM_ENDPOINT}{n}" for n in range(subscriptions.MAX_SUBSCRIPTIONS_PER_MEMBER + 2)
    ]
    for endpoint in endpoints:
        subscriptions.save_subscription(
            db,
            ana.id,
            parse_subscription({"endpoint": endpoint, "keys": RFC_KEYS}),
            user_agent="x" * 1000,
            now=clock.utcnow(),
        )
    kept = subscriptions.member_subscriptions(db, ana.id)
    assert [s.subscription.endpoint for s in kept] == endpoints[2:]
    assert {len(s.user_agent) for s in kept} == {subscriptions.USER_AGENT_LENGTH}


def test_a_browser_moves_to_whoever_subscribes_on_it_now(db: sqlite_utils.Database) -> None:
    ana = members.create_member(db, display_name="Ana", password="x" * 12, email="a@example.com")
    bea = members.create_member(db, display_name="Bea", password="x" * 12, email="b@example.com")
    subscription = parse_subscription({"endpoint": FCM_ENDPOINT, "keys": RFC_KEYS})
    first = subscriptions.save_subscription(
        db, ana.id, subscription, user_agent="", now=clock.utcnow()
    )
    db.conn.execute("UPDATE push_subscriptions SET failures = 3")
    second = subscriptions.save_subscription(
        db, bea.id, subscription, user_agent="", now=clock.utcnow()
    )
    assert first == second
    assert subscriptions.member_subscriptions(db, ana.id) == []
    [moved] = subscriptions.member_subscriptions(db, bea.id)
    assert moved.failures == 0
