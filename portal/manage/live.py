"""The live store: who is where on the floor plan now, and what the offers engine just did.

One snapshot (``snapshot``) feeds both the server-rendered page, which works without JavaScript
(with a refresh link), and the Server-Sent Events stream at ``/manage/live/stream``
(``live_stream``), which sends it again whenever another process commits a change. Everything is
read from the tables the presence daemon and the offers worker write; nothing here writes, so
there is nothing to audit.

Members are listed only while their latest ``location`` consent is a yes: staff see the counts of
everyone's devices, but a name only for shoppers who let the store use where they are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils
from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _

from instore.clock import from_iso, utcnow
from offers.activity import RECENT_LIMIT, recent_notifications_sent, recent_refusals
from portal import feed
from portal.database import get_db
from portal.manage.access import require_role
from portal.manage.live_stream import stream_snapshots
from presence.floorplan import plan_view
from presence.occupancy import live_occupancy, present_members_with_location_consent
from presence.zones import list_zones

bp = Blueprint("manage_live", __name__, url_prefix="/manage/live")
require_role(bp, "staff")

# Colour intensity is relative to the busiest zone, but never to fewer devices than this: with
# two shoppers in the shop, a zone holding one of them is not "packed".
INTENSITY_FLOOR_DEVICES = 5
# The floor plan's zone colour at its palest (an empty zone) and its strongest (the busiest).
MIN_FILL_OPACITY = 0.08
MAX_FILL_OPACITY = 0.8
# Where the occupancy number sits, below the zone's name at the centroid (metres; the label is
# about 0.9 m tall on the plan).
OCCUPANCY_OFFSET_M = 1.3
# Members named on the page at most (newest arrivals first): a busy shop has hundreds present,
# and every snapshot is sent whole on each change; the rest are counted, not listed.
MEMBERS_LISTED = 100


@dataclass(frozen=True)
class LiveSettings:
    """Everything a snapshot needs besides the database, fixed when the page or stream opens
    (a stream runs outside the request, so labels are translated up front)."""

    timezone: ZoneInfo
    zone_exit_s: float
    store_exit_s: float
    labels: Mapping[str, str]


def outcome_labels() -> dict[str, str]:
    """Every refusal outcome of offers.migrations as a short phrase for staff."""
    return {
        "capped": _("Capped"),
        "cooldown": _("Cooldown"),
        "quiet_hours": _("Quiet hours"),
        "out_of_schedule": _("Out of schedule"),
        "no_consent": _("No consent"),
        "not_in_audience": _("Not in audience"),
        "holdout": _("Holdout group"),
        "budget_spent": _("Budget spent"),
        "lower_priority": _("Lower priority"),
        "not_visible": _("Not visible to this friend"),
        "ghost_mode": _("Ghost mode"),
        "blocked": _("Blocked"),
    }


def current_settings() -> LiveSettings:
    """The store's time zone, the tracker's timeouts and the labels, for this request."""
    cfg = current_app.config["INSTORE"]
    labels = {
        "kind:offer": _("Offer"),
        "kind:friend": _("Friend note"),
        "opened": _("opened"),
        "not_opened": _("not opened"),
        "no_zone": _("between zones"),
        **{f"outcome:{key}": value for key, value in outcome_labels().items()},
    }
    return LiveSettings(
        timezone=ZoneInfo(cfg["store"]["timezone"]),
        zone_exit_s=float(cfg["presence"]["zone_exit_seconds"]),
        store_exit_s=float(cfg["presence"]["store_exit_seconds"]),
        labels=labels,
    )


def local_time(stored: str, zone: ZoneInfo, today: datetime) -> str:
    """A stored UTC time as the store's clock shows it: "14:05", with the date if not today."""
    moment = from_iso(stored).astimezone(zone)
    if moment.date() == today.astimezone(zone).date():
        return f"{moment:%H:%M}"
    return f"{moment:%Y-%m-%d %H:%M}"


def intensity(count: int, busiest: int) -> float:
    """A zone's fill opacity: pale when empty, strongest for the busiest zone."""
    scale = max(busiest, INTENSITY_FLOOR_DEVICES)
    share = min(1.0, count / scale)
    return round(MIN_FILL_OPACITY + (MAX_FILL_OPACITY - MIN_FILL_OPACITY) * share, 3)


def snapshot(db: sqlite_utils.Database, settings: LiveSettings) -> dict[str, Any]:
    """The whole live view as plain data (JSON for the stream, the context of the page).

    Times are formatted here, in the store's time zone, so the page and the script show them
    alike and the script only puts text into place.
    """
    now = utcnow()
    labels, zone = settings.labels, settings.timezone
    occupancy = live_occupancy(db, now, settings.zone_exit_s, settings.store_exit_s)
    busiest = max(occupancy.zones.values(), default=0)
    zones = [
        {
            "id": z.id,
            "name": z.name,
            "count": occupancy.zones.get(z.id, 0),
            "intensity": intensity(occupancy.zones.get(z.id, 0), busiest),
        }
        for z in list_zones(db)
    ]
    present = present_members_with_location_consent(
        db, now, settings.zone_exit_s, settings.store_exit_s
    )
    sent = recent_notifications_sent(db, RECENT_LIMIT)
    refused = recent_refusals(db, RECENT_LIMIT)
    counts = Counter(r.outcome for r in refused)
    return {
        "in_store": occupancy.in_store,
        "zones": zones,
        "members": [
            {
                "name": m.display_name,
                "zone": m.zone_name or labels["no_zone"],
                "since": local_time(m.since, zone, now),
            }
            for m in present[:MEMBERS_LISTED]
        ],
        "members_more": max(0, len(present) - MEMBERS_LISTED),
        "notifications": [
            {
                "id": n.id,
                "when": local_time(n.ts, zone, now),
                "kind": labels.get(f"kind:{n.kind}", n.kind),
                "member": n.member_name,
                "title": n.title,
                "opened": n.opened,
                "opened_label": labels["opened" if n.opened else "not_opened"],
            }
            for n in sent
        ],
        "refusals": [
            {
                "id": r.id,
                "when": local_time(r.ts, zone, now),
                "kind": labels.get(f"kind:{r.kind}", r.kind),
                "member": r.member_name,
                "subject": r.subject,
                "outcome": r.outcome,
                "outcome_label": labels.get(f"outcome:{r.outcome}", r.outcome),
                "reason": r.reason,
            }
            for r in refused
        ],
        "refusal_counts": [
            {"outcome": outcome, "label": labels.get(f"outcome:{outcome}", outcome), "count": n}
            for outcome, n in counts.most_common()
        ],
    }


@bp.get("", strict_slashes=False)
def page() -> str:
    """The live store as it is now; the script keeps it current, the link reloads it without."""
    db = get_db()
    view = plan_view(db)
    markers: dict[int, tuple[float, float]] = {}
    for zone in view.zones:
        x, y = view.label_at(zone)
        markers[zone.id] = (x, y + OCCUPANCY_OFFSET_M)
    settings = current_settings()
    return render_template(
        "manage/live.html",
        view=view,
        markers=markers,
        live=snapshot(db, settings),
        generated=local_time_now(settings.timezone),
        recent_limit=RECENT_LIMIT,
    )


def local_time_now(zone: ZoneInfo) -> str:
    """The moment the page was made, to the second, on the store's clock."""
    return f"{utcnow().astimezone(zone):%H:%M:%S}"


@bp.get("/stream")
def stream() -> Response:
    """The live view as Server-Sent Events: a snapshot now and after every change."""
    cfg = current_app.config["INSTORE"]
    settings = current_settings()
    environ = request.environ
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    body = stream_snapshots(
        str(cfg.database_path),
        cfg["database"]["busy_timeout_ms"],
        lambda db: snapshot(db, settings),
        sock,
        max_streams=max(1, cfg["portal"]["threads"] - feed.RESERVED_THREADS),
    )
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    # nginx (and proxies that honour it) would otherwise hold events back to fill a buffer.
    response.headers["X-Accel-Buffering"] = "no"
    return response
