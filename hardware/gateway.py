"""Gateway backends: the thing that actually lets an authorized client through.

The portal never calls a backend; it writes ``sessions``. The gatekeeper reconciles a backend's
actual state with the live sessions. The "memory" backend keeps the authorized set in a dict, for
the demo and for tests of other parts; the nftables backend lands with the gatekeeper.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from instore import hookimpl

if TYPE_CHECKING:
    from instore.config import Config


@dataclass(frozen=True, order=True)
class Client:
    """One authorized (MAC, IP) pair and when its authorization runs out."""

    mac: str
    ip: str
    until: datetime


class Gateway(Protocol):
    """What every backend offers; batch calls so a backend can apply them in one transaction."""

    def authorized(self) -> set[tuple[str, str]]: ...

    def apply(self, add: list[Client], remove: list[tuple[str, str]]) -> None: ...


class MemoryGateway:
    """Authorized clients in a dict: a working gateway with nothing to enforce."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Client] = {}

    def authorized(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._clients)

    def apply(self, add: list[Client], remove: list[tuple[str, str]]) -> None:
        with self._lock:
            for key in remove:
                self._clients.pop(key, None)
            for client in add:
                self._clients[(client.mac, client.ip)] = client


@hookimpl
def gateway_backend(name: str, config: Config) -> Gateway | None:
    """The built-in "memory" backend."""
    return MemoryGateway() if name == "memory" else None
