"""The shoppers' community pages, one blueprint per feature, registered in one place.

Profiles (``profile``), boards with comments and reactions (``boards``), products with reviews,
polls and the suggestions box (``feedback``), flags, moderation notices and appeals
(``moderation``), the community's front page (``community_home``), and the pictures they show
(``media``). The staff side of each lives in the console (``portal.manage``).
"""

from __future__ import annotations

import importlib

from flask import Flask

from portal.media import media_url

PAGES: tuple[str, ...] = (
    "portal.media",
    "portal.community_home",
    "portal.profile",
    "portal.boards",
    "portal.feedback",
    "portal.moderation",
)


def init_app(app: Flask) -> None:
    """Register every community blueprint and the ``media_url`` template helper."""
    for name in PAGES:
        app.register_blueprint(importlib.import_module(name).bp)
    app.jinja_env.globals["media_url"] = media_url
