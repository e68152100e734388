"""One SQLite file in WAL mode shared by every process, and the migration runner.

Connections are opened in autocommit mode (``isolation_level=None``) so that a multi-statement
change is an explicit ``BEGIN IMMEDIATE … COMMIT`` (see ``transaction``): the writer takes the lock
up front instead of failing half-way on an upgrade from a read lock.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from instore.clock import now_iso
from instore.migrations import Migration

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 5000  # longer than any single write we make; shorter than a user waits


class DatabaseError(Exception):
    """A database problem a person can act on (unreadable file, newer schema than this code)."""


@dataclass(frozen=True)
class AppliedMigration:
    package: str
    version: int
    description: str


def connect(
    path: str | Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> sqlite_utils.Database:
    """Open the database file with the pragmas every process relies on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL makes NORMAL durable across application crashes; only power loss can drop the
        # last transactions, which the outbox and reconcile loops tolerate.
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path}: cannot open as an SQLite database: {exc}") from None
    return sqlite_utils.Database(conn)


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run a block as one write transaction, rolled back if it raises.

    Inside a caller's transaction it becomes a savepoint, so a domain function (create a zone)
    and the console's audit entry about it commit or roll back together.
    """
    if db.conn.in_transaction:
        with atomic(db, "instore_nested"):
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


@contextmanager
def atomic(db: sqlite_utils.Database, name: str = "instore_atomic") -> Iterator[None]:
    """One write transaction, or a savepoint named ``name`` inside the caller's.

    Engines that are called both on their own (tests, the CLI) and from ``events.consume`` (which
    wraps a handler and its cursor advance in one transaction) use this, so their writes are
    all-or-nothing either way.
    """
    if not db.conn.in_transaction:
        with transaction(db):
            yield
        return
    db.conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        db.conn.execute(f"ROLLBACK TO {name}")
        db.conn.execute(f"RELEASE {name}")
        raise
    db.conn.execute(f"RELEASE {name}")


def all_migrations() -> list[Migration]:
    """Every package's steps, from the plug-in hooks, in the order they must run."""
    from instore.plugins import pm

    steps = [step for batch in pm.hook.instore_migrations() for step in batch]
    # The kernel first (others reference its tables), then packages by name, each by version.
    return sorted(steps, key=lambda m: (m.package != "instore", m.package, m.version))


def _ensure_version_table(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
            package TEXT NOT NULL,
            version INTEGER NOT NULL,
            description TEXT NOT NULL,
            applied_at TEXT NOT NULL,
            PRIMARY KEY (package, version)
        )"""
    )


def schema_versions(db: sqlite_utils.Database) -> dict[str, int]:
    """The recorded schema version of each package (0 when none applied)."""
    _ensure_version_table(db)
    rows = db.conn.execute(
        "SELECT package, MAX(version) FROM schema_migrations GROUP BY package"
    ).fetchall()
    return {package: version for package, version in rows}


def pending_migrations(db: sqlite_utils.Database) -> list[Migration]:
    current = schema_versions(db)
    known = all_migrations()
    latest: dict[str, int] = {}
    for step in known:
        latest[step.package] = max(latest.get(step.package, 0), step.version)
    for package, version in current.items():
        if version > latest.get(package, 0):
            raise DatabaseError(
                f"the database has {package} schema version {version}, newer than this "
                f"instore knows ({latest.get(package, 0)}); upgrade instore or restore a backup"
            )
    return [step for step in known if step.version > current.get(step.package, 0)]


def upgrade(db: sqlite_utils.Database) -> list[AppliedMigration]:
    """Apply every pending step, each in its own transaction, and record it. Idempotent."""
    applied = []
    for step in pending_migrations(db):
        with transaction(db):
            # Re-check inside the lock: another process may have upgraded meanwhile.
            done = db.conn.execute(
                "SELECT 1 FROM schema_migrations WHERE package = ? AND version = ?",
                (step.package, step.version),
            ).fetchone()
            if done:
                continue
            for statement in step.statements:
                db.conn.execute(statement)
            db.conn.execute(
                "INSERT INTO schema_migrations (package, version, description, applied_at)"
                " VALUES (?, ?, ?, ?)",
                (step.package, step.version, step.description, now_iso()),
            )
        log.info(
            "schema upgraded",
            extra={"package": step.package, "version": step.version},
        )
        applied.append(AppliedMigration(step.package, step.version, step.description))
    return applied


def open_database(
    path: str | Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> sqlite_utils.Database:
    """Connect and bring the schema up to date: what every process does on start."""
    db = connect(path, busy_timeout_ms)
    try:
        upgrade(db)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path}: cannot upgrade the schema: {exc}") from None
    return db
