"""Languages: English and Spanish, chosen by the phone's Accept-Language or the footer link."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, request, session
from flask_babel import Babel, format_datetime, get_locale

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
    return _preferred_language()


def _preferred_language() -> str:
    """The phone's most preferred language we have, "es-MX" counting as "es" in its own place.

    (werkzeug's ``best_match`` tries exact tags first, so "en-GB, es;q=0.5" would get Spanish.)
    """
    ranked = sorted(request.accept_languages, key=lambda item: -item[1])
    for tag, quality in ranked:
        primary = tag.replace("_", "-").split("-")[0].lower()
        if quality > 0 and primary in LANGUAGES:
            return primary
    return "en"


def language_url(code: str) -> str:
    """This page in another language, keeping its other query parameters (``continue``)."""
    args = {key: value for key, value in request.args.items() if key != "lang"}
    return "?" + urlencode({**args, "lang": code})


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    # For <html lang>: screen readers pick their voice from it.
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["language_url"] = language_url
    app.jinja_env.globals["format_datetime"] = format_datetime
