"""Time in one place: UTC in storage, ISO 8601 text that sorts as it compares.

``utcnow`` is the single seam tests patch to move time; nothing sleeps to wait for an expiry.
"""

from __future__ import annotations

from datetime import UTC, datetime

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to whole seconds as stored."""
    return datetime.now(UTC).replace(microsecond=0)


def to_iso(moment: datetime) -> str:
    """Render a UTC datetime the way every table stores it."""
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def from_iso(text: str) -> datetime:
    """Parse a stored timestamp."""
    return datetime.strptime(text, ISO_FORMAT).replace(tzinfo=UTC)


def now_iso() -> str:
    return to_iso(utcnow())
