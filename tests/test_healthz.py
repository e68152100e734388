"""``GET /healthz``: 200 when the database answers with this release's schema, 503 with what is
wrong otherwise; no sign-in, nothing personal."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlite_utils
from flask.testing import FlaskClient

from instore.config import Config
from instore.health import latest_versions
from portal.database import close_thread_dbs
from tests.conftest import AuthActions
from tests.live_portal import running_portal

HEALTH_KEYS = {"ok", "db", "schema"}


def test_healthy_portal_answers_200(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "db": "ok", "schema": "current"}
    assert response.headers["Cache-Control"] == "no-store"


def test_no_sign_in_and_nothing_personal(client: FlaskClient, auth: AuthActions) -> None:
    auth.go_online()  # a member with a live session exists
    body = client.get("/healthz").get_data(as_text=True)
    assert set(json.loads(body)) == HEALTH_KEYS
    assert "ana" not in body.lower() and "@" not in body


def test_a_schema_behind_this_release_is_503(
    client: FlaskClient, db: sqlite_utils.Database
) -> None:
    latest = latest_versions()["instore"]
    db.conn.execute(
        "DELETE FROM schema_migrations WHERE package = 'instore' AND version = ?", (latest,)
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ok"] is False and body["db"] == "ok" and body["schema"] == "behind"
    assert f"instore {latest - 1} of {latest}" in body["problem"]
    assert "instore db upgrade" in body["problem"]


def test_a_schema_newer_than_this_release_is_503(
    client: FlaskClient, db: sqlite_utils.Database
) -> None:
    db.conn.execute(
        "INSERT INTO schema_migrations (package, version, description, applied_at)"
        " VALUES ('offers', 999, 'from a newer release', '2030-01-01T00:00:00Z')"
    )
    body = client.get("/healthz").get_json()
    assert body["schema"] == "ahead" and "newer than this release (offers 999" in body["problem"]


def test_an_unreadable_database_is_503(client: FlaskClient, config: Config) -> None:
    path = config.database_path
    assert client.get("/healthz").status_code == 200
    close_thread_dbs()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not an SQLite database, it only has its name" * 100)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ok"] is False and body["db"].startswith("error: ")
    assert "instore doctor" in body["problem"]


def _get(url: str) -> tuple[int, dict[str, object]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_running_portal_answers_healthz(tmp_path: Path) -> None:
    """Under gunicorn and the captive middleware, as the upgrade script and monitors ask it."""
    with running_portal(tmp_path) as portal:
        assert _get(f"{portal.url}/healthz") == (
            200,
            {"ok": True, "db": "ok", "schema": "current"},
        )
        db = sqlite_utils.Database(portal.database_path)
        db.conn.execute(
            "INSERT INTO schema_migrations (package, version, description, applied_at)"
            " VALUES ('instore', 999, 'newer', '2030-01-01T00:00:00Z')"
        )
        db.conn.commit()
        status, body = _get(f"{portal.url}/healthz")
        assert status == 503 and body["schema"] == "ahead"
        db.conn.execute("DELETE FROM schema_migrations WHERE version = 999")
        db.conn.commit()
        assert _get(f"{portal.url}/healthz")[0] == 200
        db.conn.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_only_get(client: FlaskClient, method: str) -> None:
    assert client.open("/healthz", method=method).status_code == 405


def test_the_box_itself_reaches_healthz_by_any_host_name(client: FlaskClient) -> None:
    """The upgrade asks by the bind address, which the captive middleware would otherwise send
    to the sign-in page; a phone (never loopback) asking another host is still sent there."""
    box = client.get(
        "/healthz", base_url="http://box.example", environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert box.status_code == 200 and box.get_json()["ok"] is True
    phone = client.get(
        "/healthz", base_url="http://box.example", environ_base={"REMOTE_ADDR": "10.0.0.7"}
    )
    assert phone.status_code == 302 and "/signin" in phone.location
