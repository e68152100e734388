"""The portal: the only process that faces shoppers (captive sign-in, API, store pages)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from instore.config import Config, load_config
from instore.db import open_database
from instore.keys import stored_secret
from instore.plugins import pm

log = logging.getLogger(__name__)

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret


def _secret_key(config: Config) -> str:
    """The configured key, else one generated once and kept beside the database (mode 0600)."""
    return stored_secret(config.var_dir, SECRET_KEY_FILE, config["portal"]["secret_key"])


def create_app(config: Config | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """Build the portal: settings, schema, extensions, blueprints, then the captive middleware."""
    config = config or load_config()
    app = Flask(__name__)
    public_https = config["portal"]["public_url"].startswith("https://")
    app.config.from_mapping(
        INSTORE=config,
        SECRET_KEY=_secret_key(config),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=public_https,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=public_https,
        # Forms are a handful of short fields; anything bigger is not a shopper.
        MAX_CONTENT_LENGTH=16 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the session cookie bounds it; phones sit on a page for long
        RATELIMIT_STORAGE_URI=config["portal"]["ratelimit_storage"],
        RATELIMIT_HEADERS_ENABLED=True,
        BABEL_DEFAULT_LOCALE="en",
        # Times are stored in UTC and shown in the store's own time zone.
        BABEL_DEFAULT_TIMEZONE=config["store"]["timezone"],
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
    )
    if test_config:
        app.config.update(test_config)

    open_database(config.database_path, config["database"]["busy_timeout_ms"]).conn.close()

    lookup = pm.hook.client_lookup(name=config["hardware"]["client_lookup"], config=config)
    app.extensions["instore_client_lookup"] = lookup

    from portal import (
        account,
        api,
        auth,
        community_pages,
        demo_walk,
        feed,
        friends,
        health,
        i18n,
        manage,
        pages,
        privacy,
        push,
        security,
        support,
        tills_api,
    )

    i18n.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(demo_walk.bp)
    app.register_blueprint(feed.bp)
    app.register_blueprint(push.bp)
    app.register_blueprint(privacy.bp)
    app.register_blueprint(friends.bp)
    app.register_blueprint(support.bp)
    community_pages.init_app(app)
    manage.init_app(app)
    security.apply_rate_limits(app)
    tills_api.init_app(app)  # after the limiter exists: limited per till key

    from portal.captive import CaptivePortalMiddleware

    app.wsgi_app = CaptivePortalMiddleware(app.wsgi_app, config, lookup)  # type: ignore[method-assign]
    return app
