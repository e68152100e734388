"""Client MAC lookup: neighbour table and dnsmasq lease parsing, the demo lookup, the gateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardware import clients
from hardware.clients import DemoLookup, NeighbourLookup, parse_dnsmasq_leases, parse_ip_neigh_json
from hardware.gateway import Client, MemoryGateway

LEASES = """\
1795000000 a4:5e:60:11:22:33 10.20.0.15 ana-iphone 01:a4:5e:60:11:22:33
1795000100 3C:22:FB:44:55:66 10.20.0.16 * *
garbage line
"""

# What `ip -j neigh show dev br-guest` prints (iproute2 6.1).
NEIGH = json.dumps(
    [
        {"dst": "10.20.0.15", "lladdr": "a4:5e:60:11:22:99", "state": ["REACHABLE"]},
        {"dst": "10.20.0.17", "lladdr": "de:ad:be:ef:00:01", "state": ["STALE"]},
        {"dst": "10.20.0.18", "state": ["FAILED"]},
        {"dst": "10.20.0.19", "lladdr": "de:ad:be:ef:00:02", "state": ["INCOMPLETE"]},
    ]
)


def test_parse_leases() -> None:
    assert parse_dnsmasq_leases(LEASES) == {
        "10.20.0.15": "a4:5e:60:11:22:33",
        "10.20.0.16": "3c:22:fb:44:55:66",
    }


def test_parse_neighbours_skips_unusable_entries() -> None:
    assert parse_ip_neigh_json(NEIGH) == {
        "10.20.0.15": "a4:5e:60:11:22:99",
        "10.20.0.17": "de:ad:be:ef:00:01",
    }


def test_neighbour_table_wins_over_leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text(LEASES)

    class Done:
        stdout = NEIGH

    monkeypatch.setattr(clients.subprocess, "run", lambda *a, **k: Done())
    lookup = NeighbourLookup("br-guest", leases)
    assert lookup.mac_for("10.20.0.15") == "a4:5e:60:11:22:99"  # the kernel's fresher answer
    assert lookup.mac_for("10.20.0.16") == "3c:22:fb:44:55:66"  # only in the leases
    assert lookup.mac_for("10.20.0.99") is None


def test_neighbour_lookup_survives_missing_tools(tmp_path: Path) -> None:
    """No lease file and an interface that does not exist: None, not an exception."""
    lookup = NeighbourLookup("no-such-if0", tmp_path / "absent.leases")
    assert lookup.mac_for("10.0.0.1") is None


def test_demo_lookup_is_stable_and_locally_administered() -> None:
    mac = DemoLookup().mac_for("127.0.0.1")
    assert mac == DemoLookup().mac_for("127.0.0.1")
    assert mac is not None and int(mac[:2], 16) & 0x02
    assert DemoLookup().mac_for("127.0.0.2") != mac
    assert DemoLookup().mac_for("not an ip") is None


def test_memory_gateway_applies_batches() -> None:
    gateway = MemoryGateway()
    until = datetime(2030, 1, 1, tzinfo=UTC)
    gateway.apply([Client("02:00:00:00:00:01", "10.0.0.2", until)], [])
    gateway.apply(
        [Client("02:00:00:00:00:02", "10.0.0.3", until)], [("02:00:00:00:00:01", "10.0.0.2")]
    )
    assert gateway.authorized() == {("02:00:00:00:00:02", "10.0.0.3")}
