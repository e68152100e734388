"""Replay a capture file as if its radio were live: ``instore presence replay FILE.pcap``.

Used to reproduce what a store's sensor heard (a capture taken on site) through the whole
pipeline, at the recorded pace or as fast as the pipeline can take it (tests, benchmarks, what-if
runs of zone settings). Frames go through the same fast parser as the live wifi source, and become
the same Observations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

from presence.dot11 import MalformedFrame, WifiFrame, parse_frame
from presence.observation import WIFI_DATA, WIFI_PROBE, Observation
from presence.pcap import CaptureReader

log = logging.getLogger(__name__)

MONOTONIC_TIME = time.monotonic  # the one clock seam tests patch
# As fast as possible still hands the event loop a turn this often, so the daemon's other
# sources and its tracker keep running while a large file replays.
YIELD_EVERY_FRAMES = 512


def frame_observation(
    frame: WifiFrame,
    ts: float,
    sensor_id: str,
    member_macs: frozenset[str] | None = None,
) -> Observation | None:
    """The Observation a frame stands for, or None if presence has no use for it.

    Probe requests become ``WIFI_PROBE``; data frames become ``WIFI_DATA`` keyed by their
    transmitter (the phone we heard, so the RSSI is its own), only from ``member_macs`` when that
    is given. Everything else (beacons, acks, frames from access points to phones) is dropped.
    """
    address = frame.addr2
    if address is None or frame.seq is None:
        return None
    probe = frame.probe
    if probe is not None:
        payload = {
            "ssids": list(probe.ssids),
            "seq": frame.seq,
            "ie_ids": probe.ie_ids,
            "fingerprint": probe.fingerprint,
        }
        return Observation(ts, sensor_id, WIFI_PROBE, address, frame.rssi, payload)
    if frame.is_data and (member_macs is None or address in member_macs):
        return Observation(ts, sensor_id, WIFI_DATA, address, frame.rssi, {"seq": frame.seq})
    return None


class PcapReplaySource:
    """A presence source reading a pcap/pcapng file of 802.11 frames.

    ``speed`` is a multiple of the recorded pace (1.0 = as recorded, 10.0 = ten times faster), or
    None for as fast as possible. ``rebase_time`` shifts timestamps so the first frame is "now",
    for demos that want live-looking events. Malformed frames are counted in ``malformed`` and
    skipped. A missing or non-pcap file raises PcapError at construction, so a typo in a command
    line fails at once.
    """

    def __init__(
        self,
        path: str | Path,
        sensor_id: str,
        speed: float | None = None,
        *,
        member_macs: Iterable[str] | None = None,
        rebase_time: bool = False,
        name: str = "replay",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"replay speed must be positive, got {speed}")
        self.path = Path(path)
        CaptureReader(self.path).close()  # fail now on a missing or foreign file
        self.name = name
        self.sensor_id = sensor_id
        self.speed = speed
        self.member_macs = (
            None if member_macs is None else frozenset(mac.lower() for mac in member_macs)
        )
        self.rebase_time = rebase_time
        self._sleep = sleep
        self.frames = 0
        self.malformed = 0

    async def stream(self) -> AsyncIterator[Observation]:
        """Yield the file's observations in file order, paced by their timestamps if asked."""
        first_ts: float | None = None
        started = MONOTONIC_TIME()
        shift = 0.0
        with CaptureReader(self.path) as reader:
            for ts, linktype, data, truncated in reader:
                self.frames += 1
                try:
                    frame = parse_frame(data, linktype, truncated)
                except MalformedFrame as exc:
                    self.malformed += 1
                    log.debug("%s: frame %d skipped: %s", self.path, self.frames, exc)
                    continue
                if first_ts is None:
                    first_ts = ts
                    if self.rebase_time:
                        shift = time.time() - ts
                observation = frame_observation(frame, ts + shift, self.sensor_id, self.member_macs)
                if observation is None:
                    continue
                if self.speed is not None:
                    delay = started + (ts - first_ts) / self.speed - MONOTONIC_TIME()
                    if delay > 0:
                        await self._sleep(delay)
                elif self.frames % YIELD_EVERY_FRAMES == 0:
                    await asyncio.sleep(0)
                yield observation
        log.info("%s: replayed %d frames (%d malformed)", self.path, self.frames, self.malformed)
