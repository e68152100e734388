"""Spanish and English: pages follow the phone's language.

With ``Accept-Language: es`` every page a shopper can reach (``i18n_pages.py``: forms, their
errors and flashes, the error pages) is Spanish with no English left; with ``en`` or no header it
is English; ``?lang=`` switches and is remembered. That the Spanish catalogue is complete and up
to date with the code is checked in ``test_i18n_catalogue.py``.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import portal
from instore.config import Config, load_config
from tests.conftest import PASSWORD, AuthActions
from tests.i18n_pages import PAGES, STORE_HOURS, Env

TRANSLATIONS = Path(portal.__file__).parent / "translations"
ES_PO = TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po"
ES_MO = ES_PO.with_suffix(".mo")


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogue() -> None:
    """The app reads the compiled .mo. ``make test`` builds it; do the same here when it is missing
    or older than the .po, so running this file directly after editing the .po tests the edit."""
    if ES_MO.exists() and ES_MO.stat().st_mtime >= ES_PO.stat().st_mtime:
        return
    with ES_PO.open("rb") as handle:
        catalog = read_po(handle, locale="es")
    fd, tmp = tempfile.mkstemp(dir=ES_MO.parent, suffix=".mo.tmp")
    with os.fdopen(fd, "wb") as out:
        write_mo(out, catalog)
    os.replace(tmp, ES_MO)


@pytest.fixture
def config(config: Config) -> Config:
    """The shared defaults plus opening hours, so the venue page shows its one placeholder."""
    return load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(config.database_path),
            "INSTORE_PORTAL_SECRET_KEY": config["portal"]["secret_key"],
            "INSTORE_STORE_HOURS": STORE_HOURS,
        }
    )


def text_of(response: TestResponse) -> str:
    """The page as a person reads it: entities such as ``&#39;`` turned back into characters."""
    return html.unescape(response.get_data(as_text=True))


def speak(client: FlaskClient, lang: str | None) -> None:
    """Send ``Accept-Language: lang`` on every request from now on (none when ``lang`` is None)."""
    if lang is None:
        client.environ_base.pop("HTTP_ACCEPT_LANGUAGE", None)
    else:
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = lang


@pytest.fixture
def env(client: FlaskClient, auth: AuthActions, app: Flask) -> Env:
    return Env(client=client, auth=auth, csrf_client=app.test_client())


@pytest.mark.parametrize("name", PAGES)
def test_page_in_spanish(env: Env, name: str) -> None:
    page = PAGES[name]
    speak(env.client, "es")
    speak(env.csrf_client, "es")
    response = page.fetch(env)
    assert response.status_code == page.status
    text = text_of(response)
    assert '<html lang="es">' in text
    missing = [s for s in page.spanish if s not in text]
    assert not missing, f"Spanish text missing from {name}: {missing}"
    leftover = [s for s in page.english if s in text]
    assert not leftover, f"English text left on the Spanish {name} page: {leftover}"


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("lang", ["en", None], ids=["en", "no-header"])
def test_page_in_english(env: Env, name: str, lang: str | None) -> None:
    page = PAGES[name]
    speak(env.client, lang)
    speak(env.csrf_client, lang)
    response = page.fetch(env)
    assert response.status_code == page.status
    text = text_of(response)
    assert '<html lang="en">' in text
    missing = [s for s in page.english if s not in text]
    assert not missing, f"English text missing from {name}: {missing}"
    leftover = [s for s in page.spanish if s in text]
    assert not leftover, f"Spanish text on the English {name} page: {leftover}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("es-MX,es;q=0.9,en;q=0.8", "es"),
        ("es-419", "es"),
        ("en-GB,es;q=0.5", "en"),
        ("fr-FR,fr;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,es;q=0.5", "es"),
    ],
)
def test_regional_and_other_languages(client: FlaskClient, header: str, expected: str) -> None:
    speak(client, header)
    page = text_of(client.get("/signin"))
    assert f'<html lang="{expected}">' in page
    spanish = "Conéctate con tu cuenta de socio" in page
    english = "Get online with your loyalty account" in page
    assert (spanish, english) == (expected == "es", expected == "en")


def test_lang_parameter_switches_and_is_remembered(client: FlaskClient) -> None:
    speak(client, "en")
    page = text_of(client.get("/signin"))
    assert "Get online with your loyalty account" in page
    # The footer offers both languages.
    assert 'href="?lang=es"' in page
    assert 'href="?lang=en"' in page

    page = text_of(client.get("/signin?lang=es"))
    assert "Conéctate con tu cuenta de socio" in page

    # Remembered in the session, over the phone's own preference, on every page.
    for path in ("/signin", "/signup", "/terms"):
        page = text_of(client.get(path))
        assert '<html lang="es">' in page, path
        assert "Condiciones del WiFi" in page, path

    with client.session_transaction() as session:
        assert session["lang"] == "es"

    page = text_of(client.get("/terms?lang=en"))
    assert "WiFi terms of use" in page
    speak(client, "es")
    page = text_of(client.get("/signin"))
    assert "Get online with your loyalty account" in page  # the explicit choice still wins


def test_unknown_lang_parameter_is_ignored(client: FlaskClient) -> None:
    speak(client, "es")
    page = text_of(client.get("/signin?lang=fr"))
    assert "Conéctate con tu cuenta de socio" in page
    with client.session_transaction() as session:
        assert "lang" not in session


def test_language_choice_survives_sign_in(client: FlaskClient, auth: AuthActions) -> None:
    speak(client, None)
    auth.create()
    client.get("/signin?lang=es")
    response = client.post(
        "/signin",
        data={"identifier": "ana@example.com", "password": PASSWORD},
        follow_redirects=True,
    )
    assert "Acepto las condiciones de uso del WiFi" in text_of(response)
