"""The manager console at ``/manage``: role-gated pages for store staff, managers and admins.

One blueprint per feature, each gated by the role it needs (``access.require_role``): the console's
own sign-in and home (``console``), the floor plan with zones and sensors (``plan``), offers
(``offers``), the live store (``live``), analytics (``analytics``), and staff accounts with the
audit log (``people``). Every change a page makes is written to the audit log in the same
transaction (``instore.audit``).
"""

from __future__ import annotations

import importlib

from flask import Flask

from portal.manage.access import nav_entries, role_name

# Feature modules, each exposing ``bp``; listed here so the console's pages are in one place.
FEATURES: tuple[str, ...] = (
    "portal.manage.console",
    "portal.manage.people",
    "portal.manage.box",
    "portal.manage.live",
    "portal.manage.why",
    "portal.manage.offers",
    "portal.manage.plan",
    "portal.manage.plan_image",
    "portal.manage.analytics",
    "portal.manage.support",
    "portal.manage.moderation",
    "portal.manage.feedback",
    "portal.manage.catalogue",
)


def init_app(app: Flask) -> None:
    """Register every console blueprint."""
    for name in FEATURES:
        app.register_blueprint(importlib.import_module(name).bp)
    app.context_processor(lambda: {"manage_nav": nav_entries, "role_name": role_name})
