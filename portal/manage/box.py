"""The box page, for admins: how the box is doing, the settings in force, and the WiFi terms.

Settings live in ``/etc/instore/instore.toml`` and are read by four processes at start, so the page
shows them (secrets hidden) and says where to change them rather than keeping a second copy in the
database that only some processes would see. The WiFi terms are the exception: they are content,
not configuration, and only the portal reads them, so an admin publishes new ones here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from instore import __version__, terms
from instore.config import shown_value
from instore.db import schema_versions
from portal.database import get_db
from portal.manage.access import actor, require_role

bp = Blueprint("manage_box", __name__, url_prefix="/manage/box")
require_role(bp, "admin")


class TermsForm(FlaskForm):
    version = StringField(
        _l("New version"),
        validators=[
            DataRequired(_l("Give the new terms a version, like 2026-12.")),
            Length(max=terms.MAX_VERSION_LENGTH, message=_l("Keep the version short.")),
        ],
    )
    body = TextAreaField(
        _l("Text (a blank line starts a new paragraph)"),
        validators=[
            DataRequired(_l("Write the text of the terms.")),
            Length(max=terms.MAX_BODY_LENGTH, message=_l("The terms are too long.")),
        ],
    )


@dataclass(frozen=True, slots=True)
class Consumer:
    """A process following the outbox, and how far behind the newest event it is."""

    name: str
    last_id: int
    behind: int
    updated_at: str


def _consumers() -> tuple[int, list[Consumer]]:
    db = get_db()
    newest = int(db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])
    rows = db.conn.execute("SELECT consumer, last_id, updated_at FROM cursors ORDER BY consumer")
    return newest, [Consumer(name, last, max(0, newest - last), at) for name, last, at in rows]


def _file_size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _page(form: TermsForm, status: int = 200) -> tuple[str, int]:
    config = current_app.config["INSTORE"]
    db = get_db()
    newest, consumers = _consumers()
    database = config.database_path
    live_sessions = db.conn.execute(
        "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > strftime("
        "'%Y-%m-%dT%H:%M:%SZ', 'now')"
    ).fetchone()[0]
    settings = {
        section: {key: shown_value(key, value) for key, value in values.items()}
        for section, values in config.as_dict().items()
    }
    return (
        render_template(
            "manage/box.html",
            version=__version__,
            schema=schema_versions(db),
            database=database,
            database_bytes=_file_size(database),
            wal_bytes=_file_size(Path(f"{database}-wal")),
            newest_event=newest,
            consumers=consumers,
            live_sessions=live_sessions,
            settings=settings,
            config_source=config.source,
            config_overrides=config.overrides,
            terms=terms.current_terms(db, config["portal"]["terms_version"]),
            form=form,
        ),
        status,
    )


@bp.route("/", strict_slashes=False)
def page() -> tuple[str, int]:
    form = TermsForm()
    current = terms.current_terms(
        get_db(), current_app.config["INSTORE"]["portal"]["terms_version"]
    )
    form.body.data = current.body or ""
    return _page(form)


@bp.route("/terms", methods=["POST"])
def publish_terms() -> Response | tuple[str, int]:
    form = TermsForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    me = actor()
    try:
        published = terms.publish(
            get_db(),
            form.version.data or "",
            form.body.data or "",
            default_version=current_app.config["INSTORE"]["portal"]["terms_version"],
            actor_id=me.id,
            actor_name=me.display_name,
        )
    except terms.InvalidTerms as exc:
        form.version.errors = [str(exc)]
        return _page(form, 400)
    flash(
        _(
            "Terms %(version)s are in force. Shoppers accept them at their next sign-in.",
            version=published.version,
        )
    )
    return redirect(url_for("manage_box.page"))
