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
from datetime import timedelta
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
    def _run(self, args: list[str], stdin: str | None = None) -> str:
        try:
            result = subprocess.run(
                [*self.command, *args],
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
    def ensure(self) -> bool:
        """Make the table exactly what the template renders, keeping its current clients.

        Returns True when the live table differed (missing, flushed, edited): drift was fixed.
        On the first call after start the table is reloaded anyway, so a new release's template
        replaces an old one; that only counts as drift if the shape really changed.
        """
        current = self._list_table(terse=True)
        if current is not None and table_shape(current) == self._expected_shape:
            return False
        # Reloading: only now are the elements needed, to keep the clients already in the set.
        with_elements = self._list_table() if current is not None else None
        keep = self._clients_in(with_elements) if with_elements is not None else []
        self.load(keep, replace=current is not None)
        if current is None:
            log.warning("nftables table missing; loaded it")
            return True
        drifted = table_shape(current) != self._expected_shape
        if drifted:
            log.warning("nftables table was changed outside instore; restored it")
        return drifted

    def _clients_in(self, listing: dict[str, Any]) -> list[Client]:
        now = utcnow()
        return [
            Client(mac, ip, now + timedelta(seconds=expires))
            for (mac, ip), expires, _ in self._elements(listing)
        ]

    @staticmethod
    def _elements(listing: dict[str, Any]) -> list[tuple[ClientKey, int, int]]:
        """(key, seconds left, bytes) for each element of the allowed set in a JSON listing."""
        found = []
        for item in listing.get("nftables", []):
            body = item.get("set", {})
            if body.get("name") != ALLOWED_SET:
                continue
            for wrapper in body.get("elem", []):
                elem = wrapper.get("elem", wrapper) if isinstance(wrapper, dict) else {}
                if "val" not in elem:
                    continue  # an element added by hand without a timeout: not ours to keep
                mac, ip = elem["val"]["concat"]
                expires = int(elem.get("expires", elem.get("timeout", 0)))
                counter = elem.get("counter") or {}
                found.append(((mac, ip), expires, int(counter.get("bytes", 0))))
        return found

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
        out = self._run(["-j", "list", "set", TABLE_FAMILY, TABLE_NAME, ALLOWED_SET])
        now = utcnow()
        return {
            key: ClientState(until=now + timedelta(seconds=expires), bytes=sent)
            for key, expires, sent in self._elements(json.loads(out))
        }

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
