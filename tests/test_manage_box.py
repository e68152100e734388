"""The admin's box page: status, settings in force with secrets hidden, and new WiFi terms."""

from __future__ import annotations

import sqlite_utils
from flask.testing import FlaskClient

from instore import audit, members, terms
from tests.conftest import PASSWORD, AuthActions, ConsoleActions


def publish(client: FlaskClient, version: str, body: str) -> tuple[int, str]:
    response = client.post("/manage/box/terms", data={"version": version, "body": body})
    return response.status_code, response.get_data(as_text=True)


def test_box_page_is_for_admins_only(client: FlaskClient, console: ConsoleActions) -> None:
    console.signin("manager")
    assert client.get("/manage/box/").status_code == 403
    assert "/manage/box" not in client.get("/manage/").get_data(as_text=True)
    client.post("/manage/signout")
    console.signin("admin")
    page = client.get("/manage/box/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "test-secret-key" not in text and "(hidden)" in text  # the cookie key stays secret
    assert "Schema" in text and "Phones online now" in text


def test_published_terms_are_shown_and_asked_again_at_sign_in(
    client: FlaskClient, console: ConsoleActions, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    shopper = auth.go_online()
    assert members.has_accepted_terms(db, shopper.id, "2026-11")
    auth.logout()
    admin = console.signin("admin")
    status, _ = publish(client, "2026-12", "Be kind.\n\nNo <script>alert(1)</script> please.")
    assert status == 302
    assert terms.current_version(db, "2026-11") == "2026-12"
    entry = audit.entries(db)[0]
    assert (entry.actor_id, entry.action) == (admin.id, "terms.publish")
    assert entry.changes()[1] == ("version", "2026-11", "2026-12")
    client.post("/manage/signout")
    shown = client.get("/terms").get_data(as_text=True)
    assert "Version 2026-12" in shown and "Be kind." in shown
    assert "<script>alert(1)" not in shown and "&lt;script&gt;" in shown
    # The shopper accepted 2026-11: signing in now asks for the new terms first.
    response = client.post("/signin", data={"identifier": "ana@example.com", "password": PASSWORD})
    assert response.headers["Location"].startswith("/consents")
    client.post("/consents", data={"wifi_terms": "y"})
    assert members.has_accepted_terms(db, shopper.id, "2026-12")


def test_terms_bad_input_returns_the_form(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    console.signin("admin")
    assert publish(client, "", "text")[0] == 400
    assert publish(client, "v2", "")[0] == 400
    assert publish(client, "x" * 41, "text")[0] == 400
    status, page = publish(client, "2026-11", "same version as the built-in terms")
    assert status == 400 and "was used before" in page
    publish(client, "v2", "first")
    status, page = publish(client, "v2", "again")
    assert status == 400 and "was used before" in page
    assert terms.current_terms(db, "2026-11").body == "first"
