"""The dnsmasq snippet for the guest network, rendered from the same config as everything else.

It does three jobs the portal depends on: DHCP option 114 announces the RFC 8908 API (RFC 8910),
the OS connectivity-check host names resolve to the portal so probes reach it, and walled-garden
host names feed the nftables set that is reachable before sign-in (``nftset=``, dnsmasq 2.87+).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from hardware.gateway import GatewayError
from hardware.nftables import TABLE_FAMILY, TABLE_NAME
from instore.probes import PROBE_HOSTS

if TYPE_CHECKING:
    from instore.config import Config

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "dnsmasq" / "instore.conf.tmpl"
GARDEN_DNS_SET = "garden_dns4"
DHCP_LEASE = "2h"  # long enough to survive a shopping trip, short enough to recycle addresses


def dhcp_range(portal_ip: ipaddress.IPv4Address, prefix: int = 24) -> str:
    """Hand out the upper part of the portal's /24, leaving the lower addresses for the box."""
    network = ipaddress.IPv4Network(f"{portal_ip}/{prefix}", strict=False)
    hosts = list(network.hosts())
    return f"{hosts[len(hosts) // 4]},{hosts[-1]},{network.netmask},{DHCP_LEASE}"


def render_dnsmasq(config: Config, template: Path = TEMPLATE) -> str:
    """The snippet for ``/etc/dnsmasq.d/instore.conf``."""
    portal_host = config["portal"]["bind"].rpartition(":")[0]
    try:
        portal_ip = ipaddress.IPv4Address(portal_host)
    except ValueError:
        raise GatewayError(
            f"portal.bind must be the guest LAN's IPv4 address and port, got "
            f"{config['portal']['bind']!r}"
        ) from None
    api_url = (
        config["portal"]["api_url"] or config["portal"]["public_url"].rstrip("/") + "/api/captive"
    )
    garden_names = []
    for entry in config["gateway"]["walled_garden"]:
        try:
            ipaddress.IPv4Network(entry, strict=False)
        except ValueError:
            garden_names.append(entry.strip().lower())
    probes = "\n".join(f"address=/{host}/{portal_ip}" for host in PROBE_HOSTS)
    gardens = "\n".join(
        f"nftset=/{name}/4#{TABLE_FAMILY}#{TABLE_NAME}#{GARDEN_DNS_SET}" for name in garden_names
    )
    return Template(template.read_text()).substitute(
        lan=config["hardware"]["lan_interface"],
        dhcp_range=dhcp_range(portal_ip),
        leases_file=config["hardware"]["leases_file"],
        api_url=api_url,
        probe_addresses=probes,
        garden_nftsets=gardens or "# (no walled-garden host names configured)",
    )
