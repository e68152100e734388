"""Who a sighting belongs to, without keeping anyone's MAC who did not agree to it.

- A member's phone: the MAC linked when they signed in to the WiFi (``devices``), or the loyalty
  app's rotating BLE token, becomes ``m:<member id>`` — only while their latest consent to
  location-based offers is a yes.
- Anyone else: ``h:<keyed hash>``, an HMAC of the MAC under a salt that changes every day and is
  deleted the next, so yesterday's hashes cannot be linked to today's and the raw MAC never
  reaches the disk.
- Locally administered (randomized) MACs rotate by design; they count towards footfall only and
  are never tracked into zones.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from presence.observation import Observation, is_randomized

log = logging.getLogger(__name__)

WALL_TIME = time.time  # the seam tests patch to cross midnight
MONOTONIC_TIME: Callable[[], float] = time.monotonic  # the seam tests patch to move time
# A full reload of linked MACs and consents this often: it also catches what the quick check
# below cannot see (a MAC re-linked to another member, an erased member's devices).
MEMBER_REFRESH_SECONDS = 30.0
# A phone linked or a consent given is noticed within this: one query reading two maximum ids,
# so a shopper who just signed in is recognised in seconds (the demo walks their phone at once).
MEMBER_CHANGE_CHECK_SECONDS = 1.0
HASH_HEX_CHARS = 16  # 64 bits: no collisions among a day's few thousand devices, short on disk
SALT_BYTES = 32


@dataclass(frozen=True, slots=True)
class Identity:
    """The device key presence tracks, and the member behind it if any."""

    device: str
    member_id: int | None
    footfall_only: bool = False


def _member_id(value: object) -> int | None:
    """The BLE token resolver names members as text; anything else is no member."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class Identifier:
    """Turns observations into identities; holds today's salt and the consenting members."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._salt_day = ""
        self._salt = b""
        self._member_macs: dict[str, int] = {}
        self._consenting: frozenset[int] = frozenset()
        self._loaded_at = float("-inf")
        self._checked_at = float("-inf")
        self._members_stamp: tuple[int | None, int | None] = (None, None)
        # BLE token resolvers to keep in step with who consents (see ``refresh_members``).
        self.token_resolvers: list[Any] = []

    # -- salts -------------------------------------------------------------------------------
    def salt_for(self, ts: float) -> bytes:
        """The salt of ``ts``'s UTC day, created on first use; older days' salts are deleted."""
        day = _day(ts)
        if day == self._salt_day:
            return self._salt
        row = self.db.conn.execute(
            "SELECT salt FROM identity_salts WHERE day = ?", (day,)
        ).fetchone()
        if row is None:
            self.db.conn.execute(
                "INSERT OR IGNORE INTO identity_salts (day, salt) VALUES (?, ?)",
                (day, secrets.token_bytes(SALT_BYTES)),
            )
            row = self.db.conn.execute(
                "SELECT salt FROM identity_salts WHERE day = ?", (day,)
            ).fetchone()
        # Once a day's salt is gone its hashes can never be recomputed from a MAC.
        deleted = self.db.conn.execute("DELETE FROM identity_salts WHERE day < ?", (day,)).rowcount
        if deleted:
            log.info("old identity salts deleted", extra={"days": deleted})
        self._salt_day, self._salt = day, bytes(row[0])
        return self._salt

    def hashed(self, mac: str, ts: float) -> str:
        digest = hmac.new(self.salt_for(ts), mac.lower().encode(), hashlib.sha256).hexdigest()
        return "h:" + digest[:HASH_HEX_CHARS]

    # -- members ----------------------------------------------------------------------------
    def _read_members_stamp(self) -> tuple[int | None, int | None]:
        """The newest device row and consent id: linking a phone or recording a consent moves
        one of them, and both are read from the end of an index without scanning anything."""
        row = self.db.conn.execute(
            "SELECT (SELECT MAX(rowid) FROM devices), (SELECT MAX(id) FROM consents)"
        ).fetchone()
        return (row[0], row[1])

    def refresh_members(self) -> None:
        """Reload linked MACs and who currently consents to location use."""
        # Read first: a change landing during the reload shows up as a new stamp next check.
        self._members_stamp = self._read_members_stamp()
        self._consenting = frozenset(
            row[0]
            for row in self.db.conn.execute(
                """SELECT member_id FROM consents c
                   WHERE kind = 'location' AND granted = 1 AND id = (
                     SELECT MAX(id) FROM consents
                     WHERE member_id = c.member_id AND kind = 'location')"""
            )
        )
        self._member_macs = {
            mac: member_id
            for mac, member_id in self.db.conn.execute("SELECT mac, member_id FROM devices")
            if member_id in self._consenting
        }
        self._loaded_at = self._checked_at = MONOTONIC_TIME()
        for resolver in self.token_resolvers:
            resolver.set_members(self.consenting_member_ids())

    def consenting_member_ids(self) -> list[str]:
        """Members whose tokens may be resolved, as the BLE resolver names them."""
        return [str(member_id) for member_id in sorted(self._consenting)]

    @property
    def member_macs(self) -> dict[str, int]:
        """Linked MACs of consenting members (the WiFi source lets their data frames through)."""
        return dict(self._member_macs)

    def consents(self, member_id: int) -> bool:
        return member_id in self._consenting

    def identify(self, obs: Observation) -> Identity:
        """The identity for one observation. Never returns or stores a raw non-member MAC."""
        now = MONOTONIC_TIME()
        if now - self._loaded_at > MEMBER_REFRESH_SECONDS:
            self.refresh_members()
        elif now - self._checked_at >= MEMBER_CHANGE_CHECK_SECONDS:
            self._checked_at = now
            if self._read_members_stamp() != self._members_stamp:
                self.refresh_members()
        loyalty = (obs.payload.get("decoded") or {}).get("loyalty") or {}
        token_member = _member_id(loyalty.get("member_id"))
        if token_member is not None and token_member in self._consenting:
            return Identity(f"m:{token_member}", token_member)
        member_id = self._member_macs.get(obs.address)
        if member_id is not None:
            return Identity(f"m:{member_id}", member_id)
        return Identity(
            self.hashed(obs.address, obs.ts or WALL_TIME()),
            None,
            footfall_only=is_randomized(obs.address),
        )
