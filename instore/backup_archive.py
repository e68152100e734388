"""Back up a box to one tar (database, members' uploads, the keys beside the database) and
restore it on a new box.

The database half is ``instore.backup``'s (online backup, checks, the swap that keeps the replaced
file). This half adds what a box cannot make again: uploads and keys. Its restore accepts only the
layout a backup writes — regular files and folders under known names, no links, devices or paths
leading out — and checks everything before anything on the box changes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from instore.backup import (
    BACKUP_MODE,
    SAVED_SUFFIX,
    BackupError,
    BackupResult,
    RestoreResult,
    _check_destination,
    _check_restore,
    _copy,
    _fsync_dir,
    _open,
    _put_in_place,
    _swap_database,
)
from instore.flags import FLAG_KEY_FILE
from instore.member_data import UPLOADS_DIRNAME

ARCHIVE_SUFFIX = ".tar"  # a backup FILE with this ending holds uploads and keys beside the database
ARCHIVE_DATABASE = "instore.db"  # the database's name inside an archive, whatever it is on the box
ARCHIVE_KEYS = "keys"  # the folder inside an archive that holds the key files
KEY_MODE = 0o600  # keys sign sessions and tokens: readable by the services' user only
STAGING_MODE = 0o700  # an archive is unpacked beside the database, where no one else may look


class KeyFiles(NamedTuple):
    """Key files a box makes once beside its database; a new box without them loses their work.

    Listed rather than imported so ``instore`` does not import the portal, offers and presence
    packages; tests/test_backup.py fails if one of those modules names its file differently.
    """

    portal_sessions: str  # portal/__init__.py SECRET_KEY_FILE: members' portal sessions
    web_push: str  # offers/channels/webpush.py VAPID_KEY_FILE: push subscriptions are bound to it
    ble_tokens: str  # presence/plugins.py TOKEN_KEY_FILE: the tokens the app advertises over BLE
    flags: str  # instore/flags.py FLAG_KEY_FILE: which members a flag's rollout takes in


KEY_FILES = KeyFiles("secret_key", "vapid_private.pem", "ble_token_key", FLAG_KEY_FILE)


@dataclass(frozen=True)
class ArchiveResult:
    """What a ``.tar`` backup holds, for the person who made it."""

    database: BackupResult  # path and size of the whole archive; versions of its database
    database_size: int
    uploads: int
    upload_bytes: int
    skipped: int  # links and special files under uploads/, which a restore would refuse
    keys: tuple[str, ...]


@dataclass(frozen=True)
class ArchiveRestoreResult:
    database: RestoreResult
    uploads: int
    saved_uploads: Path | None
    keys: tuple[str, ...]
    saved_keys: tuple[Path, ...]


def is_archive(path: Path) -> bool:
    """True for a tar file (a backup with files), whatever its name; False for anything else."""
    try:
        return path.is_file() and tarfile.is_tarfile(path)
    except OSError:
        return False


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No owner names or ids in the archive: a restore gives files to the database's owner."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.name == ARCHIVE_DATABASE or info.name.startswith(f"{ARCHIVE_KEYS}/"):
        info.mode = KEY_MODE
    return info


def _add_uploads(archive: tarfile.TarFile, uploads: Path) -> tuple[int, int, int]:
    """Add the uploads tree (directories and regular files only): (files, bytes, skipped)."""
    files = size = skipped = 0
    for root, dirs, names in os.walk(uploads):
        dirs.sort()
        for name in ["", *sorted(names)]:
            path = Path(root, name) if name else Path(root)
            try:
                mode = path.lstat().st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    skipped += 1
                    continue
                arcname = PurePosixPath(UPLOADS_DIRNAME, path.relative_to(uploads).as_posix())
                archive.add(path, str(arcname), recursive=False, filter=_plain)
            except FileNotFoundError:  # deleted by a service while we walked
                continue
            if stat.S_ISREG(mode):
                files += 1
                size += path.stat().st_size
    return files, size, skipped


def backup_archive(
    database: Path, dest: Path, busy_timeout_ms: int, replace: bool = False
) -> ArchiveResult:
    """Write ``dest`` (mode 0600): a tar of the database, the uploads and the key files.

    The database is one online-backup snapshot taken first; uploads written after it are extra
    files a restore keeps harmlessly. Like a database backup, ``dest`` appears whole or not at all.
    """
    _check_destination(database, dest, replace)
    token = secrets.token_hex(4)
    scratch = dest.with_name(f".{dest.name}.partial-{token}")
    snapshot = dest.with_name(f".{dest.name}.db-{token}")
    began = time.perf_counter()
    try:
        with _open(database, busy_timeout_ms) as source:
            versions = _copy(source, snapshot, busy_timeout_ms)
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_MODE)
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as archive:
                archive.add(snapshot, ARCHIVE_DATABASE, filter=_plain)
                files, size, skipped = _add_uploads(archive, database.parent / UPLOADS_DIRNAME)
                keys = tuple(name for name in KEY_FILES if (database.parent / name).is_file())
                for name in keys:
                    archive.add(database.parent / name, f"{ARCHIVE_KEYS}/{name}", filter=_plain)
            handle.flush()
            os.fsync(handle.fileno())
        database_size = snapshot.stat().st_size
        _put_in_place(scratch, dest, replace)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot back up {database}: {exc}") from None
    except OSError as exc:
        raise BackupError(f"cannot back up to {dest}: {exc.filename}: {exc.strerror}") from None
    finally:
        scratch.unlink(missing_ok=True)
        snapshot.unlink(missing_ok=True)
    _fsync_dir(dest.parent)
    whole = BackupResult(dest, dest.stat().st_size, time.perf_counter() - began, versions)
    return ArchiveResult(whole, database_size, files, size, skipped, keys)


def _allowed(info: tarfile.TarInfo) -> bool:
    """The layout a backup writes: instore.db, uploads/…, keys/<known key>; files and folders."""
    parts = PurePosixPath(info.name).parts
    if info.name.startswith("/") or not parts or ".." in parts:
        return False
    if not (info.isfile() or info.isdir()):
        return False
    if parts == (ARCHIVE_DATABASE,):
        return info.isfile()
    if parts[0] == ARCHIVE_KEYS:
        return (len(parts) == 1 and info.isdir()) or (len(parts) == 2 and parts[1] in KEY_FILES)
    return parts[0] == UPLOADS_DIRNAME


def _unpack(path: Path, staging: Path) -> None:
    """Check every member of the archive ``path`` and only then unpack it into ``staging``."""
    try:
        with tarfile.open(path) as archive:
            members = archive.getmembers()
            seen: set[str] = set()
            for info in members:
                if not _allowed(info) or info.name in seen:
                    raise BackupError(
                        f"{path} holds {info.name!r}, which an instore backup never does "
                        "(a link, device, duplicate or path outside the backup); not restored"
                    )
                seen.add(info.name)
            if ARCHIVE_DATABASE not in seen:
                raise BackupError(f"{path} holds no {ARCHIVE_DATABASE}; not an instore backup")
            # Python 3.11.4+ also filters each member itself (absolute paths, links, devices).
            safety: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            archive.extractall(staging, members=members, **safety)  # noqa: S202 - all checked above
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"cannot unpack {path}: {exc}; not restored") from None


def _give_to(tree: Path, like: Path) -> None:
    """Key files 0600; when run as root, everything owned as ``like`` (the database) is."""
    keys = tree / ARCHIVE_KEYS
    for key in keys.iterdir() if keys.is_dir() else ():
        key.chmod(KEY_MODE)
    if os.geteuid() != 0:
        return
    owner = like.stat()
    for root, dirs, names in os.walk(tree):
        for name in ["", *dirs, *names]:
            os.chown(Path(root, name), owner.st_uid, owner.st_gid)


def restore_archive(
    backup: Path,
    database: Path,
    latest: dict[str, int],
    busy_timeout_ms: int,
    force: bool = False,
) -> ArchiveRestoreResult:
    """Restore a ``.tar`` backup: the database as :func:`restore_database` does, then the
    uploads folder and the key files it holds, each replaced one kept as ``*.before-restore``.

    Everything is unpacked and checked beside the database first, so a refusal changes nothing.
    Keys the archive lacks are left as they are (a box makes them when first needed).
    """
    var_dir = database.parent
    if not var_dir.is_dir():
        raise BackupError(f"the directory {var_dir} does not exist; create it first")
    staging = var_dir / f".instore-restore-{secrets.token_hex(4)}"
    staging.mkdir(mode=STAGING_MODE)
    try:
        _unpack(backup, staging)
        staged = staging / ARCHIVE_DATABASE
        shown = f"the database in {backup}"
        checked = _check_restore(staged, database, latest, force, shown)
        uploads = var_dir / UPLOADS_DIRNAME
        old_uploads = var_dir / f"{UPLOADS_DIRNAME}{SAVED_SUFFIX}"
        keys = tuple(name for name in KEY_FILES if (staging / ARCHIVE_KEYS / name).is_file())
        for live, saved in [(uploads, old_uploads)] + [
            (var_dir / name, var_dir / f"{name}{SAVED_SUFFIX}") for name in keys
        ]:
            if live.exists() and saved.exists():
                raise BackupError(
                    f"{saved} already exists from an earlier restore; move it somewhere safe "
                    "first, so what it holds is not lost"
                )
        _give_to(staging, database if database.exists() else var_dir)
        restored = _swap_database(staged, database, latest, busy_timeout_ms, checked)
        if uploads.exists():
            os.replace(uploads, old_uploads)
        files = 0
        if (staging / UPLOADS_DIRNAME).is_dir():
            os.replace(staging / UPLOADS_DIRNAME, uploads)
            files = sum(len(names) for _, _, names in os.walk(uploads))
        saved_keys = []
        for name in keys:
            if (var_dir / name).exists():
                os.replace(var_dir / name, var_dir / f"{name}{SAVED_SUFFIX}")
                saved_keys.append(var_dir / f"{name}{SAVED_SUFFIX}")
            os.replace(staging / ARCHIVE_KEYS / name, var_dir / name)
        _fsync_dir(var_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    kept = old_uploads if old_uploads.exists() else None
    return ArchiveRestoreResult(restored, files, kept, keys, tuple(saved_keys))
