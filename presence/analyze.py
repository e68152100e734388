"""Offline analysis of a capture file: what ``instore presence analyze FILE.pcap --json`` prints.

A store manager (or we, tuning a sensor) can hold a capture taken in the store against what the
daemon would make of it: how many probe requests, how many addresses, how many of those are
randomized, how many devices that probably is, and how loud they were.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from presence.dot11 import MalformedFrame, parse_frame
from presence.fingerprint import DeviceCounter
from presence.pcap import PcapError, read_capture

__all__ = ["PcapError", "analyze_pcap"]


def analyze_pcap(path: str | Path) -> dict[str, Any]:
    """Summarise a pcap/pcapng file of 802.11 frames.

    Returns ``{"frames", "probe_requests", "addresses", "randomized_addresses",
    "devices_estimate", "rssi": {"min", "median", "max"}, "malformed"}``. ``frames`` counts every
    record, ``malformed`` those that could not be parsed (they count nowhere else). ``addresses``
    are the distinct transmitter addresses of probe requests; ``rssi`` is over probe requests that
    carry a dBm signal, with ``None`` values when none do (e.g. linktype 105 captures).
    Raises PcapError with a one-line reason for a missing or non-pcap file.
    """
    frames = probes = malformed = 0
    rssi_values: list[int] = []
    counter = DeviceCounter()
    for ts, linktype, data, truncated in read_capture(path):
        frames += 1
        try:
            frame = parse_frame(data, linktype, truncated)
        except MalformedFrame:
            malformed += 1
            continue
        probe = frame.probe
        if probe is None or frame.addr2 is None or frame.seq is None:
            continue
        probes += 1
        counter.add(frame.addr2, ts, frame.seq, probe.fingerprint)
        if frame.rssi is not None:
            rssi_values.append(frame.rssi)
    return {
        "frames": frames,
        "probe_requests": probes,
        "addresses": counter.addresses,
        "randomized_addresses": counter.randomized_addresses,
        "devices_estimate": counter.estimate(),
        "rssi": {
            "min": min(rssi_values) if rssi_values else None,
            "median": float(statistics.median(rssi_values)) if rssi_values else None,
            "max": max(rssi_values) if rssi_values else None,
        },
        "malformed": malformed,
    }
