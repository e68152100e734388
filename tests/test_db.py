"""The database: pragmas, migrations, and upgrades that keep every row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from instore import members
from instore.db import (
    DatabaseError,
    all_migrations,
    connect,
    open_database,
    pending_migrations,
    schema_versions,
)
from instore.migrations import KERNEL_MIGRATIONS

KERNEL_LATEST = max(step.version for step in KERNEL_MIGRATIONS)  # what an upgrade ends at
FIXTURE = Path(__file__).parent / "fixtures" / "instore-schema-v1.sql"
V1_TABLES = ("members", "credentials", "consents", "devices", "sessions", "events", "cursors")


def load_fixture(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(FIXTURE.read_text())
    conn.close()


def rows(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()  # noqa: S608
    finally:
        conn.close()


def test_pragmas(tmp_path: Path) -> None:
    db = connect(tmp_path / "a.db")
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_fresh_database_records_every_schema_version(tmp_path: Path) -> None:
    db = open_database(tmp_path / "a.db")
    latest = max(step.version for step in KERNEL_MIGRATIONS)
    assert schema_versions(db)["instore"] == latest
    assert pending_migrations(db) == []
    assert {"members", "sessions", "events", "cursors"} <= set(db.table_names())


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    open_database(tmp_path / "a.db").conn.close()
    db = open_database(tmp_path / "a.db")
    count = db.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
    assert count == len(all_migrations())


def test_upgrade_from_version_1_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    load_fixture(path)
    before = {table: rows(path, table) for table in V1_TABLES}
    assert all(before.values()), "the fixture must have rows in every table"

    db = open_database(path)
    assert schema_versions(db)["instore"] == KERNEL_LATEST
    for table in V1_TABLES:
        after = rows(path, table)
        assert len(after) == len(before[table]), table
        # Old columns keep their values; new columns are appended at the end.
        for old, new in zip(before[table], after, strict=True):
            assert new[: len(old)] == old, table
    # The backfill: sessions from before idle timeouts idle out only when they expire.
    sessions = list(db.query("SELECT expires_at, idle_deadline FROM sessions"))
    assert all(row["idle_deadline"] == row["expires_at"] for row in sessions)
    # A member from the old version can still sign in with their old password.
    assert members.authenticate(db, "ana@example.com", "old-version-password") is not None
    assert members.current_consents(db, 1)["location"]["granted"] is False


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = open_database(tmp_path / "a.db")
    db.conn.execute(
        "INSERT INTO schema_migrations VALUES ('instore', 99, 'future', '2030-01-01T00:00:00Z')"
    )
    with pytest.raises(DatabaseError, match="newer than this instore knows"):
        open_database(tmp_path / "a.db")


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from instore import db as db_module
    from instore.migrations import Migration

    bad = Migration("zz_test", 1, "half-broken", ("CREATE TABLE ok_table (x)", "NOT SQL"))
    original = db_module.all_migrations
    monkeypatch.setattr(db_module, "all_migrations", lambda: [*original(), bad])
    with pytest.raises(DatabaseError):
        open_database(tmp_path / "a.db")
    db = connect(tmp_path / "a.db")
    assert "ok_table" not in db.table_names()
    assert "zz_test" not in schema_versions(db)
    assert schema_versions(db)["instore"] == KERNEL_LATEST  # the good steps before it stay applied


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match=r"junk\.db"):
        open_database(path)
