"""Analytics for managers: footfall, dwell per zone, the offer funnel with holdout lift, friend
notes and new vs returning members, over a date range, as charts with their numbers and CSVs.

Every figure is a table first (``analytics_data.Figure``): the page draws it as an inline SVG bar
chart, lists the same numbers in a table for screen readers and anyone who wants them exact, and
the export link serves the same rows as CSV. Nothing a manager could change is written here, so
nothing is audited; a view only brings derived caches up to date (the dwell rollup, settled days).
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from instore.clock import utcnow
from portal.database import get_db
from portal.manage.access import require_role
from portal.manage.analytics_data import (
    FIGURES,
    MAX_RANGE_DAYS,
    Context,
    RangeError,
    parse_range,
    today_in,
)

bp = Blueprint("manage_analytics", __name__, url_prefix="/manage/analytics")
require_role(bp, "manager")

# A cell starting with one of these is a formula to a spreadsheet (CSV injection); a leading
# apostrophe makes it text. Zone and offer names are typed by staff, so they could start so.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _context() -> Context:
    config = current_app.config["INSTORE"]
    period = parse_range(request.args, config["store"]["timezone"])
    return Context(get_db(), period, utcnow(), config["offers"])


@bp.route("/", strict_slashes=False)
def page() -> str | tuple[str, int]:
    """The charts for the range in the query string (the last week by default)."""
    timezone = current_app.config["INSTORE"]["store"]["timezone"]
    values = {name: request.args.get(name, "")[:40] for name in ("from", "to")}
    try:
        ctx = _context()
    except RangeError as error:
        return (
            render_template(
                "manage/analytics.html",
                figures=[],
                errors=error.errors,
                values=values,
                period=None,
                max_days=MAX_RANGE_DAYS,
                timezone=timezone,
                today=today_in(timezone).isoformat(),
            ),
            400,
        )
    figures = [build(ctx) for build in FIGURES.values()]
    period = ctx.period
    values = {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()}
    return render_template(
        "manage/analytics.html",
        figures=figures,
        errors={},
        values=values,
        period=period,
        max_days=MAX_RANGE_DAYS,
        timezone=timezone,
        today=today_in(timezone).isoformat(),
    )


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


@bp.route("/export/<slug>.csv")
def export(slug: str) -> Response:
    """One figure's table as CSV, for the same range as the page."""
    build = FIGURES.get(slug)
    if build is None:
        abort(404)
    try:
        ctx = _context()
    except RangeError as error:
        message = _("Cannot export: %(why)s", why=" ".join(error.errors.values()))
        return Response(message + "\n", status=400, mimetype="text/plain")
    figure = build(ctx)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(figure.headers)
    writer.writerows([_cell(value) for value in row] for row in figure.rows)
    name = f"{slug}_{ctx.period.first_day.isoformat()}_{ctx.period.last_day.isoformat()}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
