"""The pages a shopper can reach, each with the text it must show in Spanish and in English.

``test_i18n.py`` fetches every page in both languages and checks one set is there and the other
is not. Each entry is how to reach the page (forms, their errors and flashes, the error pages),
the status it answers with, then the Spanish and the English strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import AuthActions

STORE_HOURS = "9:00-21:00"  # test_i18n.py sets it, so the venue page shows its placeholder
TERMS_VERSION = "2026-11"  # the default portal.terms_version


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
