"""WSGI entry point for gunicorn: ``portal.wsgi:app``."""

from __future__ import annotations

from instore.config import load_config
from instore.logs import setup_logging
from portal import create_app

_config = load_config()
setup_logging(_config["logging"]["level"])
app = create_app(_config)
