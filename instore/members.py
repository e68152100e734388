"""Members, their passwords and their consents: the records every process reads.

Storage only. Who may sign in and what a consent allows are decided by the callers.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from instore.clock import now_iso
from instore.db import transaction

# Each consent is asked and recorded separately; only the WiFi terms are required to go online.
CONSENT_KINDS: tuple[str, ...] = ("wifi_terms", "location", "marketing", "friend_visibility")
REQUIRED_CONSENTS: frozenset[str] = frozenset({"wifi_terms"})
ROLES: tuple[str, ...] = ("shopper", "staff", "manager", "admin")

LOYALTY_NUMBER_DIGITS = 12  # printed on cards; the last digit is a Luhn check digit

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the account does not exist, so "unknown" costs as long as "wrong password".
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AlreadyRegistered(Exception):
    """The email or loyalty number already belongs to a member."""


@dataclass(frozen=True)
class Member:
    id: int
    email: str | None
    loyalty_number: str
    display_name: str
    role: str
    tier: str
    login_token: str
    locale: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Member:
        return cls(
            id=row["id"],
            email=row["email"],
            loyalty_number=row["loyalty_number"],
            display_name=row["display_name"],
            role=row["role"],
            tier=row["tier"],
            login_token=row["login_token"],
            locale=row.get("locale"),
        )


def luhn_check_digit(digits: str) -> str:
    """The digit that makes ``digits + check`` pass Luhn (catches typos in card numbers)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_valid_loyalty_number(text: str) -> bool:
    return (
        len(text) == LOYALTY_NUMBER_DIGITS
        and text.isdigit()
        and luhn_check_digit(text[:-1]) == text[-1]
    )


def new_loyalty_number() -> str:
    body = "".join(secrets.choice("0123456789") for _ in range(LOYALTY_NUMBER_DIGITS - 1))
    return body + luhn_check_digit(body)


def normalize_identifier(text: str) -> tuple[str, str]:
    """Split what a shopper typed into ("email", address) or ("loyalty", digits)."""
    cleaned = text.strip()
    digits = cleaned.replace(" ", "").replace("-", "")
    if digits.isdigit():
        return "loyalty", digits
    return "email", cleaned.lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password; with no stored hash, burn the same time and say no."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def create_member(
    db: sqlite_utils.Database,
    *,
    display_name: str,
    password: str,
    email: str | None = None,
    loyalty_number: str | None = None,
    role: str = "shopper",
    locale: str | None = None,
) -> Member:
    """Register a member with a password; issues a loyalty number when none is given."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    password_hash = hash_password(password)
    now = now_iso()
    try:
        with transaction(db):
            cursor = db.conn.execute(
                """INSERT INTO members
                   (email, loyalty_number, display_name, role, login_token, created_at, locale)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (
                    email.lower() if email else None,
                    loyalty_number or new_loyalty_number(),
                    display_name,
                    role,
                    secrets.token_urlsafe(24),
                    now,
                    locale,
                ),
            )
            member_id = int(cursor.lastrowid or 0)
            db.conn.execute(
                "INSERT INTO credentials (member_id, password_hash, updated_at) VALUES (?, ?, ?)",
                (member_id, password_hash, now),
            )
    except sqlite3.IntegrityError:
        # The UNIQUE constraints on email and loyalty_number are the race-free existence check.
        raise AlreadyRegistered("that email or loyalty number is already registered") from None
    member = get_member(db, member_id)
    assert member is not None
    return member


def get_member(db: sqlite_utils.Database, member_id: int) -> Member | None:
    rows = list(db.query("SELECT * FROM members WHERE id = ?", [member_id]))
    return Member.from_row(rows[0]) if rows else None


def get_by_login_token(db: sqlite_utils.Database, token: str) -> Member | None:
    rows = list(db.query("SELECT * FROM members WHERE login_token = ?", [token]))
    return Member.from_row(rows[0]) if rows else None


def set_display_name(db: sqlite_utils.Database, member_id: int, display_name: str) -> None:
    """Change the name every page shows for the member (their profile page edits it)."""
    db.conn.execute("UPDATE members SET display_name = ? WHERE id = ?", (display_name, member_id))


def end_sign_ins(db: sqlite_utils.Database, member_id: int) -> None:
    """Give the member a new login token, so every browser signed in with the old one (a session
    or a "stay signed in" cookie) is signed out at its next request: suspension and ban."""
    db.conn.execute(
        "UPDATE members SET login_token = ? WHERE id = ?", (secrets.token_urlsafe(24), member_id)
    )


def find_by_identifier(db: sqlite_utils.Database, identifier: str) -> Member | None:
    kind, value = normalize_identifier(identifier)
    column = "loyalty_number" if kind == "loyalty" else "email"
    rows = list(db.query(f"SELECT * FROM members WHERE {column} = ?", [value]))  # noqa: S608
    return Member.from_row(rows[0]) if rows else None


def authenticate(db: sqlite_utils.Database, identifier: str, password: str) -> Member | None:
    """The member if the identifier and password match; None otherwise, in the same time."""
    member = find_by_identifier(db, identifier)
    stored = None
    if member is not None:
        row = db.conn.execute(
            "SELECT password_hash FROM credentials WHERE member_id = ?", (member.id,)
        ).fetchone()
        stored = row[0] if row else None
    return member if verify_password(stored, password) else None


def record_consents(
    db: sqlite_utils.Database, member_id: int, choices: dict[str, bool], terms_version: str
) -> None:
    """Append one row per consent: the history is kept, the latest row per kind is in force."""
    unknown = set(choices) - set(CONSENT_KINDS)
    if unknown:
        raise ValueError(f"unknown consent kinds: {', '.join(sorted(unknown))}")
    now = now_iso()
    with transaction(db):
        for kind, granted in choices.items():
            db.conn.execute(
                "INSERT INTO consents (member_id, kind, granted, terms_version, ts)"
                " VALUES (?, ?, ?, ?, ?)",
                (member_id, kind, int(granted), terms_version, now),
            )


def current_consents(db: sqlite_utils.Database, member_id: int) -> dict[str, dict[str, Any]]:
    """Latest choice per kind: {kind: {"granted": bool, "terms_version": str, "ts": str}}."""
    rows = db.conn.execute(
        """SELECT kind, granted, terms_version, ts FROM consents c
           WHERE member_id = ? AND id = (
             SELECT MAX(id) FROM consents WHERE member_id = c.member_id AND kind = c.kind)""",
        (member_id,),
    ).fetchall()
    return {
        kind: {"granted": bool(granted), "terms_version": version, "ts": ts}
        for kind, granted, version, ts in rows
    }


def has_accepted_terms(db: sqlite_utils.Database, member_id: int, terms_version: str) -> bool:
    """True when the member's latest WiFi-terms consent is a yes to the current version."""
    wifi = current_consents(db, member_id).get("wifi_terms")
    return bool(wifi and wifi["granted"] and wifi["terms_version"] == terms_version)


def link_device(db: sqlite_utils.Database, mac: str, member_id: int) -> None:
    """Remember that this MAC belongs to this member (presence uses it, with consent)."""
    now = now_iso()
    db.conn.execute(
        """INSERT INTO devices (mac, member_id, first_seen, last_seen) VALUES (?, ?, ?, ?)
           ON CONFLICT(mac) DO UPDATE SET member_id = excluded.member_id,
             last_seen = excluded.last_seen""",
        (mac, member_id, now, now),
    )
