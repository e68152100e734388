"""Who reaches the console: staff sign-in, the role gate, the 403 page and safe redirects."""

from __future__ import annotations

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from instore import members
from tests.conftest import PASSWORD, AuthActions, ConsoleActions


def test_signed_out_is_sent_to_the_console_sign_in_with_the_page(client: FlaskClient) -> None:
    response = client.get("/manage/staff?x=1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/manage/signin?next=")
    assert response.headers["Location"].endswith("next=/manage/staff?x%3D1")


def test_sign_in_returns_to_the_page_asked_for(
    client: FlaskClient, console: ConsoleActions
) -> None:
    member = console.create("manager")
    response = client.post(
        "/manage/signin?next=/manage/audit",
        data={"identifier": member.email, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/manage/audit"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/manage", "/manage\\@evil", "/store"]
)
def test_sign_in_never_redirects_off_the_console(
    client: FlaskClient, console: ConsoleActions, target: str
) -> None:
    member = console.create("staff")
    response = client.post(
        "/manage/signin", data={"identifier": member.email, "password": PASSWORD, "next": target}
    )
    assert response.headers["Location"] == "/manage/"


def test_a_shopper_is_refused_with_a_403_page_not_a_loop(
    client: FlaskClient, auth: AuthActions
) -> None:
    auth.go_online()  # signed in on the WiFi as a shopper
    for path in ("/manage/", "/manage/staff", "/manage/audit"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "shopper" in response.get_data(as_text=True)


def test_a_shopper_cannot_sign_in_to_the_console(client: FlaskClient, auth: AuthActions) -> None:
    auth.create()
    response = client.post(
        "/manage/signin", data={"identifier": "ana@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert "staff account" in response.get_data(as_text=True)
    assert client.get("/manage/").status_code == 302  # still signed out of the console


def test_wrong_password_and_unknown_account_read_the_same(
    client: FlaskClient, console: ConsoleActions
) -> None:
    console.create("manager")
    wrong = client.post(
        "/manage/signin", data={"identifier": "manager@example.com", "password": "nope-nope"}
    )
    unknown = client.post(
        "/manage/signin", data={"identifier": "who@example.com", "password": "nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 200
    message = "do not match"
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)


def test_staff_reach_the_console_but_not_manager_pages(
    client: FlaskClient, console: ConsoleActions
) -> None:
    console.signin("staff")
    home = client.get("/manage/")
    assert home.status_code == 200
    assert "/manage/staff" not in home.get_data(
        as_text=True
    )  # the menu hides what they cannot open
    assert client.get("/manage/staff").status_code == 403


def test_demoting_takes_effect_on_the_next_request(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    member = console.signin("manager")
    assert client.get("/manage/staff").status_code == 200
    db.conn.execute("UPDATE members SET role = 'shopper' WHERE id = ?", (member.id,))
    assert client.get("/manage/staff").status_code == 403


def test_console_sign_in_is_rate_limited(client: FlaskClient) -> None:
    statuses = [
        client.post(
            "/manage/signin", data={"identifier": "x@example.com", "password": "wrong-password"}
        ).status_code
        for _ in range(12)
    ]
    assert 429 in statuses


def test_sign_out_needs_csrf(app: Flask, db: sqlite_utils.Database) -> None:
    members.create_member(
        db, display_name="M", password=PASSWORD, email="m@example.com", role="manager"
    )
    client = app.test_client()
    page = client.get("/manage/signin").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post(
        "/manage/signin",
        data={"identifier": "m@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert client.get("/manage/").status_code == 200
    assert client.post("/manage/signout").status_code == 400  # no token: refused
    assert client.get("/manage/").status_code == 200


def test_every_console_page_answers_with_or_without_a_trailing_slash(
    client: FlaskClient, console: ConsoleActions
) -> None:
    """People type addresses both ways; neither may be a "page not found"."""
    console.signin("admin")
    for page in ("live", "plan", "offers", "analytics", "box", "why"):
        for path in (f"/manage/{page}", f"/manage/{page}/"):
            assert client.get(path).status_code == 200, path
