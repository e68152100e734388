"""Gateway backends: the thing that actually lets an authorized client through.

The portal never calls a backend; it writes ``sessions``. The gatekeeper reconciles a backend's
actual state with the live sessions. Every backend offers the same three calls, so a future
openNDS, UniFi or Meraki backend fits beside "memory" (demo, tests) and "nftables" (a box).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from instore import hookimpl
from instore.clock import utcnow

if TYPE_CHECKING:
    from instore.config import Config

ClientKey = tuple[str, str]  # (mac, ip)


@dataclass(frozen=True, order=True)
class Client:
    """One authorized (MAC, IP) pair and when its authorization runs out."""

    mac: str
    ip: str
    until: datetime

    @property
    def key(self) -> ClientKey:
        return (self.mac, self.ip)


@dataclass(frozen=True)
class ClientState:
    """What the gateway holds for one client: its end, and traffic so far (for idle checks)."""

    until: datetime
    bytes: int = 0


class GatewayError(Exception):
    """The gateway refused a change; the message says what it said."""


class Gateway(Protocol):
    """What every backend offers. Batch calls let a backend apply a change as one transaction."""

    def healthy(self) -> bool:
        """True when the gateway's own state (rules, tables) is as it should be. Read-only."""
        ...

    def ensure(self, wanted: list[Client]) -> bool:
        """Create or repair the gateway's own state; a fresh one starts with ``wanted`` in it.

        Returns True when something had to be rebuilt: drift was fixed.
        """
        ...

    def listing(self) -> dict[ClientKey, ClientState]:
        """Who is authorized now, as the gateway itself sees it."""
        ...

    def apply(self, add: list[Client], remove: list[ClientKey]) -> None:
        """Authorize ``add`` (replacing same-key entries) and de-authorize ``remove`` at once."""
        ...


class MemoryGateway:
    """Authorized clients in a dict: a working gateway with nothing to enforce."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[ClientKey, Client] = {}
        self._ready = False

    def healthy(self) -> bool:
        return self._ready

    def ensure(self, wanted: list[Client]) -> bool:
        with self._lock:
            if self._ready:
                return False
            self._clients = {client.key: client for client in wanted}
            self._ready = True
            return True

    def listing(self) -> dict[ClientKey, ClientState]:
        now = utcnow()
        with self._lock:
            return {
                key: ClientState(client.until)
                for key, client in self._clients.items()
                if client.until > now
            }

    def authorized(self) -> set[ClientKey]:
        return set(self.listing())

    def apply(self, add: list[Client], remove: list[ClientKey]) -> None:
        with self._lock:
            for key in remove:
                self._clients.pop(key, None)
            for client in add:
                self._clients[client.key] = client

    def flush(self) -> None:
        """Forget everything, as a reboot would (for drift tests)."""
        with self._lock:
            self._clients.clear()
            self._ready = False


@hookimpl
def gateway_backend(name: str, config: Config) -> Gateway | None:
    """The built-in backends: "memory" and "nftables"."""
    if name == "memory":
        return MemoryGateway()
    if name == "nftables":
        from hardware.nftables import NftablesGateway

        return NftablesGateway.from_config(config)
    return None
