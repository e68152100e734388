"""Spanish and English: pages follow the phone's language, and the catalogue covers every string.

Three kinds of check:

* rendering: with ``Accept-Language: es`` every page a shopper can reach (forms, their errors and
  flashes, the error pages) is Spanish with no English left; with ``en`` or no header it is English;
  ``?lang=`` switches and is remembered;
* the Spanish catalogue is complete: every entry translated, none fuzzy, same placeholders;
* the catalogue is up to date: every string the code marks for translation is in it, so adding a
  string without translating it fails here with the list of what is missing.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import portal
from instore.config import Config, load_config
from tests.conftest import PASSWORD, AuthActions

try:  # Babel >= 2.15
    from babel.messages.frontend import parse_mapping_cfg
except ImportError:  # pragma: no cover - older Babel
    from babel.messages.frontend import parse_mapping as parse_mapping_cfg

ROOT = Path(__file__).resolve().parent.parent
BABEL_CFG = ROOT / "babel.cfg"
TRANSLATIONS = Path(portal.__file__).parent / "translations"
ES_PO = TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po"
ES_MO = ES_PO.with_suffix(".mo")
# The Makefile's extract-messages target adds this keyword for flask_babel.lazy_gettext.
EXTRA_KEYWORDS = {"_l": None}

STORE_HOURS = "9:00-21:00"
TERMS_VERSION = "2026-11"  # the default portal.terms_version


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


# --- Rendering ------------------------------------------------------------------------------------


@dataclass
class Env:
    client: FlaskClient  # CSRF off: the flows
    auth: AuthActions
    csrf_client: FlaskClient  # CSRF on: the expired-form page


@dataclass(frozen=True)
class Page:
    fetch: Callable[[Env], TestResponse]
    status: int
    spanish: tuple[str, ...]
    english: tuple[str, ...]


def _consents(env: Env) -> TestResponse:
    env.auth.create()
    env.auth.login()
    return env.client.get("/consents")


def _signed_in(path: str) -> Callable[[Env], TestResponse]:
    def fetch(env: Env) -> TestResponse:
        env.auth.go_online()
        return env.client.get(path)

    return fetch


def _reconnect(env: Env) -> TestResponse:
    env.client.environ_base["REMOTE_ADDR"] = "unknown"  # no MAC behind it
    env.auth.create()
    env.auth.login()
    return env.auth.consent()


def _save_choices(env: Env) -> TestResponse:
    env.auth.go_online()
    return env.client.post("/account", data={"marketing": "y"}, follow_redirects=True)


def _sign_out(env: Env) -> TestResponse:
    env.auth.go_online()
    return env.client.post("/signout", follow_redirects=True)


def _wrong_password(env: Env) -> TestResponse:
    env.auth.create()
    return env.auth.login(password="not the password")


def _too_many(env: Env) -> TestResponse:
    for _attempt in range(30):
        response = env.auth.login(password="not the password")
        if response.status_code == 429:
            return response
    raise AssertionError("no 429 after 30 wrong passwords")


def _csrf(env: Env) -> TestResponse:
    return env.csrf_client.post("/signin", data={"identifier": "ana@example.com", "password": "x"})


PAGES: dict[str, Page] = {
    "signin": Page(
        lambda env: env.client.get("/signin"),
        200,
        (
            "Conéctate con tu cuenta de socio",
            "Correo electrónico o número de socio",
            "Mantener la sesión abierta en este teléfono",
            "Iniciar sesión y conectarme",
            "Únete al programa de socios: es gratis",
            "Condiciones del WiFi",
        ),
        (
            "Get online with your loyalty account",
            "Email or loyalty number",
            "Stay signed in on this phone",
            "Sign in and go online",
            "Join the loyalty program — it's free",
            "About this WiFi",
        ),
    ),
    "signin-errors": Page(
        lambda env: env.client.post("/signin", data={}),
        200,
        ("Escribe tu correo electrónico o número de socio.", "Escribe tu contraseña."),
        ("Enter your email or loyalty number.", "Enter your password."),
    ),
    "signin-too-long": Page(
        lambda env: env.client.post(
            "/signin", data={"identifier": "a" * 300, "password": "x" * 300}
        ),
        200,
        ("Es demasiado largo para ser un correo", "Esa contraseña es demasiado larga."),
        ("That is too long for an email address.", "That password is too long."),
    ),
    "signin-wrong-password": Page(
        _wrong_password,
        200,
        ("y la contraseña no coinciden. Revísalos e inténtalo de nuevo.",),
        ("and password do not match. Check them and try again.",),
    ),
    "signup": Page(
        lambda env: env.client.get("/signup"),
        200,
        (
            "Únete y conéctate",
            "Tu nombre, tal como lo verán tus amigos",
            "Elige una contraseña",
            "Crear mi cuenta",
            "¿Ya tienes cuenta?",
        ),
        (
            "Join and get online",
            "Your name, as friends will see it",
            "Choose a password",
            "Create my account",
            "Already a member?",
        ),
    ),
    "signup-errors": Page(
        lambda env: env.client.post(
            "/signup", data={"identifier": "ana@", "display_name": "", "password": "short"}
        ),
        200,
        (
            "Escribe un correo electrónico válido, como ana@example.com.",
            "Escribe un nombre.",
            "Usa entre 8 y 256 caracteres para tu contraseña.",
        ),
        (
            "Enter a valid email address, like ana@example.com.",
            "Enter a name.",
            "Use between 8 and 256 characters for your password.",
        ),
    ),
    "consents": Page(
        _consents,
        200,
        (
            "Tus preferencias",
            "Acepto las condiciones de uso del WiFi (necesario para conectarme)",
            f"Lee las condiciones del WiFi (versión {TERMS_VERSION})",
            "Enviarme novedades y ofertas de la tienda",
            "Guardar y conectarme",
        ),
        (
            "Your choices",
            "I accept the WiFi terms of use (required to go online)",
            f"Read the WiFi terms (version {TERMS_VERSION})",
            "Send me news and deals from the store",
            "Save and go online",
        ),
    ),
    "consents-errors": Page(
        lambda env: (_consents(env), env.client.post("/consents", data={}))[1],
        200,
        ("Para conectarte, tienes que aceptar las condiciones del WiFi.",),
        ("You need to accept the WiFi terms to go online.",),
    ),
    "online": Page(
        _signed_in("/online"),
        200,
        (
            "Ya tienes conexión",
            "Disfruta de tu visita, Ana.",
            "Este teléfono seguirá conectado hasta el",
            "Abrir tu página de la tienda",
            "Cerrar sesión",
        ),
        (
            "You're online",
            "Enjoy your visit, Ana.",
            "This phone stays connected until",
            "Open your store page",
            "Sign out",
        ),
    ),
    "account": Page(
        _signed_in("/account"),
        200,
        (
            "Tu cuenta",
            "Número de socio",
            f"Aceptadas (versión {TERMS_VERSION})",
            "Usar mi ubicación en la tienda para mostrarme ofertas de esa zona",
            "Guardar mis preferencias",
            "Cerrar sesión y salir del WiFi",
        ),
        (
            "Your account",
            "Loyalty number",
            f"Accepted (version {TERMS_VERSION})",
            "Use where I am in the store to show me offers for that area",
            "Save my choices",
            "Sign out and leave the WiFi",
        ),
    ),
    "account-saved": Page(
        _save_choices, 200, ("Tus preferencias están guardadas.",), ("Your choices are saved.",)
    ),
    "signed-out": Page(
        _sign_out,
        200,
        ("Tu sesión está cerrada y este teléfono ya no está conectado al WiFi de la tienda.",),
        ("You are signed out, and this phone is off the store WiFi.",),
    ),
    "store": Page(
        _signed_in("/store"),
        200,
        ("Tu tienda", "Hola, Ana", "Cambiar lo que podemos usar"),
        ("Your store", "Hello, Ana", "Change what we may use"),
    ),
    "reconnect": Page(
        _reconnect,
        409,
        ("No encontramos tu teléfono en el WiFi de la tienda", "Intentar de nuevo"),
        ("We can't see your phone on the store WiFi", "Try again"),
    ),
    "terms": Page(
        lambda env: env.client.get("/terms"),
        200,
        ("Condiciones de uso del WiFi", f"Versión {TERMS_VERSION}", "Úsalo de forma legal"),
        ("WiFi terms of use", f"Version {TERMS_VERSION}", "Use it lawfully"),
    ),
    "venue": Page(
        lambda env: env.client.get("/venue"),
        200,
        (f"Horario: {STORE_HOURS}", "Este WiFi gratuito lo ofrece la tienda a sus socios."),
        (f"Opening hours: {STORE_HOURS}", "This free WiFi is run by the store"),
    ),
    "404": Page(
        lambda env: env.client.get("/no-such-page"),
        404,
        (
            "Página no encontrada",
            "No hay ninguna página en esta dirección.",
            "Volver al inicio de sesión del WiFi",
        ),
        ("Page not found", "There is no page at this address.", "Back to the WiFi sign-in"),
    ),
    "405": Page(
        lambda env: env.client.get("/signout"),
        405,
        ("No permitido", "Esta página no se puede usar así."),
        ("Not allowed", "This page cannot be used that way."),
    ),
    "413": Page(
        lambda env: env.client.post("/signin", data={"identifier": "x" * 20_000}),
        413,
        ("Demasiado texto", "El texto enviado es demasiado largo."),
        ("Too much text", "What you sent is too long."),
    ),
    "429": Page(
        _too_many,
        429,
        ("Demasiados intentos", "Lo has intentado demasiadas veces. Espera un minuto"),
        ("Too many attempts", "You have tried too many times. Wait a minute"),
    ),
    "csrf-400": Page(
        _csrf,
        400,
        ("Este formulario ha expirado", "Vuelve atrás, recarga la página e inténtalo de nuevo."),
        ("This form has expired", "Go back, reload the page and try again."),
    ),
}


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


# --- The catalogue -------------------------------------------------------------------------------

# printf-style conversions as Python's % operator reads them, named or not; "%%" is a literal.
PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[a-zA-Z%]")


def placeholders(text: str) -> list[str]:
    return sorted(m.group(0) for m in PLACEHOLDER.finditer(text) if m.group(0) != "%%")


def _texts(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _read_catalogue() -> Catalog:
    with ES_PO.open("rb") as handle:
        return read_po(handle, locale="es")


def test_catalogue_is_complete() -> None:
    catalog = _read_catalogue()
    assert not catalog.fuzzy, f"{ES_PO}: the header is marked fuzzy; pybabel compile skips it"
    problems: list[str] = []
    count = 0
    for message in catalog:
        if not message.id:
            continue  # the header
        count += 1
        ids, strings = _texts(message.id), _texts(message.string)
        label = repr(ids[0])
        if message.fuzzy:
            problems.append(f"fuzzy: {label}")
        if not strings or any(not s.strip() for s in strings):
            problems.append(f"untranslated: {label}")
            continue
        expected = placeholders(ids[0])
        for string in strings:
            if sorted(set(placeholders(string))) != sorted(set(expected)):
                problems.append(f"placeholders differ: {label} -> {string!r}")
            # Jinja's newstyle gettext always applies %, even without arguments, so a stray "%"
            # in a translation breaks the page; so does a placeholder the code does not pass.
            values = {m.group("name"): 1 for m in PLACEHOLDER.finditer(ids[0]) if m.group("name")}
            try:
                ids[0] % values
            except (KeyError, TypeError, ValueError):
                continue  # the source string itself is not a %-template (Python code, no args)
            try:
                string % values
            except (KeyError, TypeError, ValueError) as error:
                problems.append(f"does not format ({error}): {label} -> {string!r}")
    assert count > 0, f"{ES_PO} has no messages"
    assert not problems, f"{ES_PO}:\n" + "\n".join(problems)


def extracted_messages() -> Iterator[tuple[str, str | None, str]]:
    """(msgid, context, where) for every string the code marks, as ``make extract-messages``
    finds them: babel.cfg's method map plus the ``_l`` keyword."""
    with BABEL_CFG.open() as handle:
        method_map, options_map = parse_mapping_cfg(handle, str(BABEL_CFG))
    keywords: dict[str, Any] = {**DEFAULT_KEYWORDS, **EXTRA_KEYWORDS}
    for filename, lineno, message, _comments, context in extract_from_dir(
        ROOT, method_map, options_map, keywords=keywords
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid:
            yield msgid, context, f"{filename}:{lineno}"


def test_catalogue_is_up_to_date_with_the_code() -> None:
    catalog = _read_catalogue()
    found = list(extracted_messages())
    assert len(found) > 50, "extraction found almost nothing; is babel.cfg right?"
    missing = sorted(
        {
            f"{where}: {msgid!r}"
            for msgid, context, where in found
            if not catalog.get(msgid, context)
        }
    )
    assert not missing, (
        f"{len(missing)} string(s) marked for translation are not in {ES_PO}. "
        "Run `make extract-messages`, translate them, then `make translations`:\n"
        + "\n".join(missing)
    )
