"""``GET /healthz``: is this portal able to serve? For systemd, the upgrade script and monitors.

200 with ``{"ok": true, "db": "ok", "schema": "current"}`` when the database answers and its
schema is the one this release expects; 503 with what is wrong otherwise (``db`` carries the
database error, ``schema`` is ``behind`` or ``ahead``, ``problem`` says what to do). No sign-in,
and nothing about members or sessions: anyone on the LAN may ask.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, Response, jsonify

from instore.db import DatabaseError
from instore.health import schema_state
from portal.database import get_db

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """The database answers a read and its schema matches this release."""
    body: dict[str, Any] = {"ok": False, "db": "ok", "schema": "unknown"}
    try:
        state = schema_state(get_db())
    except (sqlite3.Error, DatabaseError) as exc:  # unreadable, locked past the timeout, not SQLite
        body["db"] = f"error: {exc}"
        body["problem"] = "the database cannot be read; see `instore doctor`"
    else:
        body["schema"] = state.verdict
        if state.verdict == "current":
            body["ok"] = True
        else:
            body["problem"] = state.explain()
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if body["ok"] else 503
