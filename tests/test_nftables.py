"""The nftables backend against the real kernel, inside a network namespace of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from hardware.dnsmasq import render_dnsmasq
from hardware.gateway import Client, GatewayError
from hardware.nftables import NftablesGateway, parse_duration, parse_set_listing, render_ruleset
from instore.clock import utcnow
from instore.config import Config, load_config
from instore.probes import PROBE_HOSTS

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
    reason="needs root with nft and ip (CI runs as root; .ci/run installs nftables, iproute2)",
)


@pytest.fixture
def box_config(tmp_path: Path) -> Config:
    return load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "x.db"),
            "INSTORE_PORTAL_BIND": "192.0.2.1:8080",
            "INSTORE_PORTAL_API_URL": "https://portal.store.example/api/captive",
            "INSTORE_GATEWAY_WALLED_GARDEN": "198.51.100.7,203.0.113.0/28,pay.example.com",
            "INSTORE_HARDWARE_LAN_INTERFACE": "br-guest",
            "INSTORE_HARDWARE_WAN_INTERFACE": "wan0",
        }
    )


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace with a br-guest bridge, deleted whatever happens."""
    name = f"instore-nft-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(
            ["ip", "netns", "exec", name, "ip", "link", "add", "br-guest", "type", "bridge"],
            check=True,
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def NsGateway(config: Config, ns: str) -> NftablesGateway:
    """The real backend, with nft run inside the test's namespace."""
    return NftablesGateway(config, command=("ip", "netns", "exec", ns, "nft"))


def nft(ns: str, *args: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, "nft", *args], capture_output=True, text=True, check=True
    ).stdout


def client(n: int, hours: int = 8) -> Client:
    return Client(f"02:00:00:00:00:{n:02x}", f"192.0.2.{10 + n}", utcnow() + timedelta(hours=hours))


def test_render_has_the_pieces(box_config: Config) -> None:
    text = render_ruleset(box_config, [client(1)])
    assert 'iifname "br-guest" tcp dport 80 dnat ip to 192.0.2.1:8080' in text
    assert "tcp dport 443 reject with tcp reset" in text
    assert "elements = { 198.51.100.7/32, 203.0.113.0/28 }" in text
    assert "02:00:00:00:00:01 . 192.0.2.11 timeout" in text
    assert 'oifname "wan0" masquerade' in text
    assert "pay.example.com" not in text  # names go through dnsmasq


def test_render_refuses_a_loopback_portal(tmp_path: Path) -> None:
    config = load_config(environ={"INSTORE_DATABASE_PATH": str(tmp_path / "x.db")})
    with pytest.raises(GatewayError, match="guest LAN"):
        render_ruleset(config, [])


def test_dnsmasq_snippet(box_config: Config) -> None:
    text = render_dnsmasq(box_config)
    assert 'dhcp-option=114,"https://portal.store.example/api/captive"' in text
    for host in PROBE_HOSTS:
        assert f"address=/{host}/192.0.2.1" in text
    assert "nftset=/pay.example.com/4#inet#instore#garden_dns4" in text
    assert "interface=br-guest" in text
    assert "$" not in text


@needs_root
def test_load_apply_list(box_config: Config, netns: str) -> None:
    gateway = NsGateway(box_config, netns)
    assert gateway.ensure([]) is True  # missing: loaded
    assert gateway.ensure([]) is False  # healthy: nothing to do
    gateway.apply([client(1), client(2)], [])
    assert set(gateway.listing()) == {client(1).key, client(2).key}
    until = gateway.listing()[client(1).key].until
    assert abs((until - client(1).until).total_seconds()) < 5
    gateway.apply([client(3)], [client(1).key])
    assert set(gateway.listing()) == {client(2).key, client(3).key}
    # Re-authorizing an existing client replaces its timeout in the same transaction.
    gateway.apply([client(2, hours=1)], [client(2).key])
    assert gateway.listing()[client(2).key].until < utcnow() + timedelta(hours=2)


@needs_root
def test_drift_is_detected_and_clients_are_kept(box_config: Config, netns: str) -> None:
    gateway = NsGateway(box_config, netns)
    gateway.ensure([])
    gateway.apply([client(1)], [])
    handle = next(
        line.rsplit("handle ", 1)[1]
        for line in nft(netns, "-a", "list", "chain", "inet", "instore", "forward").splitlines()
        if "dport 443" in line
    )
    nft(netns, "delete", "rule", "inet", "instore", "forward", "handle", handle)
    assert gateway.ensure([]) is True
    assert "tcp dport 443 reject" in nft(netns, "list", "chain", "inet", "instore", "forward")
    assert set(gateway.listing()) == {client(1).key}  # the client survived the repair
    nft(netns, "delete", "table", "inet", "instore")
    assert gateway.ensure([]) is True
    assert gateway.listing() == {}


@needs_root
def test_rendered_ruleset_passes_nft_check(box_config: Config, netns: str) -> None:
    text = render_ruleset(box_config, [client(n) for n in range(50)])
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-c", "-f", "-"], input=text, text=True, check=True
    )


@needs_root
def test_a_failed_change_is_an_error_not_a_crash(box_config: Config, netns: str) -> None:
    gateway = NsGateway(box_config, netns)
    with pytest.raises(GatewayError, match="failed"):
        gateway.apply([client(9)], [])  # no table to add to


ELEMENT_GONE_WITHIN_SECONDS = 5.0  # the kernel drops a 1 s element after 1 s; slack for slow CI
ELEMENT_POLL_SECONDS = 0.05


@needs_root
def test_removing_a_client_whose_element_already_timed_out(box_config: Config, netns: str) -> None:
    """The kernel drops an element when its timeout fires, often before the gatekeeper's remove;
    that remove must not fail the batch (and the add beside it)."""
    gateway = NsGateway(box_config, netns)
    gateway.ensure([])
    gateway.apply([client(9, hours=0)], [])  # the shortest element timeout: 1 s
    deadline = time.monotonic() + ELEMENT_GONE_WITHIN_SECONDS
    while gateway.listing() and time.monotonic() < deadline:
        time.sleep(ELEMENT_POLL_SECONDS)
    assert gateway.listing() == {}
    gateway.apply([client(1)], [client(9).key])
    assert set(gateway.listing()) == {client(1).key}


# `nft list set inet t allowed4` (nft 1.0.6) for three elements: 8 h, 90 s, and none.
SET_LISTING = """table inet t {
\tset allowed4 {
\t\ttype ether_addr . ipv4_addr
\t\tflags timeout
\t\tcounter
\t\telements = { 02:00:00:00:00:01 . 192.0.2.11 counter packets 3 bytes 180 timeout 8h expires 7h59m59s992ms,
\t\t\t     02:00:00:00:00:02 . 192.0.2.12 counter packets 0 bytes 0 timeout 1m30s expires 1m29s992ms,
\t\t\t     02:00:00:00:00:03 . 192.0.2.13 counter packets 0 bytes 0 }
\t}
}
"""  # noqa: E501


def test_parse_set_listing() -> None:
    now = utcnow()
    found = parse_set_listing(SET_LISTING, now)
    assert {
        key: (round((s.until - now).total_seconds(), 3), s.bytes) for key, s in found.items()
    } == {
        ("02:00:00:00:00:01", "192.0.2.11"): (28799.992, 180),
        ("02:00:00:00:00:02", "192.0.2.12"): (89.992, 0),
        ("02:00:00:00:00:03", "192.0.2.13"): (0.0, 0),
    }
    assert parse_duration("1d2h3m4s5ms") == 86400 + 7200 + 180 + 4.005
