"""The shopper's way online: sign up or sign in, consents, online page, account, sign out."""

from __future__ import annotations

import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from hardware.clients import DemoLookup
from instore import members
from tests.conftest import PASSWORD, TEST_CLIENT_IP, AuthActions

CLIENT_MAC = DemoLookup().mac_for(TEST_CLIENT_IP)


def live_sessions(db: sqlite_utils.Database) -> list[dict]:  # type: ignore[type-arg]
    return list(db.query("SELECT * FROM sessions WHERE revoked_at IS NULL"))


def test_sign_up_consent_online(client: FlaskClient, db: sqlite_utils.Database) -> None:
    response = client.post(
        "/signup",
        data={"identifier": "Ana@Example.com", "display_name": "Ana", "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/consents"
    assert live_sessions(db) == []  # not online before the WiFi terms are accepted

    page = client.get("/consents")
    assert b"WiFi terms" in page.data
    response = client.post("/consents", data={"wifi_terms": "y", "location": "y"})
    assert response.headers["Location"] == "/online"

    online = client.get("/online")
    assert b"You&#39;re online" in online.data or b"You're online" in online.data
    assert b"/store" in online.data

    member = members.find_by_identifier(db, "ana@example.com")
    assert member is not None
    consents = members.current_consents(db, member.id)
    assert {kind: c["granted"] for kind, c in consents.items()} == {
        "wifi_terms": True,
        "location": True,
        "marketing": False,
        "friend_visibility": False,
    }
    assert {c["terms_version"] for c in consents.values()} == {"2026-11"}
    [session] = live_sessions(db)
    assert (session["mac"], session["ip"], session["member_id"]) == (
        CLIENT_MAC,
        TEST_CLIENT_IP,
        member.id,
    )
    assert db.conn.execute("SELECT member_id FROM devices WHERE mac = ?", (CLIENT_MAC,)).fetchone()
    kinds = [row[0] for row in db.conn.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds == ["member.created", "member.consents", "session.started", "portal.login"]


def test_wifi_terms_are_required_others_are_not(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    auth.create()
    auth.login()
    response = client.post("/consents", data={"location": "y", "marketing": "y"})
    assert response.status_code == 200
    assert b"You need to accept the WiFi terms to go online" in response.data
    assert live_sessions(db) == []
    assert auth.consent().headers["Location"] == "/online"


def test_returning_member_goes_straight_online(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    auth.go_online()
    auth.logout()
    response = auth.login()
    assert response.headers["Location"] == "/online"
    assert len(live_sessions(db)) == 1


def test_new_terms_version_asks_again(
    app_no_csrf: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    auth.go_online()
    auth.logout()
    portal = dict(app_no_csrf.config["INSTORE"]["portal"])
    portal["terms_version"] = "2027-01"
    sections = dict(app_no_csrf.config["INSTORE"].sections, portal=portal)
    app_no_csrf.config["INSTORE"] = type(app_no_csrf.config["INSTORE"])(sections=sections)
    assert auth.login().headers["Location"] == "/consents"


def test_sign_in_with_loyalty_number(client: FlaskClient, auth: AuthActions) -> None:
    member = auth.create()
    auth.client.post("/signout")
    number = f"{member.loyalty_number[:4]} {member.loyalty_number[4:8]} {member.loyalty_number[8:]}"
    assert auth.login(identifier=number).headers["Location"] == "/consents"


def test_sign_up_with_loyalty_card(client: FlaskClient, db: sqlite_utils.Database) -> None:
    number = "400000000002"  # a valid Luhn number, as printed on a card
    response = client.post(
        "/signup", data={"identifier": number, "display_name": "Ben", "password": PASSWORD}
    )
    assert response.status_code == 302
    member = members.find_by_identifier(db, number)
    assert member is not None and member.email is None


def test_wrong_password_and_unknown_account_read_the_same(
    client: FlaskClient, auth: AuthActions
) -> None:
    auth.create()
    wrong = auth.login(password="not the password")
    unknown = auth.login(identifier="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 200
    message = b"do not match. Check them and try again."
    assert message in wrong.data and message in unknown.data
    assert wrong.data.replace(b"ana@example.com", b"X") == unknown.data.replace(
        b"nobody@example.com", b"X"
    )


def test_duplicate_sign_up_is_a_clear_message(client: FlaskClient, auth: AuthActions) -> None:
    auth.create()
    response = client.post(
        "/signup", data={"identifier": "ana@example.com", "display_name": "A", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert b"already has an account. Sign in instead." in response.data


def test_remember_me_sets_a_token_cookie_not_the_password(
    client: FlaskClient, auth: AuthActions
) -> None:
    member = auth.create()
    client.post("/signout")
    client.post(
        "/signin",
        data={"identifier": "ana@example.com", "password": PASSWORD, "remember": "y"},
    )
    cookie = client.get_cookie("remember_token")
    assert cookie is not None
    assert member.login_token in cookie.value
    assert PASSWORD not in cookie.value


def test_remembered_phone_connects_with_one_tap(client: FlaskClient, auth: AuthActions) -> None:
    auth.go_online()
    page = client.get("/signin")
    assert b"Welcome back, Ana." in page.data
    assert client.post("/connect").headers["Location"] == "/online"


def test_sign_out_revokes_the_session(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    auth.go_online()
    response = auth.logout()
    assert response.headers["Location"] == "/signin"
    assert live_sessions(db) == []
    assert client.get("/online").headers["Location"] == "/signin"
    assert client.get("/account").status_code == 302


def test_account_changes_only_what_changed(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    member = auth.go_online()
    before = db.conn.execute("SELECT COUNT(*) FROM consents").fetchone()[0]
    response = client.post("/account", data={"marketing": "y"})
    assert response.headers["Location"] == "/account"
    assert b"Your choices are saved." in client.get("/account").data
    assert db.conn.execute("SELECT COUNT(*) FROM consents").fetchone()[0] == before + 1
    assert members.current_consents(db, member.id)["marketing"]["granted"] is True
    # WiFi terms stay accepted while signed in.
    assert members.current_consents(db, member.id)["wifi_terms"]["granted"] is True


def test_unknown_mac_asks_to_reconnect(
    app_no_csrf: Flask, client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    class Blind:
        def mac_for(self, ip: str) -> None:
            return None

    app_no_csrf.extensions["instore_client_lookup"] = Blind()
    auth.create()
    auth.login()
    response = auth.consent()
    assert response.status_code == 409
    assert b"Turn WiFi off and on again" in response.data
    assert live_sessions(db) == []


def test_store_page_needs_sign_in(client: FlaskClient, auth: AuthActions) -> None:
    assert client.get("/store").status_code == 302
    auth.go_online()
    page = client.get("/store")
    assert page.status_code == 200
    assert b"Hello, Ana" in page.data


def test_home_routes_by_state(client: FlaskClient, auth: AuthActions) -> None:
    assert client.get("/").headers["Location"] == "/signin"
    auth.go_online()
    assert client.get("/").headers["Location"] == "/online"


def test_store_page_without_cookies_recognises_the_phone(
    app_no_csrf: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    """The captive sheet's cookies do not reach the phone's browser; the WiFi session does."""
    auth.go_online()
    browser = app_no_csrf.test_client()  # a fresh cookie jar, same phone (IP and MAC)
    page = browser.get("/store")
    assert page.status_code == 200
    assert b"Hello, Ana" in page.data
    assert b"Enjoy your visit, Ana." in browser.get("/online").data
    # Personal details still need a real sign-in.
    assert browser.get("/account").headers["Location"].startswith("/signin")
    auth.logout()
    assert browser.get("/store").headers["Location"] == "/signin"
