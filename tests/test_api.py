"""RFC 8908 Captive Portal API, field by field."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from tests.conftest import AuthActions

PORTAL = "http://127.0.0.1:8080"


def test_captive_before_sign_in(client: FlaskClient) -> None:
    response = client.get("/api/captive")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/captive+json"
    assert response.headers["Cache-Control"] == "private"
    body = json.loads(response.data)
    assert body == {
        "captive": True,
        "user-portal-url": f"{PORTAL}/signin",
        "venue-info-url": f"{PORTAL}/venue",
    }


def test_captive_after_sign_in(client: FlaskClient, auth: AuthActions) -> None:
    auth.go_online()
    response = client.get("/api/captive")
    body = json.loads(response.data)
    assert set(body) == {
        "captive",
        "user-portal-url",
        "venue-info-url",
        "seconds-remaining",
        "can-extend-session",
    }
    assert body["captive"] is False
    assert body["user-portal-url"] == f"{PORTAL}/signin"
    assert body["venue-info-url"] == f"{PORTAL}/venue"
    # Default session is 8 hours; allow for the seconds the test took.
    assert 8 * 3600 - 60 <= body["seconds-remaining"] <= 8 * 3600
    assert isinstance(body["seconds-remaining"], int)
    assert body["can-extend-session"] is True
    assert response.headers["Cache-Control"] == "private"


def test_captive_again_after_sign_out(client: FlaskClient, auth: AuthActions) -> None:
    auth.go_online()
    auth.logout()
    assert json.loads(client.get("/api/captive").data)["captive"] is True


def test_urls_follow_configured_public_url(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from instore.config import load_config
    from portal import create_app

    config = load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "x.db"),
            "INSTORE_PORTAL_PUBLIC_URL": "https://portal.store.example",
            "INSTORE_PORTAL_SECRET_KEY": "k",
        }
    )
    client = create_app(config).test_client()
    body = json.loads(client.get("/api/captive", headers={"Host": "portal.store.example"}).data)
    assert body["user-portal-url"] == "https://portal.store.example/signin"


def test_venue_page(client: FlaskClient) -> None:
    response = client.get("/venue")
    assert response.status_code == 200
    assert b"Demo Store" in response.data
