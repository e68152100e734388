"""Client MAC lookup: which MAC sits behind the IP that made a request.

The portal only sees IPs; sessions bind MAC *and* IP, so the portal asks this lookup. On a box the
answer comes from the kernel's neighbour table (fresh for any client that just talked to us) and
falls back to dnsmasq's lease file. The demo derives a stable fake MAC from the IP, because on
loopback there is no neighbour to ask.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import logging
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from instore import hookimpl

if TYPE_CHECKING:
    from instore.config import Config

log = logging.getLogger(__name__)

# A phone's MAC behind an IP only changes when DHCP hands the IP to another phone, which takes
# at least a lease; a few seconds of cache saves a subprocess on every probe.
NEIGHBOUR_CACHE_SECONDS = 5.0
# An IP we have not seen may be a phone that just joined; re-read at most this often on a miss,
# so a stream of requests from unknown addresses cannot spawn a subprocess each.
MISS_RELOAD_SECONDS = 1.0
IP_COMMAND_TIMEOUT_SECONDS = 2.0  # `ip neigh` answers in milliseconds; never hang a request
# Neighbour states that still name the right MAC; FAILED/INCOMPLETE entries do not.
USABLE_NEIGHBOUR_STATES = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"})


class ClientLookup(Protocol):
    """Find the MAC for a client IP, or None when the box cannot see that client."""

    def mac_for(self, ip: str) -> str | None: ...


# Demo MACs are a pure function of the IP; caching them makes a demo probe cost what a cached
# neighbour lookup costs on a box (a dict hit), instead of an IP parse and a hash per request.
DEMO_MAC_CACHE_SIZE = 4096  # bounded: a spray of source addresses cannot grow it without limit


@functools.lru_cache(maxsize=DEMO_MAC_CACHE_SIZE)
def _demo_mac(ip: str) -> str | None:
    try:
        packed = ipaddress.ip_address(ip).packed
    except ValueError:
        return None
    digest = hashlib.blake2b(packed, digest_size=5).digest()
    # 0x02: locally administered, unicast — never collides with a real vendor's MAC.
    return ":".join(f"{byte:02x}" for byte in (0x02, *digest))


class DemoLookup:
    """A stable, locally administered MAC derived from the IP (no neighbours on loopback)."""

    def mac_for(self, ip: str) -> str | None:
        return _demo_mac(ip)


def parse_dnsmasq_leases(text: str) -> dict[str, str]:
    """IP → MAC from a dnsmasq lease file (``expiry mac ip hostname client-id`` per line)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].count(":") == 5:
            found[parts[2]] = parts[1].lower()
    return found


def parse_ip_neigh_json(text: str) -> dict[str, str]:
    """IP → MAC from ``ip -j neigh show``, skipping entries whose MAC is not trustworthy."""
    found: dict[str, str] = {}
    for entry in json.loads(text or "[]"):
        mac = entry.get("lladdr")
        states = set(entry.get("state", []))
        if mac and states & USABLE_NEIGHBOUR_STATES:
            found[entry["dst"]] = mac.lower()
    return found


class NeighbourLookup:
    """Kernel neighbour table first, dnsmasq leases second, cached briefly."""

    def __init__(self, interface: str, leases_file: Path) -> None:
        self.interface = interface
        self.leases_file = leases_file
        self._lock = threading.Lock()
        self._cache: dict[str, str] = {}
        self._loaded_at = 0.0

    def _reload(self) -> None:
        table: dict[str, str] = {}
        try:
            table.update(parse_dnsmasq_leases(self.leases_file.read_text()))
        except OSError as exc:
            log.debug("no lease file", extra={"path": str(self.leases_file), "error": str(exc)})
        try:
            result = subprocess.run(
                ["ip", "-j", "neigh", "show", "dev", self.interface],
                capture_output=True,
                text=True,
                timeout=IP_COMMAND_TIMEOUT_SECONDS,
                check=True,
            )
            table.update(parse_ip_neigh_json(result.stdout))
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            log.warning("neighbour table unreadable", extra={"error": str(exc)})
        self._cache = table
        self._loaded_at = time.monotonic()

    def mac_for(self, ip: str) -> str | None:
        with self._lock:
            age = time.monotonic() - self._loaded_at
            stale = age > NEIGHBOUR_CACHE_SECONDS
            if stale or (ip not in self._cache and age > MISS_RELOAD_SECONDS):
                self._reload()
            return self._cache.get(ip)


@hookimpl
def client_lookup(name: str, config: Config) -> ClientLookup | None:
    """Built-in lookups: "demo" and "neighbours"."""
    if name == "demo":
        return DemoLookup()
    if name == "neighbours":
        hardware = config["hardware"]
        return NeighbourLookup(hardware["lan_interface"], Path(hardware["leases_file"]))
    return None
