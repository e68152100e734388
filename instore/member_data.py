"""A member's own data: "download my data" (export) and "delete my account" (erasure).

No module knows every table that holds member data, so each package declares its own through the
``member_data_tables`` hook: which table, how to find one member's rows (an SQL predicate), and
what erasure does to them (delete, or anonymise with an UPDATE). Export and erasure simply walk
those declarations, so a package that adds a table adds one declaration beside its migration, and
``tests/test_member_data.py`` fails when a table with a member column is left undeclared.

Predicates and anonymising SET clauses are fixed SQL written by the packages, never user input;
they may use the named parameters in ``_params``: ``:member_id``, ``:device`` (presence's
``m:<id>``), ``:target`` (the audit log's ``member:<id>``), ``:email``, ``:loyalty_number`` and
``:anonymous_device`` (a fresh random token that replaces the member's device in kept rows) and
``:deleted_member`` (what kept records call them now).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from instore import members, sessions
from instore.clock import now_iso
from instore.db import transaction

log = logging.getLogger(__name__)

# Shown in an export instead of a secret column's value (the password hash): the member learns
# that it is stored without the export handing it to whoever gets hold of the file.
HIDDEN = "(hidden)"
# What the audit log and anything else kept for the store's records calls an erased member.
DELETED_MEMBER = "deleted member"
# The file inside the zip download that holds the JSON export.
ZIP_DATA_NAME = "data.json"
# Where declared uploads live, under the box's var directory (beside the database).
UPLOADS_DIRNAME = "uploads"
# Why the member's WiFi sessions ended, as the sessions list and the gatekeeper's log show it.
REVOKE_REASON = "account deleted"


class ErasureError(Exception):
    """Erasure cannot be done safely on this connection; the message says why."""


@dataclass(frozen=True)
class MemberTable:
    """One table's member data, as its package declares it.

    ``where`` selects one member's rows. ``anonymise`` is an SQL SET clause run on those rows
    instead of deleting them, for rows the store must keep (the outbox other consumers still
    read, the audit log, redemptions counted against an offer's budget). ``export=False`` erases
    rows without putting them in the member's download: they belong to someone else's records
    (a note sent to a friend about this member, who blocked this member). ``hidden`` columns
    are exported as ``HIDDEN``. ``file_column`` names a path, relative to the uploads
    directory, of a file that is part of the row: zipped in the download, removed on erasure.
    ``keepable`` is a SET clause for what the member wrote in public (comments, reviews,
    suggestions): run instead of deleting the rows when they chose to leave their words as
    "deleted member".
    """

    table: str
    where: str
    anonymise: str | None = None
    export: bool = True
    hidden: tuple[str, ...] = ()
    file_column: str | None = None
    keepable: str | None = None


@dataclass
class ErasureReport:
    """What an erasure did, for the CLI's summary and the log (counts only, no identities)."""

    deleted: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)
    sessions_revoked: list[int] = field(default_factory=list)
    files_removed: int = 0


def declared_tables() -> list[MemberTable]:
    """Every package's declarations, from the plug-in hook, in plug-in order."""
    from instore.plugins import pm

    return [table for batch in pm.hook.member_data_tables() for table in batch]


def _params(member: members.Member, anonymous_device: str = "") -> dict[str, Any]:
    return {
        "member_id": member.id,
        "device": f"m:{member.id}",
        "target": f"member:{member.id}",
        "email": member.email,
        "loyalty_number": member.loyalty_number,
        "anonymous_device": anonymous_device,
        "deleted_member": DELETED_MEMBER,
    }


def _jsonable(value: Any) -> Any:
    """Column values as JSON: BLOBs become base64 text, everything else is already JSON-ready."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def _rows(db: sqlite_utils.Database, declared: MemberTable, params: dict[str, Any]) -> list[Any]:
    cursor = db.conn.execute(
        f"SELECT * FROM {declared.table} WHERE {declared.where}",  # noqa: S608 - declared SQL
        params,
    )
    names = [column[0] for column in cursor.description]
    return [
        {
            name: HIDDEN if name in declared.hidden else _jsonable(value)
            for name, value in zip(names, row, strict=True)
        }
        for row in cursor.fetchall()
    ]


def _profile(member: members.Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "email": member.email,
        "loyalty_number": member.loyalty_number,
        "display_name": member.display_name,
        "role": member.role,
        "tier": member.tier,
        "locale": member.locale,
    }


def export_member(db: sqlite_utils.Database, member: members.Member) -> dict[str, Any]:
    """Everything stored about the member: their profile and, per declared table, their rows.

    Every exportable declared table is listed, empty or not, so the member also sees what kinds of
    data the store keeps. A table declared twice (say, either side of a friendship) has its rows
    once each.
    """
    params = _params(member)
    tables: dict[str, list[dict[str, Any]]] = {}
    for declared in declared_tables():
        if not declared.export:
            continue
        found = tables.setdefault(declared.table, [])
        for row in _rows(db, declared, params):
            if row not in found:
                found.append(row)
    created = db.conn.execute(
        "SELECT created_at FROM members WHERE id = ?", (member.id,)
    ).fetchone()
    return {
        "generated_at": now_iso(),
        "member": {**_profile(member), "created_at": created[0] if created else None},
        "tables": tables,
    }


def export_json(db: sqlite_utils.Database, member: members.Member) -> str:
    """The export as indented JSON text, as downloaded."""
    return json.dumps(export_member(db, member), indent=2, sort_keys=True, ensure_ascii=False)


def _member_files(
    db: sqlite_utils.Database, member: members.Member, uploads_dir: Path
) -> list[tuple[str, Path]]:
    """(name inside the uploads directory, path) of every declared upload of the member's."""
    params = _params(member)
    root = uploads_dir.resolve()
    found: list[tuple[str, Path]] = []
    for declared in declared_tables():
        if declared.file_column is None:
            continue
        for row in _rows(db, declared, params):
            name = row.get(declared.file_column)
            if not isinstance(name, str) or not name:
                continue
            path = (root / name).resolve()
            # A stored name must not lead out of the uploads directory (``../``).
            if path.is_relative_to(root) and path.is_file():
                found.append((name, path))
    return found


def export_zip(db: sqlite_utils.Database, member: members.Member, uploads_dir: Path) -> bytes:
    """A zip of ``data.json`` and the member's uploaded files (under ``uploads/``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(ZIP_DATA_NAME, export_json(db, member))
        for name, path in _member_files(db, member, uploads_dir):
            archive.write(path, f"{UPLOADS_DIRNAME}/{name}")
    return buffer.getvalue()


def erase_member(
    db: sqlite_utils.Database,
    member: members.Member,
    uploads_dir: Path | None = None,
    *,
    keep_posts: bool = False,
) -> ErasureReport:
    """Erase or anonymise everything about the member, in one transaction, then their files.

    Their live WiFi sessions are revoked first through ``instore.sessions`` (so the outbox carries
    the ``session.revoked`` events the gatekeeper follows), then every declared table is handled,
    then the members row goes; its foreign keys' ON DELETE actions are the backstop for anything
    left. The caller nudges the gatekeeper afterwards. Uploaded files are removed only after the
    commit, so a rollback never leaves rows pointing at deleted files. ``keep_posts``: the
    member chose to leave what they wrote in public, signed "deleted member".
    """
    if db.conn.execute("PRAGMA foreign_keys").fetchone()[0] != 1:
        raise ErasureError("foreign keys are off on this connection; open it with instore.db")
    report = ErasureReport()
    files = _member_files(db, member, uploads_dir) if uploads_dir is not None else []
    params = _params(member, f"anon:{secrets.token_hex(8)}")
    with transaction(db):
        live = db.conn.execute(
            "SELECT id FROM sessions WHERE member_id = ? AND revoked_at IS NULL", (member.id,)
        ).fetchall()
        for (session_id,) in live:
            if sessions.revoke_session(db, session_id, REVOKE_REASON):
                report.sessions_revoked.append(session_id)
        for declared in declared_tables():
            anonymise = declared.keepable if keep_posts else None
            anonymise = anonymise or declared.anonymise
            if anonymise is None:
                sql = f"DELETE FROM {declared.table} WHERE {declared.where}"  # noqa: S608
                counts = report.deleted
            else:
                sql = f"UPDATE {declared.table} SET {anonymise} WHERE {declared.where}"  # noqa: S608
                counts = report.anonymised
            changed = db.conn.execute(sql, params).rowcount
            counts[declared.table] = counts.get(declared.table, 0) + changed
        db.conn.execute("DELETE FROM members WHERE id = ?", (member.id,))
    for _name, path in files:
        path.unlink(missing_ok=True)
        report.files_removed += 1
    log.info(
        "member erased",
        extra={
            "deleted_rows": sum(report.deleted.values()),
            "anonymised_rows": sum(report.anonymised.values()),
            "sessions_revoked": len(report.sessions_revoked),
        },
    )
    return report
