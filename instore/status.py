"""``instore status``: what each service is doing, read from systemd and from the database.

systemd says whether a unit runs; the database says whether it does its work: the outbox
consumers' cursors (how far behind each is), the gatekeeper's last reconcile, when sensors were
last heard, when the last event was written and how far the uplink has published. Both are
shown because either can lie alone: an "active" unit can be stuck, and a quiet database can
mean a quiet store.

Read-only, and without member data: counts, times and event kinds only.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from instore.clock import now_iso
from instore.health import schema_state

# The units install.sh puts on a box, in the order data flows through them.
UNITS: tuple[str, ...] = ("portal", "gatekeeper", "presence", "offers", "uplink")
UPLINK_CONSUMER = "uplink"
CHANNEL_PREFIX = "offers.channel."
# systemctl answers in milliseconds; one that takes longer is stuck on D-Bus.
SYSTEMCTL_TIMEOUT_SECONDS = 10.0

SystemdQuery = Callable[[str], dict[str, str] | None]


@dataclass(frozen=True)
class QueueState:
    """One consumer of the outbox (or of notifications, for a delivery channel)."""

    consumer: str
    position: int
    behind: int
    updated_at: str
    over: str  # "events" or "notifications"


@dataclass(frozen=True)
class ServiceState:
    """A unit as systemd sees it (``state``) and its last sign of life in the database."""

    name: str
    state: str  # active, failed, not installed… from systemd; "no systemd" without it
    since: str
    activity: str


@dataclass
class StatusReport:
    schema: str
    services: list[ServiceState] = field(default_factory=list)
    queues: list[QueueState] = field(default_factory=list)
    last_event: dict[str, Any] | None = None
    last_uplink: dict[str, Any] | None = None
    sensors: list[dict[str, Any]] = field(default_factory=list)
    phones_online: int = 0
    generated_at: str = field(default_factory=now_iso)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def systemd_unit(unit: str, run_root: Path = Path("/run")) -> dict[str, str] | None:
    """``ActiveState``, ``SubState`` and ``ActiveEnterTimestamp`` of ``unit``; None without
    systemd as PID 1 (or when systemctl cannot be run)."""
    if not (run_root / "systemd" / "system").is_dir():
        return None
    try:
        done = subprocess.run(
            [
                "systemctl",
                "show",
                "--property=LoadState,ActiveState,SubState,ActiveEnterTimestamp",
                unit,
            ],
            capture_output=True,
            text=True,
            timeout=SYSTEMCTL_TIMEOUT_SECONDS,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_systemctl_show(done.stdout)


def parse_systemctl_show(text: str) -> dict[str, str]:
    """``KEY=value`` lines of ``systemctl show``; a unit that is not installed is said so."""
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if values.get("LoadState") in {None, "not-found"}:
        return {"ActiveState": "not installed"}
    return values


def _table_exists(db: sqlite_utils.Database, name: str) -> bool:
    row = db.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _count_behind(
    db: sqlite_utils.Database, consumer: str, position: int, kinds: Sequence[str] | None
) -> tuple[int, str]:
    if consumer.startswith(CHANNEL_PREFIX):
        row = db.conn.execute("SELECT COUNT(*) FROM notifications WHERE id > ?", (position,))
        return int(row.fetchone()[0]), "notifications"
    if kinds:
        marks = ", ".join("?" for _ in kinds)
        sql = f"SELECT COUNT(*) FROM events WHERE id > ? AND kind IN ({marks})"  # noqa: S608
        return int(db.conn.execute(sql, (position, *kinds)).fetchone()[0]), "events"
    row = db.conn.execute("SELECT COUNT(*) FROM events WHERE id > ?", (position,))
    return int(row.fetchone()[0]), "events"


def queue_states(
    db: sqlite_utils.Database, consumer_kinds: Mapping[str, Sequence[str]]
) -> list[QueueState]:
    """Every cursor with what is still waiting for it.

    A consumer that reads only some kinds (``consumer_kinds``) is behind only by those: the
    offers worker's cursor rests on its last zone event while exits and sign-ins pass by.
    """
    rows = db.conn.execute("SELECT consumer, last_id, updated_at FROM cursors ORDER BY consumer")
    states = []
    for consumer, last_id, updated_at in rows.fetchall():
        behind, over = _count_behind(db, consumer, int(last_id), consumer_kinds.get(consumer))
        states.append(QueueState(consumer, int(last_id), behind, updated_at, over))
    return states


def _gatekeeper_activity(db: sqlite_utils.Database) -> str:
    if not _table_exists(db, "gatekeeper_status"):
        return "never ran"
    row = db.conn.execute(
        "SELECT pid, last_reconcile_at, authorized, last_error FROM gatekeeper_status"
    ).fetchone()
    if row is None:
        return "never ran"
    pid, reconciled, authorized, error = row
    text = f"last reconcile {reconciled or 'never'}, {authorized} clients allowed (pid {pid})"
    return text + (f"; last error: {error}" if error else "")


def _activity(db: sqlite_utils.Database, queues: Sequence[QueueState]) -> dict[str, str]:
    """Each unit's last sign of life in the database, in words."""
    by_name = {queue.consumer: queue for queue in queues}
    login = db.conn.execute("SELECT MAX(ts) FROM events WHERE kind = 'portal.login'").fetchone()[0]
    zone = db.conn.execute(
        "SELECT MAX(ts) FROM events WHERE kind IN ('zone_enter', 'zone_exit', 'store_enter')"
    ).fetchone()[0]
    heard = db.conn.execute("SELECT MAX(last_seen_at) FROM sensors").fetchone()[0]
    activity = {
        "portal": f"last sign-in {login or 'never'}",
        "gatekeeper": _gatekeeper_activity(db),
        "presence": f"sensor last heard {heard or 'never'}, last zone event {zone or 'never'}",
    }
    for unit, consumer in (("offers", "offers"), ("uplink", UPLINK_CONSUMER)):
        queue = by_name.get(consumer)
        activity[unit] = (
            f"cursor moved {queue.updated_at}, {queue.behind} {queue.over} behind"
            if queue
            else "never ran"
        )
    return activity


def collect_status(
    db: sqlite_utils.Database,
    consumer_kinds: Mapping[str, Sequence[str]],
    systemd: SystemdQuery = systemd_unit,
) -> StatusReport:
    """Everything ``instore status`` shows, as data."""
    report = StatusReport(schema=schema_state(db).verdict)
    report.queues = queue_states(db, consumer_kinds)
    activity = _activity(db, report.queues)
    for unit in UNITS:
        shown = systemd(f"instore-{unit}.service")
        if shown is None:
            state, since = "no systemd", ""
        else:
            state = shown.get("ActiveState", "unknown")
            sub = shown.get("SubState", "")
            state += f" ({sub})" if sub and sub != state else ""
            since = shown.get("ActiveEnterTimestamp", "")
        report.services.append(ServiceState(unit, state, since, activity[unit]))
    last = db.conn.execute("SELECT id, ts, kind FROM events ORDER BY id DESC LIMIT 1").fetchone()
    if last:
        report.last_event = {"id": last[0], "ts": last[1], "kind": last[2]}
    uplink = next((q for q in report.queues if q.consumer == UPLINK_CONSUMER), None)
    if uplink is not None:
        report.last_uplink = {
            "position": uplink.position,
            "published_at": uplink.updated_at,
            "behind": uplink.behind,
        }
    report.sensors = [
        {"id": row[0], "kind": row[1], "last_seen_at": row[2]}
        for row in db.conn.execute("SELECT id, kind, last_seen_at FROM sensors ORDER BY id")
    ]
    now = now_iso()
    report.phones_online = int(
        db.conn.execute(
            "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ? "
            "AND idle_deadline > ?",
            (now, now),
        ).fetchone()[0]
    )
    return report


def open_read_only(path: Path, busy_timeout_ms: int) -> sqlite_utils.Database:
    """The database without creating or migrating it; sqlite3.Error if it cannot be read."""
    if not path.exists():
        raise sqlite3.OperationalError(f"no database at {path}")
    conn = sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None
    )
    return sqlite_utils.Database(conn)


def render_status(report: StatusReport) -> str:
    """The human tables."""
    lines = [f"{'SERVICE':<11} {'STATE':<20} LAST SIGN OF LIFE"]
    for service in report.services:
        lines.append(f"{service.name:<11} {service.state:<20} {service.activity}")
    lines.append("")
    lines.append(f"{'QUEUE':<28} {'BEHIND':>7}  {'OVER':<13} CURSOR MOVED")
    for queue in report.queues:
        lines.append(f"{queue.consumer:<28} {queue.behind:>7}  {queue.over:<13} {queue.updated_at}")
    if not report.queues:
        lines.append("(no consumer has read the outbox yet)")
    lines.append("")
    event = report.last_event
    lines.append(
        f"last event:    #{event['id']} {event['kind']} at {event['ts']}"
        if event
        else "last event:    none yet"
    )
    uplink = report.last_uplink
    lines.append(
        f"last uplink:   {uplink['published_at']} (event #{uplink['position']}, "
        f"{uplink['behind']} waiting)"
        if uplink
        else "last uplink:   never (no uplink cursor)"
    )
    heard = (
        ", ".join(f"{s['id']} {s['last_seen_at'] or 'never'}" for s in report.sensors)
        or "no sensors placed"
    )
    lines.append(f"sensors heard: {heard}")
    lines.append(f"phones online: {report.phones_online}")
    lines.append(f"schema:        {report.schema}")
    return "\n".join(lines)
