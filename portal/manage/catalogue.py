"""The product catalogue in the console: browse it, and import a CSV export of it.

The upload runs the same import as ``instore products import`` (``community.catalogue_import``):
every line is checked first, a file with any problem is refused with each problem and its line
number and nothing is stored; a good file is stored in one transaction with its audit entry.
Pictures cannot come with a browser upload of one file; they are imported from the shell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from community.catalogue import categories, count_products, search_products
from community.catalogue_import import (
    MAX_IMPORT_BYTES,
    PROBLEMS_SHOWN,
    CatalogueRejected,
    Problem,
    import_catalogue,
    remove_pictures,
)
from instore.clock import utcnow
from instore.db import atomic
from instore.member_data import UPLOADS_DIRNAME
from portal.database import get_db
from portal.manage.access import current_member, has_role, record, require_role

bp = Blueprint("manage_catalogue", __name__, url_prefix="/manage/catalogue")
require_role(bp, "manager")

# Products per page: a screenful with the search form above.
PAGE_SIZE = 50
# Room for the multipart framing and the form's other fields around the largest CSV accepted.
UPLOAD_OVERHEAD_BYTES = 64 * 1024
# Warnings shown after an import (one per line that names an unknown zone, say); the rest counted.
WARNINGS_SHOWN = 20
UPLOAD_ENDPOINT = "manage_catalogue.upload"

PageResult = tuple[str, int]


@bp.url_value_preprocessor
def _allow_csv_upload(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Raise the app's 16 KB body limit for the CSV upload, for managers only.

    It runs before every ``before_request`` function, including the CSRF check that reads the
    form, so the raised limit is in force when the body is read.
    """
    if endpoint == UPLOAD_ENDPOINT and has_role(current_member(), "manager"):
        request.max_content_length = MAX_IMPORT_BYTES + UPLOAD_OVERHEAD_BYTES


def _too_big() -> str:
    return _(
        "The file is larger than %(mb)s MB. Split it into smaller files.",
        mb=MAX_IMPORT_BYTES // 1_048_576,
    )


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> PageResult:
    """A body past even the raised limit: the page again, saying how big a file may be."""
    if request.endpoint == UPLOAD_ENDPOINT and has_role(current_member(), "manager"):
        return _page(problems=[_too_big()], status=413)
    from portal.security import ERROR_PAGES

    title, message = ERROR_PAGES[413]
    return render_template("error.html", title=title, message=message, status=413), 413


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return max(1, int(raw)) if raw.isdecimal() and len(raw) < 7 else 1


def _page(
    problems: list[str] | None = None, more_problems: int = 0, status: int = 200
) -> PageResult:
    """The list with its search and the import form; ``problems`` from a refused upload."""
    db = get_db()
    query = request.args.get("q", "").strip()[:100]
    category = request.args.get("category", "").strip().lower()[:40] or None
    number = _page_number()
    total = count_products(db, query, category)
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(number, pages)
    found = search_products(db, query, category, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    zones = {str(name).lower() for (name,) in db.conn.execute("SELECT name FROM zones")}
    return (
        render_template(
            "manage/catalogue.html",
            products=found,
            total=total,
            query=query,
            category=category or "",
            categories=categories(db),
            page=number,
            pages=pages,
            zones=zones,
            problems=problems or [],
            more_problems=more_problems,
            max_mb=MAX_IMPORT_BYTES // 1_048_576,
        ),
        status,
    )


@bp.get("", strict_slashes=False)
def index() -> PageResult:
    """Active products by name, searchable by name or SKU, filtered by category, in pages."""
    return _page()


def _summary(counts: dict[str, int]) -> str:
    return _(
        "Catalogue imported: %(added)s added, %(updated)s updated, %(unchanged)s unchanged, "
        "%(deactivated)s withdrawn.",
        **counts,
    )


def _shown(problems: list[Problem], limit: int) -> tuple[list[str], int]:
    return [str(p) for p in problems[:limit]], max(0, len(problems) - limit)


@bp.post("/import")
def upload() -> Response | PageResult:
    """Import the uploaded CSV, all or nothing, and log the counts in the audit log."""
    file: FileStorage | None = request.files.get("file")
    if file is None or not file.filename:
        return _page(problems=[_("Choose a CSV file to import.")], status=400)
    data = file.stream.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        return _page(problems=[_too_big()], status=400)
    db = get_db()
    uploads = Path(current_app.config["INSTORE"].var_dir) / UPLOADS_DIRNAME
    deactivate = request.form.get("deactivate_missing") == "y"
    try:
        with atomic(db, "catalogue_import_audit"):
            result = import_catalogue(
                db, data, uploads, deactivate_missing=deactivate, now=utcnow()
            )
            record(
                "catalogue.import",
                "catalogue",
                after={**result.counts(), "file": file.filename[:100]},
            )
    except CatalogueRejected as exc:
        shown, more = _shown(exc.problems, PROBLEMS_SHOWN)
        return _page(problems=shown, more_problems=more, status=400)
    remove_pictures(uploads, result.stale_pictures)
    flash(_summary(result.counts()))
    warnings, more = _shown(result.warnings, WARNINGS_SHOWN)
    for warning in warnings:
        flash(warning, "warning")
    if more:
        flash(_("… and %(num)s more warnings.", num=more), "warning")
    return redirect(url_for("manage_catalogue.index"))
