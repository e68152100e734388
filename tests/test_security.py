"""Bad input and attacks get a clear 4xx page with a human sentence, never a 500."""

from __future__ import annotations

import re

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, AuthActions

PAGES = ["/signin", "/signup", "/terms", "/venue", "/nope"]


def csrf_token(page: bytes) -> str:
    match = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "every form carries a CSRF token"
    return match.group(1).decode()


@pytest.mark.parametrize("url", PAGES)
def test_security_headers(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_script(client: FlaskClient) -> None:
    for url in PAGES:
        assert b"<script" not in client.get(url).data


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/signin", {"identifier": "ana@example.com", "password": "x"}),
        ("/signup", {"identifier": "a@example.com", "display_name": "A", "password": PASSWORD}),
    ],
)
def test_forged_csrf_is_a_400_page(app: Flask, url: str, data: dict[str, str]) -> None:
    client = app.test_client()
    for forged in ({}, {"csrf_token": "forged"}):
        response = client.post(url, data={**data, **forged})
        assert response.status_code == 400
        assert b"This form has expired" in response.data
        assert b"Go back, reload the page" in response.data


def test_valid_csrf_token_is_accepted(app: Flask, db: sqlite_utils.Database) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/signup").data)
    response = client.post(
        "/signup",
        data={
            "identifier": "a@example.com",
            "display_name": "A",
            "password": PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 302


def test_sign_out_needs_csrf(app: Flask) -> None:
    """A cross-site form must not be able to knock a phone off the WiFi."""
    response = app.test_client().post("/signout")
    assert response.status_code == 400


def test_wrong_password_many_times_is_rate_limited(client: FlaskClient, auth: AuthActions) -> None:
    auth.create()
    statuses = [auth.login(password=f"wrong {n}").status_code for n in range(12)]
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]
    response = auth.login()
    assert response.status_code == 429
    assert b"Too many attempts" in response.data
    assert b"Wait a minute, then try again." in response.data


def test_account_is_limited_across_ips(client: FlaskClient, auth: AuthActions) -> None:
    """Guessing one account's password from many addresses is limited too."""
    auth.create()
    statuses = [
        client.post(
            "/signin",
            data={"identifier": "ana@example.com", "password": f"guess {n}"},
            environ_base={"REMOTE_ADDR": f"10.9.0.{n + 1}"},
        ).status_code
        for n in range(11)
    ]
    assert statuses[-1] == 429
    assert statuses[:10] == [200] * 10


def test_successful_sign_ins_do_not_lock_the_account(
    client: FlaskClient, auth: AuthActions
) -> None:
    auth.create()
    for n in range(6):
        assert auth.login().status_code == 302, n
        client.post("/signout")


def test_sign_up_is_rate_limited(client: FlaskClient) -> None:
    statuses = [
        client.post(
            "/signup",
            data={"identifier": f"user{n}@example.com", "display_name": "U", "password": "short"},
        ).status_code
        for n in range(6)
    ]
    assert statuses == [200] * 5 + [429]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"identifier": "", "display_name": "", "password": ""},
            b"Enter your email or loyalty card number.",
        ),
        ({"identifier": "", "display_name": "", "password": ""}, b"Enter a name."),
        ({"identifier": "", "display_name": "", "password": ""}, b"Choose a password."),
        (
            {"identifier": "not-an-email", "display_name": "A", "password": PASSWORD},
            b"Enter a valid email",
        ),
        (
            {"identifier": "123456789012", "display_name": "A", "password": PASSWORD},
            b"not valid. It has 12 digits",
        ),
        (
            {"identifier": "a@example.com", "display_name": "A", "password": "short"},
            b"between 8 and 256",
        ),
        (
            {"identifier": "a@example.com", "display_name": "A" * 61, "password": PASSWORD},
            b"under 60 characters",
        ),
        (
            {"identifier": "a" * 300 + "@x.com", "display_name": "A", "password": PASSWORD},
            b"too long",
        ),
        (
            {"identifier": "a@example.com", "display_name": "A", "password": "p" * 257},
            b"between 8 and 256",
        ),
    ],
)
def test_sign_up_bad_input(
    client: FlaskClient, db: sqlite_utils.Database, data: dict[str, str], message: bytes
) -> None:
    response = client.post("/signup", data=data)
    assert response.status_code == 200
    assert message in response.data
    assert db.conn.execute("SELECT COUNT(*) FROM members").fetchone()[0] == 0


def test_empty_sign_in(client: FlaskClient) -> None:
    response = client.post("/signin", data={})
    assert b"Enter your email or loyalty number." in response.data
    assert b"Enter your password." in response.data


def test_oversized_request_is_413_page(client: FlaskClient) -> None:
    response = client.post("/signup", data={"display_name": "x" * 40_000})
    assert response.status_code == 413
    assert b"too long" in response.data


@pytest.mark.parametrize(
    "bad",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/path",
        "/relative",
        "http://user:pass@evil.example/",
        "ftp://files.example/",
        "http://:99999/",
    ],
)
def test_bad_continue_is_ignored(client: FlaskClient, auth: AuthActions, bad: str) -> None:
    auth.go_online()
    response = client.get("/online", query_string={"continue": bad})
    assert response.status_code == 200
    assert b"Continue to" not in response.data
    assert bad.encode() not in response.data


def test_good_continue_is_a_link_never_a_redirect(client: FlaskClient, auth: AuthActions) -> None:
    auth.create()
    page = client.get("/signin", query_string={"continue": "http://news.example/today"})
    assert b'value="http://news.example/today"' in page.data
    response = client.post(
        "/signin?continue=http%3A%2F%2Fnews.example%2Ftoday",
        data={"identifier": "ana@example.com", "password": PASSWORD},
    )
    assert response.headers["Location"].startswith("/consents?continue=http")
    response = client.post(
        "/consents?continue=http%3A%2F%2Fnews.example%2Ftoday", data={"wifi_terms": "y"}
    )
    assert response.headers["Location"] == "/online?continue=http://news.example/today"
    online = client.get(response.headers["Location"])
    assert online.status_code == 200
    assert b'href="http://news.example/today"' in online.data
    assert b"Continue to news.example" in online.data


def test_output_is_escaped(client: FlaskClient, auth: AuthActions) -> None:
    client.post(
        "/signup",
        data={
            "identifier": "x@example.com",
            "display_name": "<script>alert(1)</script>",
            "password": PASSWORD,
        },
    )
    client.post("/consents", data={"wifi_terms": "y"})
    page = client.get("/online").data
    assert b"<script>alert(1)</script>" not in page
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("GET", "/signout", None),
        ("GET", "/connect", None),
        ("POST", "/terms", None),
        ("GET", "/signin?continue=%00%ff", None),
        ("POST", "/signin", "identifier=%00%ff%fe&password=%00"),
        ("POST", "/signup", {"identifier": "@", "display_name": "\u202e", "password": "x" * 8}),
        ("GET", "/api/captive?x=" + "a" * 3000, None),
        ("GET", "/static/../../etc/passwd", None),
    ],
)
def test_no_500_anywhere(
    client: FlaskClient, method: str, url: str, data: dict[str, str] | str | None
) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if isinstance(data, str) else {}
    response = client.open(url, method=method, data=data, headers=headers)
    assert response.status_code < 500
