"""`instore backup` while another process writes, and `instore restore` with its refusals."""

from __future__ import annotations

import io
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from instore.cli import main
from instore.db import open_database

WRITER_TIMEOUT_SECONDS = 60.0
FILLER_ROWS = 4000  # ~16 MB of blobs: the copy takes long enough for the writer to commit during it
# A writer committing one event and the counter that must always equal the number of events, in
# one transaction each time: a copy that mixed two instants would break the equality.
WRITER = """
import sqlite3, sys, time
from pathlib import Path
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("PRAGMA journal_mode = WAL")
stop = Path(sys.argv[2])
print("ready", flush=True)
n = 0
while not stop.exists():
    n += 1
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO events (ts, kind, payload) VALUES ('t', 'tick', '{}')")
    conn.execute(
        "INSERT INTO cursors (consumer, last_id, updated_at) VALUES ('ticks', ?, 't')"
        " ON CONFLICT(consumer) DO UPDATE SET last_id = excluded.last_id", (n,)
    )
    conn.execute("COMMIT")
"""
HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT COUNT(*) FROM events").fetchone()
print("open", flush=True)
time.sleep(600)
"""


def cli(database: Path, *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env={"INSTORE_DATABASE_PATH": str(database)})


def count(database: Path, sql: str) -> int:
    with closing(sqlite3.connect(database)) as conn:
        return int(conn.execute(sql).fetchone()[0])


def ticks(database: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(database)) as conn:
        events = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'tick'").fetchone()[0]
        row = conn.execute("SELECT last_id FROM cursors WHERE consumer = 'ticks'").fetchone()
    return int(events), int(row[0]) if row else 0


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """A migrated database with some bulk in it."""
    database = tmp_path / "var" / "instore.db"
    db = open_database(database)
    with closing(db.conn):
        db.conn.execute("BEGIN")
        db.conn.executemany(
            "INSERT INTO events (ts, kind, payload) VALUES ('t', 'filler', ?)",
            [(os.urandom(2048).hex(),) for _ in range(FILLER_ROWS)],
        )
        db.conn.execute("COMMIT")
    return database


@pytest.fixture
def holder(live: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process with the database open, as a running service has."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(live)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "open"
    yield process
    process.kill()
    process.wait()


def test_the_commands_are_registered() -> None:
    missing = {"backup", "restore"} - set(main.commands)
    assert not missing, "add 'instore.cli_backup' to DEFAULT_PLUGINS in instore/plugins.py"


def test_backup_while_another_process_writes_is_one_consistent_instant(
    live: Path, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(live), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + WRITER_TIMEOUT_SECONDS
        while ticks(live)[0] < 50:
            assert time.monotonic() < deadline, "the writer never committed"
            time.sleep(0.01)
        before = ticks(live)[0]
        result = cli(live, "backup", str(tmp_path / "copy.db"))
        after = ticks(live)[0]
    finally:
        stop.touch()
        writer.wait(timeout=WRITER_TIMEOUT_SECONDS)
    assert result.exit_code == 0, result.output
    copy = tmp_path / "copy.db"
    with closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    events, counter = ticks(copy)
    assert events == counter, "the copy mixes two moments"
    assert before <= events <= after
    assert after > before, "the writer did not write while the copy was made"
    assert count(copy, "SELECT COUNT(*) FROM events WHERE kind = 'filler'") == FILLER_ROWS
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert "schema " in result.output and "instore " in result.output


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("exists.db", "already exists; choose a new file name, or add --replace"),
        ("no/such/dir/copy.db", "does not exist; create it first"),
    ],
)
def test_backup_refusals(live: Path, tmp_path: Path, target: str, message: str) -> None:
    (tmp_path / "exists.db").write_text("keep me")
    result = cli(live, "backup", str(tmp_path / target))
    assert result.exit_code == 2
    assert message in result.output
    assert (tmp_path / "exists.db").read_text() == "keep me"


def test_backup_replace_swaps_in_a_new_copy(live: Path, tmp_path: Path) -> None:
    target = tmp_path / "nightly.db"
    target.write_text("last night's")
    result = cli(live, "backup", "--replace", str(target))
    assert result.exit_code == 0, result.output
    assert count(target, "SELECT COUNT(*) FROM events WHERE kind = 'filler'") == FILLER_ROWS
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_backup_of_a_missing_database(tmp_path: Path) -> None:
    result = cli(tmp_path / "none.db", "backup", str(tmp_path / "copy.db"))
    assert result.exit_code == 2
    assert "there is no database at" in result.output
    assert not (tmp_path / "copy.db").exists()


def test_restore_puts_the_backup_back_and_keeps_the_replaced_database(
    live: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    assert cli(live, "backup", str(backup)).exit_code == 0
    with closing(sqlite3.connect(live)) as conn:
        conn.execute("INSERT INTO events (ts, kind, payload) VALUES ('t', 'after', '{}')")
        conn.commit()
    live.chmod(0o640)
    result = cli(live, "restore", str(backup))
    assert result.exit_code == 0, result.output
    assert count(live, "SELECT COUNT(*) FROM events WHERE kind = 'after'") == 0
    saved = live.with_name("instore.db.before-restore")
    assert count(saved, "SELECT COUNT(*) FROM events WHERE kind = 'after'") == 1
    assert f"kept as {saved}" in result.output
    assert stat.S_IMODE(live.stat().st_mode) == 0o640  # the services' file mode, not the backup's


def test_restore_refuses_while_the_database_is_open(
    live: Path, tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    backup = tmp_path / "backup.db"
    assert cli(live, "backup", str(backup)).exit_code == 0
    result = cli(live, "restore", str(backup))
    assert result.exit_code == 2
    assert f"in use by pid {holder.pid}" in result.output
    assert "stop the services first" in result.output
    assert not live.with_name("instore.db.before-restore").exists()
    forced = cli(live, "restore", "--force", str(backup))
    assert forced.exit_code == 0, forced.output
    assert "now restart the services" in forced.output


def make_foreign(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.commit()


def make_newer(live: Path, path: Path) -> None:
    assert cli(live, "backup", str(path)).exit_code == 0
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "INSERT INTO schema_migrations VALUES ('community', 999, 'from the future', 't')"
        )
        conn.commit()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda live, path: path.write_bytes(b"not a database at all" * 100), "not an SQLite"),
        (lambda live, path: make_foreign(path), "not an instore one"),
        (make_newer, "newer instore than this one (community 999 >"),
        (lambda live, path: None, "there is no file at"),
    ],
    ids=["garbage", "foreign", "newer", "missing"],
)
def test_restore_refuses_a_file_it_must_not_run_on(
    live: Path, tmp_path: Path, make: Any, message: str
) -> None:
    candidate = tmp_path / "candidate.db"
    make(live, candidate)
    before = live.read_bytes()
    result = cli(live, "restore", str(candidate))
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert live.read_bytes() == before


def test_restore_refuses_to_overwrite_an_earlier_saved_database(live: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    assert cli(live, "backup", str(backup)).exit_code == 0
    assert cli(live, "restore", str(backup)).exit_code == 0
    again = cli(live, "restore", str(backup))
    assert again.exit_code == 2
    assert "already exists from an earlier restore" in again.output


def test_restore_of_an_older_schema_says_the_services_will_migrate_it(
    live: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    assert cli(live, "backup", str(backup)).exit_code == 0
    with closing(sqlite3.connect(backup)) as conn:
        conn.execute(
            "DELETE FROM schema_migrations WHERE package = 'offers' AND version ="
            " (SELECT MAX(version) FROM schema_migrations WHERE package = 'offers')"
        )
        conn.commit()
    result = cli(live, "restore", str(backup))
    assert result.exit_code == 0, result.output
    assert "bring its schema up to date" in result.output


# --- a .tar backup: the database with the uploads and keys beside it --------------------------

UPLOADS = {
    "avatars/7.png": b"\x89PNG avatar of member 7",
    "board/spring-sale.jpg": os.urandom(4096),
    "products/sku-12.webp": b"RIFF product picture",
}


def make_box_files(var_dir: Path) -> dict[str, bytes]:
    """Uploads as members leave them and every key made by the code that really makes it."""
    from instore.backup_archive import KEY_FILES
    from instore.keys import stored_secret
    from offers.channels.webpush import ensure_vapid_keys

    for name, data in UPLOADS.items():
        (var_dir / "uploads" / name).parent.mkdir(parents=True, exist_ok=True)
        (var_dir / "uploads" / name).write_bytes(data)
    for name in (KEY_FILES.portal_sessions, KEY_FILES.ble_tokens, KEY_FILES.flags):
        stored_secret(var_dir, name)
    ensure_vapid_keys(var_dir)
    return {name: (var_dir / name).read_bytes() for name in KEY_FILES}


def state(var_dir: Path) -> dict[str, bytes]:
    """Every file under ``var_dir`` and its bytes: to show a refused restore changed nothing."""
    return {
        str(path.relative_to(var_dir)): path.read_bytes()
        for path in sorted(var_dir.rglob("*"))
        if path.is_file()
    }


def test_the_key_file_names_match_the_modules_that_write_them() -> None:
    import offers.channels.webpush
    import portal
    import presence.plugins
    from instore import flags
    from instore.backup_archive import KEY_FILES

    assert KEY_FILES.portal_sessions == portal.SECRET_KEY_FILE
    assert KEY_FILES.web_push == offers.channels.webpush.VAPID_KEY_FILE
    assert KEY_FILES.ble_tokens == presence.plugins.TOKEN_KEY_FILE
    assert KEY_FILES.flags == flags.FLAG_KEY_FILE


def test_tar_backup_restores_database_uploads_and_keys_on_a_new_box(
    live: Path, tmp_path: Path
) -> None:
    from instore.backup_archive import KEY_FILES

    keys = make_box_files(live.parent)
    archive = tmp_path / "box.tar"
    made = cli(live, "backup", str(archive))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert f"uploads: {len(UPLOADS)} files" in made.output
    assert f"keys: {', '.join(KEY_FILES)}" in made.output

    # The new box has been installed and started once: its own database, key and an upload.
    new = tmp_path / "new" / "instore.db"
    open_database(new).conn.close()
    (new.parent / KEY_FILES.portal_sessions).write_text("the new box's own key")
    (new.parent / "uploads").mkdir()
    (new.parent / "uploads" / "test.png").write_bytes(b"made on the new box")

    result = cli(new, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert count(new, "SELECT COUNT(*) FROM events WHERE kind = 'filler'") == FILLER_ROWS
    for name, data in UPLOADS.items():
        assert (new.parent / "uploads" / name).read_bytes() == data
    assert not (new.parent / "uploads" / "test.png").exists()
    assert (
        new.parent / "uploads.before-restore" / "test.png"
    ).read_bytes() == b"made on the new box"
    for name, data in keys.items():
        assert (new.parent / name).read_bytes() == data, name
        assert stat.S_IMODE((new.parent / name).stat().st_mode) == 0o600, name
    saved_key = new.parent / f"{KEY_FILES.portal_sessions}.before-restore"
    assert saved_key.read_text() == "the new box's own key"
    assert f"restored {len(UPLOADS)} uploaded files" in result.output
    assert f"kept as {saved_key}" in result.output
    assert not [p for p in new.parent.iterdir() if p.name.startswith(".")], "staging left behind"


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def add_link(archive: tarfile.TarFile, name: str, kind: bytes, target: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    archive.addfile(info)


@pytest.mark.parametrize(
    "evil",
    [
        lambda archive: add_bytes(archive, "../evil", b"outside the var dir"),
        lambda archive: add_bytes(archive, "uploads/../../evil", b"outside the var dir"),
        lambda archive: add_bytes(archive, "/tmp/instore-test-evil", b"absolute"),
        lambda archive: add_link(archive, "uploads/passwd", tarfile.SYMTYPE, "/etc/passwd"),
        lambda archive: add_link(archive, "keys/secret_key", tarfile.LNKTYPE, "instore.db"),
        lambda archive: add_link(archive, "uploads/tty", tarfile.CHRTYPE),
        lambda archive: add_bytes(archive, "keys/authorized_keys", b"ssh-ed25519 AAAA"),
    ],
    ids=["dotdot", "dotdot-inside", "absolute", "symlink", "hardlink", "device", "unknown-key"],
)
def test_restore_refuses_an_archive_a_backup_never_writes(
    live: Path, tmp_path: Path, evil: Any
) -> None:
    make_box_files(live.parent)
    good = tmp_path / "good.db"
    assert cli(live, "backup", str(good)).exit_code == 0
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as handle:
        handle.add(good, "instore.db")
        evil(handle)
    before = state(live.parent)
    names = sorted(os.listdir(live.parent))
    result = cli(live, "restore", str(archive))
    assert result.exit_code == 2, result.output
    assert "which an instore backup never does" in result.output
    assert "Traceback" not in result.output
    assert state(live.parent) == before
    assert sorted(os.listdir(live.parent)) == names, "a staging or saved file was left"
    assert not (tmp_path / "evil").exists() and not Path("/tmp/instore-test-evil").exists()


def test_tar_restore_refuses_while_the_database_is_open(
    live: Path, tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    make_box_files(live.parent)
    archive = tmp_path / "box.tar"
    assert cli(live, "backup", str(archive)).exit_code == 0
    (live.parent / "uploads" / "newer.png").write_bytes(b"after the backup")
    before = state(live.parent)
    result = cli(live, "restore", str(archive))
    assert result.exit_code == 2
    assert f"in use by pid {holder.pid}" in result.output
    assert state(live.parent) == before
    assert not [p for p in live.parent.iterdir() if "before-restore" in p.name]
    assert not [p for p in live.parent.iterdir() if p.name.startswith(".instore-restore")]


def test_tar_restore_refuses_a_newer_database_naming_the_archive(
    live: Path, tmp_path: Path
) -> None:
    newer = tmp_path / "newer.db"
    make_newer(live, newer)
    archive = tmp_path / "newer.tar"
    with tarfile.open(archive, "w") as handle:
        handle.add(newer, "instore.db")
    before = state(live.parent)
    result = cli(live, "restore", str(archive))
    assert result.exit_code == 2
    assert f"the database in {archive} comes from a newer instore" in result.output
    assert state(live.parent) == before
