"""Is the database usable by this release? The read-only answer ``/healthz``, ``instore doctor``
and ``instore status`` share.

Read-only on purpose: a health probe runs every few seconds, from a load balancer, systemd or
the upgrade script, and must neither create tables nor take the write lock (``db.upgrade`` and
``pending_migrations`` may do both).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import sqlite_utils

from instore.db import all_migrations


@dataclass(frozen=True)
class SchemaState:
    """Each package's recorded schema version against the newest this release knows."""

    current: dict[str, int]
    latest: dict[str, int]
    behind: dict[str, tuple[int, int]] = field(default_factory=dict)  # package: (have, want)
    ahead: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """``current``, ``behind`` (run ``instore db upgrade``) or ``ahead`` (older release)."""
        if self.ahead:
            return "ahead"
        return "behind" if self.behind else "current"

    def describe(self) -> str:
        """What is wrong with the schema, if anything, naming the packages and versions."""
        if self.ahead:
            parts = ", ".join(f"{p} {have} > {want}" for p, (have, want) in self.ahead.items())
            return f"the database is newer than this release ({parts})"
        if self.behind:
            parts = ", ".join(f"{p} {have} of {want}" for p, (have, want) in self.behind.items())
            return f"the database schema is behind this release ({parts})"
        return "the database schema is current"

    def advice(self) -> str:
        """What to do about it; empty when current."""
        if self.ahead:
            return "upgrade instore, or restore a backup taken before the newer release"
        return "run `instore db upgrade`" if self.behind else ""

    def explain(self) -> str:
        """One sentence for a person: what is wrong and what to do."""
        advice = self.advice()
        return self.describe() + (f": {advice}" if advice else "")


def latest_versions() -> dict[str, int]:
    """The newest schema version of each package this release carries."""
    latest: dict[str, int] = {}
    for step in all_migrations():
        latest[step.package] = max(latest.get(step.package, 0), step.version)
    return latest


def schema_state(db: sqlite_utils.Database) -> SchemaState:
    """Compare recorded versions with this release's; raises sqlite3.Error if unreadable."""
    try:
        rows = db.conn.execute(
            "SELECT package, MAX(version) FROM schema_migrations GROUP BY package"
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        rows = []  # a new, empty file: everything is behind
    current = {str(package): int(version) for package, version in rows}
    latest = latest_versions()
    behind = {
        package: (current.get(package, 0), want)
        for package, want in sorted(latest.items())
        if current.get(package, 0) < want
    }
    ahead = {
        package: (have, latest.get(package, 0))
        for package, have in sorted(current.items())
        if have > latest.get(package, 0)
    }
    return SchemaState(current, latest, behind, ahead)
