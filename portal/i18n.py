"""Languages: English and Spanish, chosen by the phone's Accept-Language or the footer link."""

from __future__ import annotations

from flask import Flask, request, session
from flask_babel import Babel, get_locale

LANGUAGES: dict[str, str] = {"en": "English", "es": "Español"}


def select_locale() -> str:
    """An explicit choice (``?lang=``, then remembered) wins over the browser's preference."""
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        session["lang"] = chosen
        return chosen
    remembered = session.get("lang")
    if remembered in LANGUAGES:
        return str(remembered)
    return request.accept_languages.best_match(list(LANGUAGES), default="en") or "en"


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    # For <html lang>: screen readers pick their voice from it.
    app.jinja_env.globals["get_locale"] = get_locale
