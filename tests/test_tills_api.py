"""The till API over HTTP (every status and its JSON shape, CSRF exemption, the per-key rate
limit) and the ``instore offers till`` commands.

The app here has CSRF protection on (the ``app`` fixture), so a passing POST proves the blueprint
is exempt rather than CSRF being off.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from instore.cli import main
from instore.clock import utcnow
from instore.config import Config, ConfigError, load_config
from instore.db import open_database
from offers.redemption import redeemed_totals
from offers.tills import authenticate_till, create_till, hash_key, revoke_till
from portal import create_app
from tests.test_redemption import issue_code, make_member, make_offer

ERROR_KEYS = {"error", "message"}


def issue(db: sqlite_utils.Database, name: str = "Ana", **kwargs: Any) -> tuple[str, Any]:
    """A code sent to a new member for a new offer, valid from the real now (the API's clock)."""
    member = make_member(db, name)
    offer = make_offer(db, **kwargs.pop("offer", {}))
    return issue_code(db, member, offer, sent=kwargs.pop("sent", utcnow()), **kwargs), offer


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def key(db: sqlite_utils.Database) -> str:
    return create_till(db, "Front 1")[1]


def post(client: FlaskClient, path: str, key: str | None, **kwargs: Any) -> Any:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    headers.update(kwargs.pop("headers", {}))
    return client.post(path, headers=headers, **kwargs)


def assert_error(response: Any, status: int, error: str) -> dict[str, Any]:
    """A JSON error with exactly the documented keys and a sentence, never a page or traceback."""
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert set(body) == ERROR_KEYS
    assert body["error"] == error
    assert body["message"].endswith(".") and len(body["message"]) > 15
    assert b"Traceback" not in response.data
    return body


def test_redeem_over_http(client: FlaskClient, db: sqlite_utils.Database, key: str) -> None:
    code, offer = issue(db)
    response = post(client, "/api/redemptions", key, json={"code": code.lower()})
    assert response.status_code == 201
    body = response.get_json()
    assert body == {
        "redeemed": True,
        "code": code,
        "offer": {"id": offer.id, "title": "25% off trail shoes"},
        "discount_cents": 2450,
        "member": "Ana",
        "redeemed_at": body["redeemed_at"],
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert redeemed_totals(db, offer.id) == (1, 2450)


@pytest.mark.parametrize(
    ("headers", "error", "challenge"),
    [
        ({}, "missing_key", 'Bearer realm="instore-till"'),
        ({"Authorization": "Basic dGlsbDp4"}, "missing_key", 'Bearer realm="instore-till"'),
        ({"Authorization": "Bearer "}, "missing_key", 'Bearer realm="instore-till"'),
        (
            {"Authorization": "Bearer till_not-a-real-key"},
            "invalid_key",
            'Bearer realm="instore-till", error="invalid_token"',
        ),
    ],
)
def test_without_a_good_key_is_401(
    client: FlaskClient,
    db: sqlite_utils.Database,
    key: str,
    headers: dict[str, str],
    error: str,
    challenge: str,
) -> None:
    code, offer = issue(db)
    for path, body in (("/api/redemptions", {"code": code}), ("/api/purchases", {})):
        response = post(client, path, None, json=body, headers=headers)
        assert_error(response, 401, error)
        assert response.headers["WWW-Authenticate"] == challenge
    assert redeemed_totals(db, offer.id) == (0, 0)


def test_revoked_key_is_401(client: FlaskClient, db: sqlite_utils.Database, key: str) -> None:
    code, _ = issue(db)
    revoke_till(db, "Front 1")
    response = post(client, "/api/redemptions", key, json={"code": code})
    assert_error(response, 401, "invalid_key")


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"data": "code=S001-0000-0000"}, 415, "not_json"),
        ({"data": '{"code": "S001-', "content_type": "application/json"}, 400, "bad_json"),
        ({"data": b'{"code": "\xff"}', "content_type": "application/json"}, 400, "bad_json"),
        ({"json": ["S001-0000-0000"]}, 400, "bad_json"),
        ({"json": {}}, 400, "missing_field"),
        ({"json": {"code": "   "}}, 400, "missing_field"),
        ({"json": {"code": 1234}}, 400, "wrong_type"),
        ({"json": {"code": "S" * 65}}, 400, "too_long"),
        ({"json": {"code": "hello"}}, 400, "malformed_code"),
        ({"json": {"code": "S001-0000-0000"}}, 404, "unknown_code"),
        ({"json": {"code": "S002-0000-0000"}}, 422, "other_store"),
        (
            {"data": json.dumps({"code": "x" * 20_000}), "content_type": "application/json"},
            413,
            "too_large",
        ),
    ],
)
def test_bad_redemption_requests(
    client: FlaskClient, key: str, kwargs: dict[str, Any], status: int, error: str
) -> None:
    assert_error(post(client, "/api/redemptions", key, **kwargs), status, error)


def test_reused_code_is_409(client: FlaskClient, db: sqlite_utils.Database, key: str) -> None:
    code, _ = issue(db)
    create_till(db, "Back 2")
    assert post(client, "/api/redemptions", key, json={"code": code}).status_code == 201
    body = assert_error(
        post(client, "/api/redemptions", key, json={"code": code}), 409, "already_redeemed"
    )
    assert "at till 'Front 1'" in body["message"]


def test_expired_code_is_410(client: FlaskClient, db: sqlite_utils.Database, key: str) -> None:
    code, _ = issue(db, sent=utcnow() - timedelta(hours=73))
    body = assert_error(post(client, "/api/redemptions", key, json={"code": code}), 410, "expired")
    assert "expired on" in body["message"]


def test_spent_budget_is_409(client: FlaskClient, db: sqlite_utils.Database, key: str) -> None:
    first, offer = issue(db, offer={"max_redeemed": 1})
    second = issue_code(db, make_member(db, "Bea"), offer, sent=utcnow())
    assert post(client, "/api/redemptions", key, json={"code": first}).status_code == 201
    assert_error(post(client, "/api/redemptions", key, json={"code": second}), 409, "budget_spent")


def test_record_purchase_over_http(
    client: FlaskClient, db: sqlite_utils.Database, key: str
) -> None:
    ana = make_member(db)
    response = post(
        client,
        "/api/purchases",
        key,
        json={
            "loyalty_number": ana.loyalty_number,
            "product": "TR-200 trail shoe",
            "amount_cents": 7999,
        },
    )
    assert response.status_code == 201
    assert response.get_json() == {
        "recorded": True,
        "member": "Ana",
        "product": "TR-200 trail shoe",
        "amount_cents": 7999,
        "purchased_at": response.get_json()["purchased_at"],
    }
    assert db.conn.execute("SELECT COUNT(*) FROM purchases").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"loyalty_number": None}, 400, "missing_field"),
        ({"loyalty_number": 400000000006}, 400, "wrong_type"),
        ({"loyalty_number": "4" * 33}, 400, "too_long"),
        ({"product": "p" * 121}, 400, "too_long"),
        ({"amount_cents": None}, 400, "missing_field"),
        ({"amount_cents": "12.50"}, 400, "wrong_type"),
        ({"amount_cents": 12.5}, 400, "wrong_type"),
        ({"amount_cents": True}, 400, "wrong_type"),
        ({"amount_cents": -5}, 400, "bad_amount"),
        ({"loyalty_number": "4000 0000 0006"}, 404, "unknown_member"),
    ],
)
def test_bad_purchase_requests(
    client: FlaskClient,
    db: sqlite_utils.Database,
    key: str,
    changes: dict[str, Any],
    status: int,
    error: str,
) -> None:
    ana = make_member(db)
    body = {"loyalty_number": ana.loyalty_number, "product": "shoe", "amount_cents": 100}
    body.update(changes)
    body = {name: value for name, value in body.items() if value is not None}
    assert_error(post(client, "/api/purchases", key, json=body), status, error)
    assert db.conn.execute("SELECT COUNT(*) FROM purchases").fetchone()[0] == 0


def test_unknown_loyalty_number_says_nothing_more(
    client: FlaskClient, db: sqlite_utils.Database, key: str
) -> None:
    make_member(db)
    response = post(
        client,
        "/api/purchases",
        key,
        json={"loyalty_number": "4000 0000 0006", "product": "shoe", "amount_cents": 1},
    )
    assert response.get_json() == {
        "error": "unknown_member",
        "message": "No member has that loyalty number; check the card and scan it again.",
    }


@pytest.fixture
def limited_app(tmp_path: Path) -> Flask:
    config = load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
            "INSTORE_PORTAL_SECRET_KEY": "test-secret-key",
            "INSTORE_OFFERS_TILL_LIMIT": "3 per minute",
        }
    )
    return create_app(config, {"TESTING": True})


def test_rate_limit_is_per_till_key_across_both_endpoints(limited_app: Flask) -> None:
    db = open_database(limited_app.config["INSTORE"].database_path)
    front, back = create_till(db, "Front 1")[1], create_till(db, "Back 2")[1]
    client = limited_app.test_client()
    statuses = [
        post(client, "/api/redemptions", front, json={"code": "S001-0000-0000"}).status_code,
        post(client, "/api/purchases", front, json={}).status_code,
        post(client, "/api/redemptions", front, json={"code": "S001-0000-0000"}).status_code,
    ]
    assert statuses == [404, 400, 404]
    limited = post(client, "/api/purchases", front, json={})
    body = assert_error(limited, 429, "rate_limited")
    assert "3 per 1 minute" in body["message"]
    assert "Retry-After" in limited.headers
    # Another till, even from the same address, has its own allowance.
    assert (
        post(client, "/api/redemptions", back, json={"code": "S001-0000-0000"}).status_code == 404
    )
    db.conn.close()


def test_bad_till_limit_in_config_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
            "INSTORE_PORTAL_SECRET_KEY": "x",
            "INSTORE_OFFERS_TILL_LIMIT": "lots",
        }
    )
    with pytest.raises(ConfigError, match=r"offers\.till_limit: 'lots' is not a rate limit"):
        create_app(config, {"TESTING": True})


def test_other_posts_still_need_csrf(client: FlaskClient, key: str) -> None:
    """Exempting the till API must not exempt the shoppers' forms."""
    response = client.post("/signout", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 400


# --- instore offers till … ---------------------------------------------------------------------


@pytest.fixture
def env(config: Config) -> dict[str, str]:
    return {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}


def test_till_add_prints_the_key_once(env: dict[str, str], db: sqlite_utils.Database) -> None:
    result = CliRunner().invoke(main, ["offers", "till", "add", "Front 1"], env=env)
    assert result.exit_code == 0, result.output
    assert "Till 'Front 1' added" in result.output
    assert "will not be shown again" in result.output
    printed = next(line.strip() for line in result.output.splitlines() if "till_" in line)
    till = authenticate_till(db, printed)
    assert till is not None and till.name == "Front 1"
    stored = db.conn.execute("SELECT key_hash FROM tills").fetchone()[0]
    assert stored == hash_key(printed) != printed
    listing = CliRunner().invoke(main, ["offers", "till", "list"], env=env)
    assert printed not in listing.output, "the key is never shown again"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", ""], "a till needs a name"),
        (["add", "Front 1"], "already a till named 'Front 1'"),
        (["revoke", "Nope"], "no till named 'Nope'"),
    ],
)
def test_till_mistakes_exit_2(
    env: dict[str, str], db: sqlite_utils.Database, args: list[str], message: str
) -> None:
    create_till(db, "Front 1")
    result = CliRunner().invoke(main, ["offers", "till", *args], env=env)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_till_list_and_revoke(env: dict[str, str], db: sqlite_utils.Database) -> None:
    runner = CliRunner()
    empty = runner.invoke(main, ["offers", "till", "list"], env=env)
    assert empty.exit_code == 0 and "no tills yet" in empty.output
    key = create_till(db, "Front 1")[1]
    create_till(db, "Back 2")
    listing = runner.invoke(main, ["offers", "till", "list"], env=env).output.splitlines()
    assert listing[0].split() == ["name", "added", "status"]
    assert listing[1].startswith("Front 1") and listing[1].endswith("active")
    assert listing[2].startswith("Back 2") and listing[2].endswith("active")
    revoked = runner.invoke(main, ["offers", "till", "revoke", "Front 1"], env=env)
    assert revoked.exit_code == 0 and "revoked: its key no longer works" in revoked.output
    assert authenticate_till(db, key) is None
    again = runner.invoke(main, ["offers", "till", "revoke", "Front 1"], env=env)
    assert again.exit_code == 0 and "was already revoked on" in again.output
    listing = runner.invoke(main, ["offers", "till", "list"], env=env).output.splitlines()
    assert "revoked" in listing[1] and listing[2].endswith("active")
