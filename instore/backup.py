"""Back up and restore a box: its SQLite file alone, or with its uploads and keys in one tar.

A backup uses SQLite's online backup API in one step: it reads a single snapshot (WAL readers
never block the services' writers, and writers never change a reader's snapshot), so the copy is
the database as it was at one instant, however busy the box. The copy is checked with
``PRAGMA integrity_check`` and only then given its name, so a file called FILE is always whole.

A restore is the opposite risk: the services hold the file open and would go on writing into the
replaced one. So it refuses while any process has the database open (unless forced), checks the
file is an instore database this release can run, and keeps the replaced database beside it.

The database is not all a box needs: members' uploads and the keys made once beside the database
(portal sessions, Web Push, BLE tokens, flag buckets) are lost with the box, and a new key logs
everyone out and breaks every push subscription. A backup named ``*.tar`` carries them too; its
restore accepts only the layout a backup writes (no links, devices or paths leading out); that
half is ``instore.backup_archive``.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

BACKUP_MODE = 0o600  # member data and password hashes: readable by the owner only
SIDE_FILES = ("-wal", "-shm")  # SQLite's WAL and shared-memory index beside the database
SAVED_SUFFIX = ".before-restore"
# A process named in a refusal is cut to this many characters: enough to tell services apart.
COMMAND_SHOWN_CHARS = 80


class BackupError(Exception):
    """A backup or restore a person must fix (missing file, wrong file, services running)."""


@dataclass(frozen=True)
class Holder:
    """A process with the database (or its WAL) open."""

    pid: int
    command: str


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    seconds: float
    versions: dict[str, int]


@dataclass(frozen=True)
class RestoreResult:
    saved: Path | None
    versions: dict[str, int]
    behind: dict[str, tuple[int, int]]  # package: (in the backup, this release) to migrate on start


def _versions(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT package, MAX(version) FROM schema_migrations GROUP BY package"
    ).fetchall()
    return {str(package): int(version) for package, version in rows}


def _match_owner(database: Path) -> None:
    """Give WAL files this (root) process created back to the database's owner.

    Opening a WAL database creates ``-wal`` and ``-shm`` when no one has it open; made by root
    (``sudo instore backup``) they would lock the unprivileged services out of their own file.
    """
    if os.geteuid() != 0 or not database.exists():
        return
    owner = database.stat()
    for suffix in SIDE_FILES:
        side = Path(f"{database}{suffix}")
        try:
            if side.stat().st_uid != owner.st_uid:
                os.chown(side, owner.st_uid, owner.st_gid)
        except FileNotFoundError:
            continue


@contextmanager
def _open(database: Path, busy_timeout_ms: int) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(database, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the WAL files
        _match_owner(database)
        yield conn
    finally:
        conn.close()
        _match_owner(database)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: sqlite3.Connection, dest: Path, busy_timeout_ms: int) -> dict[str, int]:
    """Copy one snapshot of ``source`` into the new file ``dest``; checked, synced, standalone."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_MODE)
    os.close(fd)
    with closing(sqlite3.connect(dest, timeout=busy_timeout_ms / 1000)) as target:
        source.backup(target)  # pages=-1: the whole database in one step, one snapshot
        # A backup is one self-contained file: no -wal beside it to lose when it is copied.
        target.execute("PRAGMA journal_mode = DELETE")
        verdict = target.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise BackupError(f"the copy failed its integrity check ({verdict}); nothing was kept")
        versions = _versions(target)
    with open(dest, "rb") as handle:
        os.fsync(handle.fileno())
    return versions


def _check_destination(database: Path, dest: Path, replace: bool) -> None:
    if not database.is_file():
        raise BackupError(f"there is no database at {database}; check [database] path")
    if dest.exists() and not replace:
        raise BackupError(
            f"{dest} already exists; choose a new file name, or add --replace to overwrite it"
        )
    if not dest.parent.is_dir():
        raise BackupError(f"the directory {dest.parent} does not exist; create it first")


def _put_in_place(scratch: Path, dest: Path, replace: bool) -> None:
    """Give the finished scratch file its name: over ``dest`` with ``replace``, else only if
    ``dest`` is still missing (a link fails rather than replace a file that appeared meanwhile)."""
    try:
        if replace:
            os.replace(scratch, dest)
        else:
            os.link(scratch, dest)
    except FileExistsError:
        raise BackupError(f"{dest} appeared while backing up; nothing was overwritten") from None


def backup_database(
    database: Path, dest: Path, busy_timeout_ms: int, replace: bool = False
) -> BackupResult:
    """Write a consistent copy of ``database`` to ``dest``.

    ``dest`` must not exist unless ``replace``; then the new copy takes its place in one rename,
    so a rotating backup (cron) never leaves a moment without a whole file under that name.
    """
    _check_destination(database, dest, replace)
    scratch = dest.with_name(f".{dest.name}.partial-{secrets.token_hex(4)}")
    began = time.perf_counter()
    try:
        with _open(database, busy_timeout_ms) as source:
            versions = _copy(source, scratch, busy_timeout_ms)
        _put_in_place(scratch, dest, replace)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot back up {database}: {exc}") from None
    except PermissionError as exc:
        raise BackupError(f"cannot write {exc.filename}: permission denied") from None
    finally:
        scratch.unlink(missing_ok=True)
    _fsync_dir(dest.parent)
    return BackupResult(dest, dest.stat().st_size, time.perf_counter() - began, versions)


def processes_using(database: Path) -> list[Holder]:
    """Processes (other than this one) with the database or its WAL files open, from /proc.

    Needs no systemd and sees a service however it was started; as a normal user it sees only
    that user's processes, which is every instore service when run as the ``instore`` user.
    """
    wanted = {str(database.resolve()) + suffix for suffix in ("", *SIDE_FILES)}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
        except OSError:  # gone, or not ours to look at
            continue
        if links & wanted:
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                raw = b""
            command = raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"
            found.append(Holder(int(entry.name), command[:COMMAND_SHOWN_CHARS]))
    return sorted(found, key=lambda holder: holder.pid)


def inspect_backup(path: Path, latest: dict[str, int], shown: str = "") -> dict[str, int]:
    """The schema versions in a backup, after checking it is an instore database we can run.

    ``shown`` names the file in refusals when ``path`` is a copy unpacked from an archive.
    """
    if shown:
        try:
            return inspect_backup(path, latest)
        except BackupError as exc:
            raise BackupError(str(exc).replace(str(path), shown)) from None
    if not path.is_file():
        raise BackupError(f"there is no file at {path}")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                raise BackupError(f"{path} is damaged (integrity check: {verdict}); not restored")
            try:
                versions = _versions(conn)
            except sqlite3.OperationalError:
                versions = {}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not an SQLite database ({exc}); not restored") from None
    if "instore" not in versions:
        raise BackupError(
            f"{path} is an SQLite database but not an instore one (no instore schema); not restored"
        )
    ahead = {p: (have, latest.get(p, 0)) for p, have in versions.items() if have > latest.get(p, 0)}
    if ahead:
        parts = ", ".join(f"{p} {have} > {want}" for p, (have, want) in sorted(ahead.items()))
        raise BackupError(
            f"{path} comes from a newer instore than this one ({parts}); upgrade instore to "
            "that release first, then restore"
        )
    return versions


def _set_aside(database: Path, saved: Path, busy_timeout_ms: int, in_use: bool) -> None:
    """Rename the live database (and its WAL files) to ``saved``, whole.

    When no one has it open, its WAL is first folded into the main file so ``saved`` is one file.
    """
    if not in_use:
        try:
            with _open(database, busy_timeout_ms) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError:
            pass  # a damaged database is a reason to restore: keep its files as they are
    for suffix in ("", *SIDE_FILES):
        live = Path(f"{database}{suffix}")
        if live.exists():
            os.replace(live, Path(f"{saved}{suffix}"))


def _check_restore(
    backup: Path, database: Path, latest: dict[str, int], force: bool, shown: str = ""
) -> tuple[dict[str, int], list[Holder], Path]:
    """Every refusal of a restore, before anything is changed: (versions, holders, saved path)."""
    versions = inspect_backup(backup, latest, shown)
    if database.exists() and database.resolve() == backup.resolve():
        raise BackupError(f"{backup} is the live database itself; give a backup file")
    holders = processes_using(database)
    if holders and not force:
        named = ", ".join(f"pid {h.pid} ({h.command})" for h in holders)
        raise BackupError(
            f"the database is in use by {named}: stop the services first "
            "(systemctl stop 'instore-*'), or add --force to restore under them"
        )
    saved = database.with_name(database.name + SAVED_SUFFIX)
    if database.exists() and saved.exists():
        raise BackupError(
            f"{saved} already exists from an earlier restore; move it somewhere safe first, "
            "so the database it holds is not lost"
        )
    if not database.parent.is_dir():
        raise BackupError(f"the directory {database.parent} does not exist; create it first")
    return versions, holders, saved


def _swap_database(
    backup: Path,
    database: Path,
    latest: dict[str, int],
    busy_timeout_ms: int,
    checked: tuple[dict[str, int], list[Holder], Path],
) -> RestoreResult:
    """Copy the checked ``backup`` beside ``database`` and rename it into place."""
    versions, holders, saved = checked
    scratch = database.with_name(f".{database.name}.restoring-{secrets.token_hex(4)}")
    try:
        with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as source:
            _copy(source, scratch, busy_timeout_ms)
        like = database if database.exists() else database.parent
        if os.geteuid() == 0:
            os.chown(scratch, like.stat().st_uid, like.stat().st_gid)
        if database.exists():
            os.chmod(scratch, database.stat().st_mode & 0o777)
            _set_aside(database, saved, busy_timeout_ms, in_use=bool(holders))
        os.replace(scratch, database)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot restore from {backup}: {exc}") from None
    finally:
        scratch.unlink(missing_ok=True)
    _fsync_dir(database.parent)
    behind = {
        package: (versions.get(package, 0), want)
        for package, want in sorted(latest.items())
        if versions.get(package, 0) < want
    }
    return RestoreResult(saved if saved.exists() else None, versions, behind)


def restore_database(
    backup: Path,
    database: Path,
    latest: dict[str, int],
    busy_timeout_ms: int,
    force: bool = False,
) -> RestoreResult:
    """Put ``backup`` in place of ``database``, keeping the replaced one as ``.before-restore``.

    ``latest`` is each package's newest schema version in this release: a backup from a newer
    release is refused, an older one is migrated by the services when they start.
    """
    checked = _check_restore(backup, database, latest, force)
    return _swap_database(backup, database, latest, busy_timeout_ms, checked)
