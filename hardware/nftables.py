"""The nftables gateway: one table, ``inet instore``, with a set of authorized (MAC, IPv4) pairs.

Why this shape:
- No per-client rules: every client check is one lookup in a hashed set, so 10,000 clients cost
  what one does, and a change is an element update, not a ruleset reload.
- One ``nft -j`` transaction per batch of changes: many sign-ins at once are one process spawn,
  and a batch either lands whole or not at all.
- The table is rendered from ``deploy/nftables/instore.nft.tmpl`` and loaded whole, atomically
  (``delete table`` and the new table in one ``nft -f``): a reload never leaves a gap.
- Drift (a flushed table, an edited rule, a reboot) is found by comparing the live table's shape
  with the shape recorded right after loading it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from hardware.gateway import Client, ClientKey, ClientState, GatewayError
from instore.clock import utcnow

if TYPE_CHECKING:
    from instore.config import Config

log = logging.getLogger(__name__)

TABLE_FAMILY = "inet"
TABLE_NAME = "instore"
ALLOWED_SET = "allowed4"
TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "nftables" / "instore.nft.tmpl"
NFT_TIMEOUT_SECONDS = 10.0  # a 10,000-element load takes well under a second
# Listing 10,000 elements keeps nft busy ~0.2 s; on a 2-core box that must not slow the nft call
# that lets a phone in, so slow reads run at a lower CPU priority.
SLOW_READ_NICENESS = 10
MIN_ELEMENT_TIMEOUT_SECONDS = 1  # nft rejects 0; a session about to end still gets its last second


# An empty ``elements`` placeholder leaves a blank line before a set's closing brace.
_EMPTY_LINE_BEFORE_BRACE = re.compile(r"\n[ \t]*\n([ \t]*})")


def _nft_timeout(client: Client) -> int:
    """Seconds until the client's authorization ends, as an element timeout."""
    return max(MIN_ELEMENT_TIMEOUT_SECONDS, int((client.until - utcnow()).total_seconds()))


def render_ruleset(config: Config, clients: list[Client], template: Path = TEMPLATE) -> str:
    """The whole table as nft text, with ``clients`` already in the allowed set."""
    portal_host, _, portal_port = config["portal"]["bind"].rpartition(":")
    try:
        portal_ip = ipaddress.IPv4Address(portal_host)
    except ValueError:
        raise GatewayError(
            f"portal.bind must be an IPv4 address and port for the nftables gateway, "
            f"got {config['portal']['bind']!r}"
        ) from None
    if portal_ip.is_loopback or portal_ip.is_unspecified:
        raise GatewayError(
            f"portal.bind is {config['portal']['bind']!r}: phones cannot be sent there; set it "
            "to the box's address on the guest LAN, e.g. 192.0.2.1:80"
        )
    garden = []
    for entry in config["gateway"]["walled_garden"]:
        try:
            garden.append(str(ipaddress.IPv4Network(entry, strict=False)))
        except ValueError:
            continue  # a host name: dnsmasq's nftset= fills garden_dns4 for it
    allowed = ", ".join(
        f"{client.mac} . {client.ip} timeout {_nft_timeout(client)}s" for client in clients
    )
    wan = config["hardware"]["wan_interface"]
    postrouting = (
        "\n    chain postrouting {\n"
        "        type nat hook postrouting priority srcnat; policy accept;\n"
        f'        oifname "{wan}" masquerade\n'
        "    }\n"
        if wan
        else ""
    )
    text = Template(template.read_text()).substitute(
        lan=config["hardware"]["lan_interface"],
        portal_ip=str(portal_ip),
        portal_port=int(portal_port),
        allowed_elements=f"        elements = {{ {allowed} }}" if allowed else "",
        garden_elements=f"        elements = {{ {', '.join(garden)} }}" if garden else "",
        postrouting=postrouting,
    )
    return _EMPTY_LINE_BEFORE_BRACE.sub(r"\n\1", text)


# Parts of a listing that change while the table is healthy: kernel handles and the clients.
_VOLATILE_KEYS = frozenset({"handle", "elem"})


def table_shape(listing: dict[str, Any]) -> list[Any]:
    """The table's sets, chains and rules without handles or elements: what must not drift."""
    shape: list[Any] = []
    for item in listing.get("nftables", []):
        for kind in ("set", "chain", "rule"):
            if kind in item:
                body = {k: v for k, v in item[kind].items() if k not in _VOLATILE_KEYS}
                shape.append({kind: body})
    return shape


_ELEMENT = re.compile(
    r"(?P<mac>(?:[0-9a-f]{2}:){5}[0-9a-f]{2}) \. (?P<ip>\d{1,3}(?:\.\d{1,3}){3})"
    r"(?: counter packets \d+ bytes (?P<bytes>\d+))?(?: timeout \w+)?(?: expires (?P<expires>\w+))?"
)
_DURATION_PART = re.compile(r"(\d+)(ms|d|h|m|s)")
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """nft's ``7h59m58s948ms`` in seconds."""
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def parse_set_listing(text: str, now: datetime) -> dict[ClientKey, ClientState]:
    """Elements of ``nft list set`` text (``MAC . IP counter packets P bytes B … expires E``)."""
    found: dict[ClientKey, ClientState] = {}
    for match in _ELEMENT.finditer(text):
        expires = parse_duration(match["expires"]) if match["expires"] else 0.0
        found[(match["mac"], match["ip"])] = ClientState(
            until=now + timedelta(seconds=expires), bytes=int(match["bytes"] or 0)
        )
    return found


class NftablesGateway:
    """Authorized clients as elements of ``inet instore``'s ``allowed4`` set."""

    def __init__(self, config: Config, command: tuple[str, ...] = ("nft",)) -> None:
        """``command`` runs nft; tests prefix it with ``ip netns exec NAME``."""
        self.config = config
        self.command = command
        self._expected_shape: list[Any] | None = None

    @classmethod
    def from_config(cls, config: Config) -> NftablesGateway:
        return cls(config)

    # -- talking to nft ---------------------------------------------------------------------
    def _run(self, args: list[str], stdin: str | None = None, nice: bool = False) -> str:
        """Run nft; ``nice`` lowers its CPU priority for reads that may take a while."""
        try:
            result = subprocess.run(
                [*(("nice", "-n", str(SLOW_READ_NICENESS)) if nice else ()), *self.command, *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=NFT_TIMEOUT_SECONDS,
                check=False,
            )
        except FileNotFoundError:
            raise GatewayError("nft not found: install the nftables package") from None
        except subprocess.TimeoutExpired:
            raise GatewayError(f"nft {' '.join(args)} did not answer in time") from None
        if result.returncode != 0:
            message = result.stderr.strip().splitlines()
            raise GatewayError(f"nft {' '.join(args)} failed: {message[0] if message else '?'}")
        return result.stdout

    def _list_table(self, terse: bool = False) -> dict[str, Any] | None:
        """The table as nft's JSON, or None when it does not exist.

        ``terse`` (``nft -t``) leaves the set elements out, which is all a shape check needs:
        with 10,000 clients it spares nft printing, and us parsing, 1.4 MB of JSON per call
        (0.25 s → 0.08 s, bench/gatekeeper_reconcile.py).
        """
        flags = ["-j", "-t"] if terse else ["-j"]
        try:
            out = self._run([*flags, "list", "table", TABLE_FAMILY, TABLE_NAME])
        except GatewayError as exc:
            if "No such file or directory" in str(exc) or "does not exist" in str(exc):
                return None
            raise
        parsed: dict[str, Any] = json.loads(out)
        return parsed

    # -- the Gateway interface ---------------------------------------------------------------
    def healthy(self) -> bool:
        """True when the live table has exactly the shape we loaded. Read-only and cheap (no
        elements listed), so the gatekeeper can ask from a background thread."""
        current = self._list_table(terse=True)
        return current is not None and table_shape(current) == self._expected_shape

    def ensure(self, wanted: list[Client]) -> bool:
        """Make the table exactly what the template renders.

        A missing table is loaded with ``wanted`` in it, so signed-in phones are never shut out
        between two transactions; a changed one keeps the clients it holds (the caller's diff
        adds the rest). Returns True when the live table differed: drift was fixed. On the first
        call after start the table is reloaded anyway, so a new release's template replaces an
        old one; that only counts as drift if the shape really changed.
        """
        current = self._list_table(terse=True)
        if current is None:
            self.load(wanted, replace=False)
            log.warning("nftables table missing; loaded it")
            return True
        if table_shape(current) == self._expected_shape:
            return False
        now = utcnow()
        keep = [
            Client(mac, ip, state.until if state.until > now else now)
            for (mac, ip), state in self.listing().items()
        ]
        self.load(keep, replace=True)
        drifted = table_shape(current) != self._expected_shape
        if drifted:
            log.warning("nftables table was changed outside instore; restored it")
        return drifted

    def load(self, clients: list[Client], replace: bool) -> None:
        """Replace the whole table atomically, with ``clients`` authorized."""
        ruleset = render_ruleset(self.config, clients)
        prefix = f"table {TABLE_FAMILY} {TABLE_NAME}\ndelete table {TABLE_FAMILY} {TABLE_NAME}\n"
        self._run(["-f", "-"], (prefix if replace else "") + ruleset)
        loaded = self._list_table(terse=True)
        if loaded is None:
            raise GatewayError("nftables table vanished right after loading it")
        self._expected_shape = table_shape(loaded)

    def listing(self) -> dict[ClientKey, ClientState]:
        """The allowed set with each element's time left and byte counter.

        Parsed from nft's text output one element at a time rather than with one ``json.loads``:
        for 10,000 clients that call holds the GIL for ~100 ms, which would stall the gatekeeper's
        nudged passes while a background full check reads the set.
        """
        out = self._run(["list", "set", TABLE_FAMILY, TABLE_NAME, ALLOWED_SET], nice=True)
        return parse_set_listing(out, utcnow())

    def apply(self, add: list[Client], remove: list[ClientKey]) -> None:
        """One JSON transaction: delete then add, so a re-authorized client gets its new timeout."""
        commands: list[dict[str, Any]] = []
        if remove:
            # The kernel drops an element when its timeout fires, and deleting a missing element
            # fails the whole batch (nft 1.0.6 has no "destroy"). Adding first (a no-op when it is
            # there) makes the delete always find it.
            keys = [{"concat": list(k)} for k in remove]
            commands.append(self._element_command("add", keys))
            commands.append(self._element_command("delete", keys))
        if add:
            commands.append(
                self._element_command(
                    "add",
                    [
                        {"elem": {"val": {"concat": [c.mac, c.ip]}, "timeout": _nft_timeout(c)}}
                        for c in add
                    ],
                )
            )
        if commands:
            self._run(["-j", "-f", "-"], json.dumps({"nftables": commands}))

    @staticmethod
    def _element_command(verb: str, elems: list[Any]) -> dict[str, Any]:
        return {
            verb: {
                "element": {
                    "family": TABLE_FAMILY,
                    "table": TABLE_NAME,
                    "name": ALLOWED_SET,
                    "elem": elems,
                }
            }
        }

    def table_present(self) -> bool:
        return self._list_table(terse=True) is not None
