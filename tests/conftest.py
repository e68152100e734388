"""Shared fixtures: a fresh SQLite file per test, the portal app, a client and an auth helper."""

from __future__ import annotations

import faulthandler
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from instore import members
from instore.config import Config, load_config
from instore.db import open_database
from portal import create_app
from portal.database import close_thread_dbs

# The Flask test client talks from this address; the demo lookup gives it a stable MAC.
TEST_CLIENT_IP = "127.0.0.1"
PASSWORD = "correct horse battery"


# No test here needs more than a minute or two; one that hangs (a browser call without its own
# deadline) dumps every thread's stack and ends the run instead of blocking CI for hours.
TEST_WATCHDOG_SECONDS = 600


@pytest.fixture(autouse=True)
def hang_watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(TEST_WATCHDOG_SECONDS, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def close_portal_connections() -> Iterator[None]:
    """The portal keeps one connection per thread and database; each test has its own database,
    so without this the suite holds three file descriptors per test until it runs out."""
    yield
    close_thread_dbs()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id, with the smallest cost parameters: tests hash hundreds of passwords."""
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(members, "_hasher", hasher)
    monkeypatch.setattr(members, "_DUMMY_HASH", hasher.hash("dummy"))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Defaults with the database in this test's own directory."""
    return load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
            "INSTORE_PORTAL_SECRET_KEY": "test-secret-key",
        }
    )


@pytest.fixture
def db(config: Config) -> Iterator[sqlite_utils.Database]:
    database = open_database(config.database_path)
    yield database
    database.conn.close()


@pytest.fixture
def app(config: Config) -> Flask:
    return create_app(config, {"TESTING": True})


@pytest.fixture
def app_no_csrf(config: Config) -> Flask:
    """For tests about flows, not about CSRF itself."""
    return create_app(config, {"TESTING": True, "WTF_CSRF_ENABLED": False})


@pytest.fixture
def client(app_no_csrf: Flask) -> FlaskClient:
    return app_no_csrf.test_client()


@pytest.fixture
def runner(app_no_csrf: Flask) -> FlaskCliRunner:
    return app_no_csrf.test_cli_runner()


class AuthActions:
    """Sign up / sign in / consent / sign out through the real forms (flaskr's ``auth`` helper)."""

    def __init__(self, client: FlaskClient, db: sqlite_utils.Database) -> None:
        self.client = client
        self.db = db

    def create(self, email: str = "ana@example.com", name: str = "Ana") -> members.Member:
        return members.create_member(self.db, display_name=name, password=PASSWORD, email=email)

    def login(self, identifier: str = "ana@example.com", password: str = PASSWORD) -> Any:
        return self.client.post("/signin", data={"identifier": identifier, "password": password})

    def consent(self, **choices: bool) -> Any:
        data = {"wifi_terms": "y"}
        data.update({kind: "y" for kind, granted in choices.items() if granted})
        return self.client.post("/consents", data=data)

    def go_online(self, email: str = "ana@example.com") -> members.Member:
        """A member who has signed in and consented: this client is now authorized."""
        member = self.create(email=email)
        self.login(email)
        self.consent()
        return member

    def logout(self) -> Any:
        return self.client.post("/signout")


@pytest.fixture
def auth(client: FlaskClient, db: sqlite_utils.Database) -> AuthActions:
    return AuthActions(client, db)


class ConsoleActions:
    """Staff accounts signed in to the manager console through its real sign-in form."""

    def __init__(self, client: FlaskClient, db: sqlite_utils.Database) -> None:
        self.client = client
        self.db = db

    def create(self, role: str = "manager", email: str | None = None) -> members.Member:
        email = email or f"{role}@example.com"
        found = members.find_by_identifier(self.db, email)
        if found is not None:
            return found
        return members.create_member(
            self.db, display_name=role.title(), password=PASSWORD, email=email, role=role
        )

    def signin(self, role: str = "manager", email: str | None = None) -> members.Member:
        """Create (once) and sign in a console user of ``role``; returns the member."""
        member = self.create(role, email)
        response = self.client.post(
            "/manage/signin", data={"identifier": member.email, "password": PASSWORD}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return member


@pytest.fixture
def console(client: FlaskClient, db: sqlite_utils.Database) -> ConsoleActions:
    """For console pages (CSRF off, like ``client``): ``console.signin("manager")``."""
    return ConsoleActions(client, db)
