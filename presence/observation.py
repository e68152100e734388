"""The one shape every presence source yields, whatever the radio.

Sources (wifi, ble, replay, sim) turn what they hear into ``Observation``s; identity, estimation
and tracking never need to know which radio it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Observation kinds. Payload keys per kind are listed beside each.
WIFI_PROBE = "wifi_probe"  # ssids: list[str], seq: int, ie_ids: tuple[int, ...], fingerprint: str
WIFI_DATA = "wifi_data"  # seq: int (a frame from a linked member's MAC)
BLE = "ble"  # manufacturer: dict[int, bytes], service_data: dict[str, bytes], decoded: dict


@dataclass(frozen=True, slots=True)
class Observation:
    """One radio sighting: when, which sensor heard it, from which address, how loud."""

    ts: float  # seconds since the epoch, UTC
    sensor_id: str
    kind: str
    address: str  # lower-case colon MAC as heard (may be randomized)
    rssi: int | None  # dBm; None when the radio did not report it
    payload: Mapping[str, Any] = field(default_factory=dict)


def is_randomized(mac: str) -> bool:
    """Locally administered (the 0x02 bit of the first octet): phones' rotating private MACs."""
    return bool(int(mac[:2], 16) & 0x02)
