"""The audit log: every change a staff member, manager or admin makes, with before and after.

A console is trusted with prices, zones and other people's accounts, so each change writes one
row saying who did it, what they did, to what, and the thing's state before and after (JSON).
The row is written in the same transaction as the change it describes, so the log never claims a
change that rolled back nor misses one that landed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from instore.clock import now_iso, to_iso

# A page of the log: enough to see a day's work, small enough to render at once.
PAGE_SIZE = 100
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "ts",
    "actor_id",
    "actor_name",
    "action",
    "target",
    "before",
    "after",
)
# The actor of changes made at the box's shell (``instore user add``) rather than in the console.
SHELL_ACTOR = "shell"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One logged change; ``before``/``after`` are None for a creation/deletion."""

    id: int
    ts: str
    actor_id: int | None
    actor_name: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, old, new) for each field that differs, for a compact "what changed" view."""
        old, new = self.before or {}, self.after or {}
        keys = sorted(set(old) | set(new))
        return [(key, old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)]


def _dump(state: Mapping[str, Any] | None) -> str | None:
    return None if state is None else json.dumps(state, sort_keys=True, default=str)


def record(
    db: sqlite_utils.Database,
    actor_id: int | None,
    actor_name: str,
    action: str,
    target: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> int:
    """Log one change; call inside the change's own transaction. Returns the entry's id."""
    cursor = db.conn.execute(
        "INSERT INTO audit_log (ts, actor_id, actor_name, action, target, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (now_iso(), actor_id, actor_name, action, target, _dump(before), _dump(after)),
    )
    return int(cursor.lastrowid or 0)


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    id_, ts, actor_id, actor_name, action, target, before, after = row
    return AuditEntry(
        id_,
        ts,
        actor_id,
        actor_name,
        action,
        target,
        json.loads(before) if before else None,
        json.loads(after) if after else None,
    )


def entries(
    db: sqlite_utils.Database,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_id: int | None = None,
    before_id: int | None = None,
    limit: int | None = PAGE_SIZE,
) -> list[AuditEntry]:
    """Newest first, filtered by time range, actor, and ``before_id`` for the next page."""
    where, params = ["1 = 1"], []  # type: list[str], list[Any]
    if since is not None:
        where.append("ts >= ?")
        params.append(to_iso(since))
    if until is not None:
        where.append("ts < ?")
        params.append(to_iso(until))
    if actor_id is not None:
        where.append("actor_id = ?")
        params.append(actor_id)
    if before_id is not None:
        where.append("id < ?")
        params.append(before_id)
    # Only fixed clauses are joined in; every value is a bound parameter.
    sql = f"SELECT {', '.join(CSV_COLUMNS)} FROM audit_log WHERE {' AND '.join(where)}"  # noqa: S608
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_entry(row) for row in db.conn.execute(sql, params)]


def to_csv(rows: Iterable[AuditEntry]) -> str:
    """The log as CSV with before/after as JSON text, for a spreadsheet or an auditor."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in rows:
        writer.writerow(
            [
                e.id,
                e.ts,
                e.actor_id or "",
                e.actor_name,
                e.action,
                e.target,
                _dump(e.before) or "",
                _dump(e.after) or "",
            ]
        )
    return out.getvalue()
