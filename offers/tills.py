"""Tills: the checkouts allowed to redeem codes and record loyalty purchases, each with an API key.

A till's key is a long random token shown once, when the till is added, and stored only as its
SHA-256 hash (see the ``tills`` table): a copied database or backup does not give away working
keys. Because the key is 256 random bits, a plain, unsalted hash is enough — there is no small
space of likely keys to precompute, which is what salts and slow hashes defend against.

Looking a presented key up by its hash is also what keeps the check constant-time where it
matters: the comparison is on the hash, so timing can at most reveal how much of a *hash* prefix
matched, which says nothing useful about any key.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from instore.clock import to_iso, utcnow

# 32 random bytes = 256 bits, far beyond guessing even without the per-key rate limit.
KEY_BYTES = 32
# Makes a leaked key recognisable in a log, a ticket or a secret scanner for what it is.
KEY_PREFIX = "till_"
# Longer than any key we issue (5 + 43 characters); anything longer is not worth hashing.
KEY_MAX_CHARS = 128
# A till's name is what IT types on the command line and what cashiers see in messages
# ("already redeemed at till 'Front 2'"): short and printable.
NAME_MAX_CHARS = 60


class InvalidTill(ValueError):
    """A till operation a person asked for that cannot be done; the message says why."""


@dataclass(frozen=True)
class Till:
    """One till: its name, when it was added and, once revoked, when."""

    id: int
    name: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        """True while the till's key still works."""
        return self.revoked_at is None


def hash_key(key: str) -> str:
    """The stored form of a till key: SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidTill("a till needs a name, e.g. 'Front 1'")
    if len(cleaned) > NAME_MAX_CHARS:
        raise InvalidTill(
            f"the till name is {len(cleaned)} characters long; at most {NAME_MAX_CHARS} fit"
        )
    if not cleaned.isprintable():
        raise InvalidTill("the till name must be printable text")
    return cleaned


def _till(row: tuple[int, str, str, str | None]) -> Till:
    return Till(id=row[0], name=row[1], created_at=row[2], revoked_at=row[3])


def get_till(db: sqlite_utils.Database, name: str) -> Till | None:
    """The till with this name (active or revoked), or None."""
    row = db.conn.execute(
        "SELECT id, name, created_at, revoked_at FROM tills WHERE name = ?",
        (" ".join(name.split()),),
    ).fetchone()
    return None if row is None else _till(row)


def create_till(
    db: sqlite_utils.Database, name: str, now: datetime | None = None
) -> tuple[Till, str]:
    """Add a till; returns it and its plaintext key, which is never stored and cannot be shown
    again (a lost key means revoking the till and adding a new one)."""
    name = _check_name(name)
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    created_at = to_iso(now or utcnow())
    try:
        cursor = db.conn.execute(
            "INSERT INTO tills (name, key_hash, created_at) VALUES (?, ?, ?)",
            (name, hash_key(key), created_at),
        )
    except sqlite3.IntegrityError:
        # UNIQUE(name) is the race-free existence check; revoked tills keep their names so
        # past redemptions still say where they happened.
        existing = get_till(db, name)
        state = "" if existing is None or existing.active else " (revoked)"
        raise InvalidTill(
            f"there is already a till named {name!r}{state}; choose another name"
        ) from None
    return Till(id=int(cursor.lastrowid or 0), name=name, created_at=created_at), key


def authenticate_till(db: sqlite_utils.Database, key: str) -> Till | None:
    """The active till this key belongs to, or None (unknown, revoked, or not a key at all)."""
    if not key or len(key) > KEY_MAX_CHARS:
        return None
    row = db.conn.execute(
        """SELECT id, name, created_at, revoked_at FROM tills
           WHERE key_hash = ? AND revoked_at IS NULL""",
        (hash_key(key),),
    ).fetchone()
    return None if row is None else _till(row)


def revoke_till(db: sqlite_utils.Database, name: str, now: datetime | None = None) -> Till:
    """Stop a till's key from working; returns the till with ``revoked_at`` set.

    Revoking twice keeps the first time, so the record says when the key really stopped working.
    The row stays: redemptions and purchases reference it.
    """
    till = get_till(db, name)
    if till is None:
        raise InvalidTill(f"there is no till named {name!r} (see: instore offers till list)")
    db.conn.execute(
        "UPDATE tills SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
        (to_iso(now or utcnow()), till.id),
    )
    revoked = get_till(db, till.name)
    assert revoked is not None
    return revoked


def list_tills(db: sqlite_utils.Database) -> list[Till]:
    """Every till, active and revoked, in the order they were added."""
    rows = db.conn.execute(
        "SELECT id, name, created_at, revoked_at FROM tills ORDER BY id"
    ).fetchall()
    return [_till(row) for row in rows]
