"""Presence sources: anything that hears phones and yields ``Observation``s.

Every source is an async iterator, so the daemon runs radios (scapy in a thread, bleak on asyncio),
recorded files and the simulator the same way. Built-ins register through the ``presence_source``
hook like third-party sources do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from presence.observation import Observation


class Source(Protocol):
    """A stream of observations. ``stream()`` may raise when its radio goes away; the daemon
    restarts it with back-off and keeps the other sources running."""

    name: str

    def stream(self) -> AsyncIterator[Observation]: ...
