"""Measures against members: warn, silence, suspend, ban, lift.

- warn: a note on the member's record they are told about; nothing else changes.
- silence: read-only for N days (screening refuses their posts while it stands).
- suspend: cannot sign in, for N days or until lifted. Every live WiFi session of theirs is
  revoked (the gatekeeper then drops them from the firewall) and every browser signed in as them
  is signed out at its next request (their login token changes).
- ban: expelled. A suspension with no end, plus a ``bans`` row with their email and loyalty
  number as sign-up normalises them, so a new account with either is refused.
- lift: ends a sanction (and the ban that came with it) early.

Every measure is a ``moderation_actions`` row with the moderator and the reason, written in the
same transaction. Each may be appealed once (``community.appeals``). Telling the member and
nudging the gatekeeper are the portal's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from community.moderation import (
    EDIT,
    REJECT,
    Item,
    ModerationError,
    clean_reason,
    record_action,
)
from instore import members, sessions
from instore.clock import to_iso
from instore.db import transaction
from instore.staff import rank

WARN, SILENCE, SUSPEND, BAN, LIFT = "warn", "silence", "suspend", "ban", "lift"
# The decisions about a member they may appeal (approving and lifting are not against them).
APPEALABLE: tuple[str, ...] = (WARN, REJECT, EDIT, SILENCE, SUSPEND, BAN)
# The longest silence or timed suspension; longer than a year is a ban, or "until lifted".
MAX_DAYS = 365
# Why a suspended member's WiFi sessions ended (``sessions.revoked_reason``).
REVOKED_REASON = "suspended by a moderator"


class SanctionError(ModerationError):
    """A sanction or appeal that cannot be done; the message is meant for the person asking."""


class AlreadyAppealed(SanctionError):
    """The member has appealed this decision before."""


@dataclass(frozen=True)
class Sanction:
    """A warning, or a silence/suspension until ``ends_at`` (None: until lifted)."""

    id: int
    member_id: int
    kind: str
    reason: str
    action_id: int | None
    starts_at: str
    ends_at: str | None
    lifted_at: str | None

    def in_force(self, now: datetime) -> bool:
        """A silence or suspension still standing (a warning is never "in force")."""
        return (
            self.kind != "warning"
            and self.lifted_at is None
            and self.starts_at <= to_iso(now)
            and (self.ends_at is None or self.ends_at > to_iso(now))
        )


@dataclass(frozen=True)
class Suspended:
    """What suspending did: the action and the WiFi sessions it ended (for the gatekeeper)."""

    action_id: int
    revoked_sessions: list[int]


def _sanction(row: dict[str, Any]) -> Sanction:
    return Sanction(**{name: row[name] for name in Sanction.__dataclass_fields__})


def sanctions_of(db: sqlite_utils.Database, member_id: int) -> list[Sanction]:
    """Every sanction the member ever had, newest first."""
    rows = db.query(
        "SELECT * FROM member_sanctions WHERE member_id = ? ORDER BY starts_at DESC, id DESC",
        [member_id],
    )
    return [_sanction(row) for row in rows]


def get_sanction(db: sqlite_utils.Database, sanction_id: int) -> Sanction | None:
    rows = list(db.query("SELECT * FROM member_sanctions WHERE id = ?", [sanction_id]))
    return _sanction(rows[0]) if rows else None


def suspension(db: sqlite_utils.Database, member_id: int, now: datetime) -> Sanction | None:
    """The suspension keeping the member out now (the longest, if several), or None."""
    standing = [s for s in sanctions_of(db, member_id) if s.kind == SUSPEND and s.in_force(now)]
    standing.sort(key=lambda s: s.ends_at or "9999", reverse=True)  # no end sorts last of all
    return standing[0] if standing else None


def is_ban(db: sqlite_utils.Database, sanction: Sanction) -> bool:
    """Whether the sanction is a ban's (its action was a ban)."""
    if sanction.action_id is None:
        return False
    row = db.conn.execute(
        "SELECT action FROM moderation_actions WHERE id = ?", (sanction.action_id,)
    ).fetchone()
    return row is not None and row[0] == BAN


def is_banned(db: sqlite_utils.Database, identifier: str) -> bool:
    """Whether a sign-up with this email or loyalty number is refused (a ban stands on it)."""
    kind, value = members.normalize_identifier(identifier)
    column = "loyalty_number" if kind == "loyalty" else "email"
    row = db.conn.execute(
        f"SELECT 1 FROM bans WHERE {column} = ? AND lifted_at IS NULL LIMIT 1",  # noqa: S608
        (value,),
    ).fetchone()
    return row is not None


def _target(db: sqlite_utils.Database, moderator_id: int, member_id: int) -> members.Member:
    """The member to sanction; refused for oneself and for anyone ranked as high or higher."""
    member = members.get_member(db, member_id)
    moderator = members.get_member(db, moderator_id)
    if member is None or moderator is None:
        raise SanctionError("That member no longer exists.")
    if member.id == moderator.id:
        raise SanctionError("You cannot sanction your own account.")
    if rank(member.role) >= rank(moderator.role):
        raise SanctionError("Only someone with a higher role can sanction this account.")
    return member


def _days(days: int | None, *, required: bool) -> timedelta | None:
    if days is None:
        if required:
            raise SanctionError(f"Give the number of days, 1 to {MAX_DAYS}.")
        return None
    if not 1 <= days <= MAX_DAYS:
        raise SanctionError(f"Give the number of days, 1 to {MAX_DAYS}.")
    return timedelta(days=days)


def _add_sanction(
    db: sqlite_utils.Database,
    member_id: int,
    kind: str,
    reason: str,
    action_id: int,
    now: datetime,
    length: timedelta | None,
) -> int:
    cursor = db.conn.execute(
        """INSERT INTO member_sanctions (member_id, kind, reason, action_id, starts_at, ends_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (
            member_id,
            kind,
            reason,
            action_id,
            to_iso(now),
            None if length is None else to_iso(now + length),
        ),
    )
    return int(cursor.lastrowid or 0)


def warn(
    db: sqlite_utils.Database,
    moderator_id: int,
    member_id: int,
    reason: str,
    now: datetime,
    item: Item | None = None,
) -> int:
    """Warn the member (about ``item``, if given); the action's id."""
    reason = clean_reason(reason)
    with transaction(db):
        _target(db, moderator_id, member_id)
        action_id = record_action(
            db, moderator_id, WARN, reason, now, item=item, member_id=member_id
        )
        _add_sanction(db, member_id, "warning", reason, action_id, now, None)
    return action_id


def silence(
    db: sqlite_utils.Database,
    moderator_id: int,
    member_id: int,
    days: int | None,
    reason: str,
    now: datetime,
) -> int:
    """Make the member read-only for ``days``; the action's id."""
    reason = clean_reason(reason)
    length = _days(days, required=True)
    with transaction(db):
        _target(db, moderator_id, member_id)
        action_id = record_action(
            db, moderator_id, SILENCE, reason, now, member_id=member_id, detail={"days": days}
        )
        _add_sanction(db, member_id, SILENCE, reason, action_id, now, length)
    return action_id


def _shut_out(db: sqlite_utils.Database, member_id: int) -> list[int]:
    """End the member's sign-ins and WiFi sessions; the revoked session ids."""
    members.end_sign_ins(db, member_id)
    live = [row["id"] for row in sessions.list_sessions(db) if row["member_id"] == member_id]
    return [
        session_id for session_id in live if sessions.revoke_session(db, session_id, REVOKED_REASON)
    ]


def suspend(
    db: sqlite_utils.Database,
    moderator_id: int,
    member_id: int,
    days: int | None,
    reason: str,
    now: datetime,
) -> Suspended:
    """Keep the member out for ``days`` (None: until lifted), ending their sessions now."""
    reason = clean_reason(reason)
    length = _days(days, required=False)
    with transaction(db):
        _target(db, moderator_id, member_id)
        action_id = record_action(
            db, moderator_id, SUSPEND, reason, now, member_id=member_id, detail={"days": days}
        )
        _add_sanction(db, member_id, SUSPEND, reason, action_id, now, length)
        revoked = _shut_out(db, member_id)
    return Suspended(action_id, revoked)


def ban(
    db: sqlite_utils.Database, moderator_id: int, member_id: int, reason: str, now: datetime
) -> Suspended:
    """Expel the member: suspended with no end, and their email and loyalty number refused at
    sign-up, even after the account is erased."""
    reason = clean_reason(reason)
    with transaction(db):
        member = _target(db, moderator_id, member_id)
        action_id = record_action(db, moderator_id, BAN, reason, now, member_id=member_id)
        _add_sanction(db, member_id, SUSPEND, reason, action_id, now, None)
        email = members.normalize_identifier(member.email)[1] if member.email else None
        loyalty = members.normalize_identifier(member.loyalty_number)[1]
        db.conn.execute(
            """INSERT INTO bans (member_id, email, loyalty_number, reason, action_id, created_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (member_id, email, loyalty, reason, action_id, to_iso(now)),
        )
        revoked = _shut_out(db, member_id)
    return Suspended(action_id, revoked)


def end_measures(db: sqlite_utils.Database, action_id: int, now: datetime) -> int:
    """Lift the sanction and ban a decision made; how many were still standing."""
    stamp = to_iso(now)
    lifted = db.conn.execute(
        "UPDATE member_sanctions SET lifted_at = ? WHERE action_id = ? AND lifted_at IS NULL",
        (stamp, action_id),
    ).rowcount
    db.conn.execute(
        "UPDATE bans SET lifted_at = ? WHERE action_id = ? AND lifted_at IS NULL",
        (stamp, action_id),
    )
    return int(lifted)


def lift(
    db: sqlite_utils.Database, moderator_id: int, sanction_id: int, reason: str, now: datetime
) -> int:
    """End a sanction early (a ban's too, with its sign-up refusal); the action's id."""
    reason = clean_reason(reason)
    with transaction(db):
        sanction = get_sanction(db, sanction_id)
        if sanction is None or sanction.lifted_at is not None:
            raise SanctionError("That sanction is not standing any more.")
        if sanction.kind != "warning" and not sanction.in_force(now):
            raise SanctionError("That sanction is not standing any more.")
        _target(db, moderator_id, sanction.member_id)
        db.conn.execute(
            "UPDATE member_sanctions SET lifted_at = ? WHERE id = ?", (to_iso(now), sanction.id)
        )
        if sanction.action_id is not None:
            end_measures(db, sanction.action_id, now)
        return record_action(
            db,
            moderator_id,
            LIFT,
            reason,
            now,
            member_id=sanction.member_id,
            detail={"sanction_id": sanction.id, "kind": sanction.kind},
        )


def actions_about(db: sqlite_utils.Database, member_id: int) -> list[dict[str, Any]]:
    """Every moderation action about the member with the moderator's name, newest first."""
    return list(
        db.query(
            """SELECT a.*, m.display_name AS moderator_name FROM moderation_actions a
               LEFT JOIN members m ON m.id = a.moderator_id
               WHERE a.member_id = ? ORDER BY a.ts DESC, a.id DESC""",
            [member_id],
        )
    )


def bans_of(db: sqlite_utils.Database, member_id: int) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM bans WHERE member_id = ? ORDER BY id DESC", [member_id]))
