"""Feature flags per store: turn a channel, a source or any new behaviour on, off, or on for a
stable share of members, without a release.

A flag is a name and a percentage (``off`` is 0, ``on`` is 100). Every process reads the same
``feature_flags`` table through ``is_enabled(db, name, member_id)``, so ``instore flags set``
takes effect everywhere within seconds and survives restarts.

Percentages bucket members, not requests: a member's bucket for a flag is a keyed hash of
(flag, member), so the same member always gets the same answer, raising 20 % to 30 % only adds
members (nobody who had the feature loses it), and two flags at 10 % pick different members.
The key is a secret kept beside the database (``instore.keys``), so nobody outside the box can
tell from a member id which bucket it falls in.

Anonymous subjects (``member_id=None``: an unlinked phone, a request before sign-in) get a
partly rolled out feature only once it is fully on: a trial runs on members a store can ask.

Names are lower-case words joined by dots, dashes or underscores. Parts of the product consult
flags named after what they run, when such a flag is set: ``channel.<name>`` for the offers
worker's delivery channels, ``source.<name>`` for the presence daemon's sources.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from instore import audit
from instore.clock import now_iso
from instore.db import transaction
from instore.keys import stored_secret

# The bucketing key's file beside the database. Losing it only reshuffles who is in a rollout.
FLAG_KEY_FILE = "flags_key"
# Buckets per flag; percentages are whole numbers, so a hundred buckets is exactly enough.
BUCKETS = 100
# A name as it appears in commands and logs: short, lower-case, no spaces (so it can never be
# mistaken for a setting like "on" or "30%", and it reads the same in every shell).
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# How long the presence daemon's cached view of the flags may lag the table. It consults flags
# for thousands of observations a second, so it reads the table at most this often; a store
# turning a source off waits this long at most.
CACHE_SECONDS = 5.0
# The single seam tests move instead of sleeping.
MONOTONIC_TIME: Callable[[], float] = time.monotonic

_WORDS = {"on": 100, "off": 0}


class InvalidFlag(ValueError):
    """A flag name or setting a person typed wrong; the message says what is accepted."""


@dataclass(frozen=True)
class Flag:
    """One flag as stored: who gets it is ``percent`` of members (0 off, 100 on)."""

    name: str
    percent: int
    updated_at: str

    @property
    def setting(self) -> str:
        """How people write it: ``on``, ``off`` or ``30%``."""
        if self.percent == 100:
            return "on"
        if self.percent == 0:
            return "off"
        return f"{self.percent}%"


def check_name(name: str) -> str:
    """``name`` if it is a valid flag name, else InvalidFlag saying what a name looks like."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidFlag(
            f"flag name {name!r}: use lower-case letters, digits, dots, dashes or underscores, "
            "up to 64 characters (e.g. channel.webpush)"
        )
    return name


def parse_setting(text: str) -> int:
    """``on``, ``off``, ``30`` or ``30%`` as a percentage, else InvalidFlag."""
    cleaned = text.strip().lower()
    if cleaned in _WORDS:
        return _WORDS[cleaned]
    number = cleaned.removesuffix("%")
    if number.isdigit() and 0 <= int(number) <= 100:
        return int(number)
    raise InvalidFlag(f"flag setting {text!r}: use on, off, or a percentage from 0 to 100")


def _row_to_flag(row: tuple[str, int, str]) -> Flag:
    return Flag(row[0], int(row[1]), row[2])


def get_flag(db: sqlite_utils.Database, name: str) -> Flag | None:
    """The stored flag called ``name``, or None when it was never set (or was unset)."""
    row = db.conn.execute(
        "SELECT name, percent, updated_at FROM feature_flags WHERE name = ?", (name,)
    ).fetchone()
    return _row_to_flag(row) if row else None


def list_flags(db: sqlite_utils.Database) -> list[Flag]:
    """Every set flag, by name."""
    rows = db.conn.execute("SELECT name, percent, updated_at FROM feature_flags ORDER BY name")
    return [_row_to_flag(row) for row in rows]


def set_flag(
    db: sqlite_utils.Database, name: str, percent: int, actor: str = audit.SHELL_ACTOR
) -> Flag:
    """Store ``name`` at ``percent`` and log the change in the audit log, in one transaction."""
    check_name(name)
    if not 0 <= percent <= 100:
        raise InvalidFlag(f"flag {name}: percentage must be 0 to 100, got {percent}")
    with transaction(db):
        before = get_flag(db, name)
        db.conn.execute(
            """INSERT INTO feature_flags (name, percent, updated_at) VALUES (?, ?, ?)
               ON CONFLICT(name) DO UPDATE SET
                 percent = excluded.percent, updated_at = excluded.updated_at""",
            (name, percent, now_iso()),
        )
        after = get_flag(db, name)
        assert after is not None
        audit.record(
            db,
            None,
            actor,
            "flag.set",
            f"flag:{name}",
            {"setting": before.setting} if before else None,
            {"setting": after.setting},
        )
    return after


def unset_flag(db: sqlite_utils.Database, name: str, actor: str = audit.SHELL_ACTOR) -> bool:
    """Forget ``name`` (parts that consult it go back to their default); False if it was unset."""
    with transaction(db):
        before = get_flag(db, name)
        if before is None:
            return False
        db.conn.execute("DELETE FROM feature_flags WHERE name = ?", (name,))
        audit.record(db, None, actor, "flag.unset", f"flag:{name}", {"setting": before.setting})
    return True


_keys: dict[str, bytes] = {}


def _bucket_key(db: sqlite_utils.Database) -> bytes:
    """The store's bucketing key, kept beside the database file and read once per process.

    A database without a file (``:memory:``, tests) has nowhere to keep one: its buckets are an
    unkeyed hash, still stable and still different per flag.
    """
    row = db.conn.execute("PRAGMA database_list").fetchone()
    path = str(row[2]) if row and row[2] else ""
    if not path:
        return b""
    if path not in _keys:
        _keys[path] = stored_secret(Path(path).parent, FLAG_KEY_FILE).encode()
    return _keys[path]


def member_bucket(key: bytes, name: str, member_id: int) -> int:
    """The member's bucket (0-99) for flag ``name``: the same every time, different per flag."""
    digest = hmac.new(key, f"{name}\0{member_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def _decide(percent: int, key: bytes, name: str, member_id: int | None) -> bool:
    if percent >= 100:
        return True
    if percent <= 0 or member_id is None:
        return False
    return member_bucket(key, name, member_id) < percent


def is_enabled(
    db: sqlite_utils.Database,
    name: str,
    member_id: int | None = None,
    *,
    default: bool = False,
) -> bool:
    """Whether ``name`` is on for ``member_id`` (None: an anonymous subject).

    An unset flag answers ``default``: False for a new feature that must be turned on, True
    where the flag only exists to turn something off (a channel, a source).
    """
    flag = get_flag(db, name)
    if flag is None:
        return default
    return _decide(flag.percent, _bucket_key(db), name, member_id)


class FlagCache:
    """``is_enabled`` for hot paths: the table is re-read at most every ``max_age`` seconds.

    The presence daemon asks for every radio observation; reading SQLite each time would cost
    more than the observation itself.
    """

    def __init__(self, db: sqlite_utils.Database, max_age: float = CACHE_SECONDS) -> None:
        self.db = db
        self.max_age = max_age
        self._percent: dict[str, int] = {}
        self._answers: dict[tuple[str, int | None], bool] = {}  # a member's bucket, once
        self._loaded_at = float("-inf")
        self._key: bytes | None = None

    def _refresh(self) -> None:
        now = MONOTONIC_TIME()
        if now - self._loaded_at < self.max_age:
            return
        self._percent = {flag.name: flag.percent for flag in list_flags(self.db)}
        self._answers.clear()
        self._loaded_at = now

    def is_enabled(self, name: str, member_id: int | None = None, *, default: bool = False) -> bool:
        """As ``is_enabled`` above, from a view at most ``max_age`` seconds old."""
        self._refresh()
        percent = self._percent.get(name)
        if percent is None:
            return default
        answer = self._answers.get((name, member_id))
        if answer is None:
            if self._key is None:
                self._key = _bucket_key(self.db)
            answer = self._answers[(name, member_id)] = _decide(percent, self._key, name, member_id)
        return answer
