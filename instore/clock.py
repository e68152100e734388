"""Time in one place: UTC in storage, ISO 8601 text that sorts as it compares.

``utcnow`` is the single seam tests patch to move time; nothing sleeps to wait for an expiry.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to whole seconds as stored."""
    return datetime.now(UTC).replace(microsecond=0)


def to_iso(moment: datetime) -> str:
    """Render a UTC datetime the way every table stores it."""
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


# Exactly the shape ``to_iso`` writes; only that shape takes the fast path in ``from_iso``.
_STORED_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", re.ASCII)


def from_iso(text: str) -> datetime:
    """Parse a stored timestamp.

    ``fromisoformat`` (C, ~30x faster than ``strptime``) handles the stored shape: the gatekeeper
    parses two per live session per full check. Anything else goes through ``strptime`` so odd
    input fails with the same error as before.
    """
    if _STORED_SHAPE.fullmatch(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return datetime.strptime(text, ISO_FORMAT).replace(tzinfo=UTC)


def now_iso() -> str:
    return to_iso(utcnow())
