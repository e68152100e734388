"""The box's system files rendered from the one config file: hostapd, dnsmasq, nftables, and the
commented ``instore.toml`` that ``install.sh`` writes to a new box.

The dnsmasq and nftables renderers belong to ``hardware`` (the gatekeeper loads the same ruleset
itself); this module only adds hostapd and puts the three behind one command, so IT edits one
file and renders the rest instead of keeping hand-edited copies in step.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from instore.wifi_settings import DFS_CHANNELS, band

if TYPE_CHECKING:
    from instore.config import Config

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"
HOSTAPD_TEMPLATE = DEPLOY_DIR / "hostapd" / "instore.conf.tmpl"
CONFIG_EXAMPLE = DEPLOY_DIR / "instore.toml.example"


class RenderError(Exception):
    """The config cannot describe this file yet; the message says which setting to fix."""


@dataclass(frozen=True)
class RenderedFile:
    """One file ``instore deploy render --out DIR`` writes, and where it belongs on a box."""

    name: str
    mode: int
    installed_as: str


# hostapd's file may hold the WiFi password, so only root reads it (hostapd runs as root).
RENDERED: dict[str, RenderedFile] = {
    "hostapd": RenderedFile("hostapd.conf", 0o600, "/etc/hostapd/hostapd.conf"),
    "dnsmasq": RenderedFile("dnsmasq.conf", 0o644, "/etc/dnsmasq.d/instore.conf"),
    "nftables": RenderedFile(
        "instore.nft", 0o644, "nothing: the gatekeeper loads this table itself"
    ),
}

# The settings a box differs from a checkout in; every other key stays commented at its default.
BOX_SETTINGS: dict[tuple[str, str], str] = {
    ("database", "path"): "/var/lib/instore/instore.db",
    ("gateway", "backend"): "nftables",
    ("gateway", "nudge_socket"): "/run/instore/gatekeeper.sock",
    ("hardware", "client_lookup"): "neighbours",
}
BOX_CONFIG_HEADER = """\
# Written by install.sh for this box; install.sh and upgrades never overwrite it.
# Before starting the services set, at least: [portal] bind and public_url (the box's guest LAN
# address, e.g. "10.20.0.1:80" and "http://10.20.0.1"), [hardware] lan_interface, and for the
# access point [wifi] country_code. Then check with `instore config` and `instore doctor`.

"""


def _security_lines(security: str, password: str) -> str:
    """hostapd's key management for each ``wifi.security`` mode."""
    if security == "open":
        return "# Open network: the captive portal is the sign-in.\nwpa=0"
    common = ["wpa=2", "rsn_pairwise=CCMP"]
    if security == "wpa2":
        return "\n".join([*common, "wpa_key_mgmt=WPA-PSK", f"wpa_passphrase={password}"])
    # SAE (WPA3-Personal) requires protected management frames; hash-to-element and
    # hunting-and-pecking both allowed (sae_pwe=2) so phones of either generation connect.
    sae = [f"sae_password={password}", "sae_pwe=2"]
    if security == "wpa3":
        return "\n".join([*common, "wpa_key_mgmt=SAE", "ieee80211w=2", *sae])
    # Transition mode: WPA2 phones use the passphrase, WPA3 phones SAE; frames protection optional.
    return "\n".join(
        [*common, "wpa_key_mgmt=WPA-PSK SAE", "ieee80211w=1", f"wpa_passphrase={password}", *sae]
    )


def render_hostapd(config: Config, template: Path = HOSTAPD_TEMPLATE) -> str:
    """``/etc/hostapd/hostapd.conf`` for the guest access point."""
    wifi = config["wifi"]
    if not wifi["country_code"]:
        raise RenderError(
            "wifi.country_code is empty: set your country's two-letter code (e.g. 'ES'); "
            "it decides which channels and power the radio may use"
        )
    lan = config["hardware"]["lan_interface"]
    channel = wifi["channel"]
    five_ghz = band(channel) == "a"
    return Template(template.read_text()).substitute(
        interface=wifi["interface"],
        bridge=(
            f"bridge={lan}"
            if lan != wifi["interface"]
            else "# (no bridge: this interface is the guest LAN itself)"
        ),
        ssid=wifi["ssid"],
        country_code=wifi["country_code"],
        radar=(
            "ieee80211h=1"
            if channel in DFS_CHANNELS
            else f"# (channel {channel} needs no radar detection)"
        ),
        hw_mode=band(channel),
        channel=channel,
        vht="ieee80211ac=1" if five_ghz else "# (802.11ac is 5 GHz only)",
        security=_security_lines(wifi["security"], wifi["password"]),
    )


def render(config: Config, what: str) -> str:
    """The text of one file: ``hostapd``, ``dnsmasq`` or ``nftables``."""
    from hardware.gateway import GatewayError

    try:
        if what == "hostapd":
            return render_hostapd(config)
        if what == "dnsmasq":
            from hardware.dnsmasq import render_dnsmasq

            return render_dnsmasq(config)
        if what == "nftables":
            from hardware.nftables import render_ruleset

            return render_ruleset(config, [])
    except GatewayError as exc:
        raise RenderError(str(exc)) from None
    raise RenderError(f"unknown file {what!r} (choose {', '.join(RENDERED)})")


def write_atomically(path: Path, text: str, mode: int) -> None:
    """Write ``path`` whole or not at all, with ``mode`` from the start (no readable window)."""
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(scratch, mode)  # the umask may have narrowed it
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def render_to(config: Config, whats: Iterable[str], out_dir: Path) -> list[tuple[Path, str]]:
    """Render every file first, then write them: one bad setting writes nothing.

    Returns each written path with where it belongs on a box.
    """
    texts = {what: render(config, what) for what in whats}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for what, text in texts.items():
        spec = RENDERED[what]
        path = out_dir / spec.name
        write_atomically(path, text, spec.mode)
        written.append((path, spec.installed_as))
    return written


def box_config(example: str | None = None) -> str:
    """The commented example config with the box's paths and backends set (``BOX_SETTINGS``).

    Raises RenderError if the example lost one of those keys: install.sh must never write a
    config that silently keeps a checkout's relative database path.
    """
    text = CONFIG_EXAMPLE.read_text() if example is None else example
    section = ""
    found: set[tuple[str, str]] = set()
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
        elif stripped.startswith("# ") and " = " in stripped:
            key = stripped[2:].split(" = ", 1)[0].strip()
            if (section, key) in BOX_SETTINGS:
                default = stripped[2:].split(" = ", 1)[1].split("#", 1)[0].strip()
                value = json.dumps(BOX_SETTINGS[(section, key)])
                line = f"{key} = {value}   # on this box (default {default})"
                found.add((section, key))
        lines.append(line)
    missing = sorted(set(BOX_SETTINGS) - found)
    if missing:
        names = ", ".join(f"{section}.{key}" for section, key in missing)
        raise RenderError(f"the example config has no commented line for {names}")
    return BOX_CONFIG_HEADER + "\n".join(lines) + "\n"
