"""Authorized WiFi clients: the desired state the gatekeeper turns into firewall rules.

A session binds a MAC *and* an IP to a member for a time. The portal writes it at sign-in and
revokes it at sign-out; ``instore deauth`` revokes one by hand; the gatekeeper reads the live ones.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from instore import events
from instore.clock import to_iso, utcnow
from instore.db import transaction

_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?)(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}$")

# Refresh the idle deadline only when less than this fraction of the idle window is left, so an
# active phone costs one UPDATE per half window, not one per request.
IDLE_REFRESH_FRACTION = 0.5


class InvalidClient(ValueError):
    """A MAC or IP that cannot be right; the message says which and why."""


@dataclass(frozen=True)
class ClientSession:
    id: int
    mac: str
    ip: str
    member_id: int | None
    started_at: str
    expires_at: str
    idle_deadline: str
    revoked_at: str | None
    revoked_reason: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ClientSession:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def normalize_mac(text: str) -> str:
    """``AA-BB-CC-DD-EE-FF`` or ``aabb.ccdd…`` forms to ``aa:bb:cc:dd:ee:ff``."""
    cleaned = text.strip().lower()
    if not _MAC_RE.match(cleaned):
        raise InvalidClient(
            f"{text!r} is not a MAC address (expected six hex pairs like aa:bb:cc:dd:ee:ff)"
        )
    digits = cleaned.replace(":", "").replace("-", "")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def normalize_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise InvalidClient(f"{text!r} is not an IP address") from None


def authorize_client(
    db: sqlite_utils.Database,
    *,
    mac: str,
    ip: str,
    member_id: int | None,
    hours: int,
    idle_minutes: int,
) -> ClientSession:
    """Open the network for this MAC+IP, replacing any live session of either."""
    mac, ip = normalize_mac(mac), normalize_ip(ip)
    now = utcnow()
    with transaction(db):
        # A phone that reconnects gets a fresh session; an IP handed to another phone by DHCP
        # must not keep the previous phone's authorization.
        _revoke_where(db, "(mac = ? OR ip = ?)", (mac, ip), "replaced", now)
        cursor = db.conn.execute(
            """INSERT INTO sessions
               (mac, ip, member_id, started_at, expires_at, idle_deadline)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (
                mac,
                ip,
                member_id,
                to_iso(now),
                to_iso(now + timedelta(hours=hours)),
                to_iso(now + timedelta(minutes=idle_minutes)),
            ),
        )
        session_id = int(cursor.lastrowid or 0)
        events.append(
            db,
            "session.started",
            {"session_id": session_id, "mac": mac, "ip": ip, "member_id": member_id},
        )
    session = get_session(db, session_id)
    assert session is not None
    return session


def get_session(db: sqlite_utils.Database, session_id: int) -> ClientSession | None:
    rows = list(db.query("SELECT * FROM sessions WHERE id = ?", [session_id]))
    return ClientSession.from_row(rows[0]) if rows else None


LIVE_SQL = """SELECT id, expires_at, idle_deadline, member_id FROM sessions
    WHERE ip = ? AND mac = ? AND revoked_at IS NULL AND expires_at > ? AND idle_deadline > ?
    ORDER BY id DESC LIMIT 1"""


def live_session(db: sqlite_utils.Database, ip: str, mac: str) -> ClientSession | None:
    """The session that currently authorizes this exact MAC+IP pair, if any."""
    now = to_iso(utcnow())
    row = db.conn.execute(LIVE_SQL, (ip, mac, now, now)).fetchone()
    return get_session(db, row[0]) if row else None


def refresh_idle(
    db: sqlite_utils.Database, session_id: int, idle_deadline: str, idle_minutes: int
) -> bool:
    """Push the idle deadline out on client activity, once the window is half gone.

    Returns True when it wrote. Called on every probe, so the common case is one comparison:
    stored timestamps are fixed-width ISO text that sorts as it compares, so the deadline is
    compared as text rather than parsed (``strptime`` was the dearest step of an online probe).
    """
    now = utcnow()
    window = timedelta(minutes=idle_minutes)
    if idle_deadline >= to_iso(now + window * IDLE_REFRESH_FRACTION):
        return False
    db.conn.execute(
        "UPDATE sessions SET idle_deadline = MIN(?, expires_at) WHERE id = ?",
        (to_iso(now + window), session_id),
    )
    return True


def _revoke_where(
    db: sqlite_utils.Database, where: str, params: tuple[Any, ...], reason: str, now: datetime
) -> list[int]:
    now_text = to_iso(now)
    ids = [
        row[0]
        for row in db.conn.execute(
            f"SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > ? AND {where}",  # noqa: S608
            (now_text, *params),
        ).fetchall()
    ]
    for session_id in ids:
        db.conn.execute(
            "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ?",
            (now_text, reason, session_id),
        )
        events.append(db, "session.revoked", {"session_id": session_id, "reason": reason})
    return ids


def revoke_session(db: sqlite_utils.Database, session_id: int, reason: str) -> bool:
    """End one session now; False when it was not live."""
    with transaction(db):
        return bool(_revoke_where(db, "id = ?", (session_id,), reason, utcnow()))


def revoke_mac(db: sqlite_utils.Database, mac: str, reason: str) -> list[int]:
    """End every live session of a MAC; returns the ended session ids."""
    mac = normalize_mac(mac)
    with transaction(db):
        return _revoke_where(db, "mac = ?", (mac,), reason, utcnow())


def list_sessions(db: sqlite_utils.Database, include_ended: bool = False) -> list[dict[str, Any]]:
    """Sessions with the member's name, newest first; live ones only unless asked."""
    now = to_iso(utcnow())
    where = (
        ""
        if include_ended
        else ("WHERE s.revoked_at IS NULL AND s.expires_at > :now AND s.idle_deadline > :now")
    )
    sql = f"""SELECT s.id, s.mac, s.ip, s.member_id, m.display_name, s.started_at, s.expires_at,
                     s.idle_deadline, s.revoked_at, s.revoked_reason
              FROM sessions s LEFT JOIN members m ON m.id = s.member_id
              {where} ORDER BY s.id DESC"""  # noqa: S608
    return list(db.query(sql, {"now": now}))
