"""Live 802.11 capture on a monitor-mode interface: probe requests and linked members' frames.

How: scapy opens a Linux packet socket on the interface and attaches a kernel BPF filter, so only
management frames and data frames sent by linked members' MACs ever reach Python (an office AP's
data traffic would otherwise dominate). A thread reads raw frames from that socket — scapy's
``recv_raw``, without its per-frame dissection, which runs at ~600 frames/s — parses them with
``presence.dot11`` and hands batches of Observations to the event loop through an asyncio.Queue.
Meanwhile ``iw dev IF set channel N`` hops the radio over a channel list, since phones probe on
every channel but a radio hears one at a time.

The interface must already be in monitor mode (deploy/ sets it up); opening it needs
CAP_NET_RAW and changing channels CAP_NET_ADMIN.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import select
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from presence.dot11 import (
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    MalformedFrame,
    parse_frame,
)
from presence.observation import Observation
from presence.sources.replay import frame_observation

log = logging.getLogger(__name__)

# 2.4 GHz channels 1, 6 and 11 do not overlap; phones send most probes there, and a radio on
# channel N also hears neighbours' frames two channels away, so three cover the band.
DEFAULT_CHANNELS = (1, 6, 11)
# Long enough to hear a whole scan burst (a phone spends ~20-100 ms per channel), short enough to
# come back to each channel several times a second.
DEFAULT_DWELL_S = 0.25
VALID_CHANNELS = frozenset(range(1, 15)) | frozenset(range(32, 178))  # 2.4 GHz, 5 GHz numbers
IW_TIMEOUT_S = 5.0  # `iw` returns in milliseconds; longer means the driver is wedged

# Linux ARPHRD_* interface types (/sys/class/net/IF/type) to pcap link types.
ARPHRD_TO_LINKTYPE = {803: LINKTYPE_IEEE802_11_RADIOTAP, 801: LINKTYPE_IEEE802_11}
ETH_P_ALL = 0x0003  # every protocol: monitor interfaces carry no Ethernet type

# The kernel refuses BPF programs over 4096 instructions; libpcap spends ~8 per `wlan addr2`
# test. Beyond this many members the filter passes all data frames and Python filters them.
MAX_FILTER_MACS = 400
MAC_PATTERN = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

RECV_TIMEOUT_S = 0.1  # the capture thread checks for stop at least this often
BATCH_MAX = 256  # observations per hand-over to the event loop: one wake-up per batch, not frame
# ...and none waits longer than this in a batch: sighting to zone event has a 200 ms budget.
BATCH_MAX_DELAY_S = 0.02
QUEUE_MAX_BATCHES = 256  # ~65k observations; a stalled consumer loses frames, not memory
RECV_BUFFER = 65535  # larger than any 802.11 frame plus radiotap
# How often a member list given as a function is read again. A member links a phone by signing in
# on the portal; their probe requests are heard meanwhile, only their data frames wait this long.
MEMBER_REFRESH_S = 60.0


class CaptureSocket(Protocol):
    """The seam between this module and the radio: raw frames in, a filter to set."""

    linktype: int

    def receive(self, timeout: float) -> tuple[bytes, float] | None:
        """The next frame and its capture time, or None if none came within ``timeout``."""

    def set_filter(self, bpf_filter: str) -> None:
        """Replace the kernel filter."""

    def close(self) -> None: ...


class ChannelHopError(RuntimeError):
    """No channel of the list could be set: the interface is gone or not ours."""


def build_bpf_filter(member_macs: Iterable[str] = (), probe_requests_only: bool = False) -> str:
    """The kernel filter: management frames (or probe requests only), plus data frames sent by
    the given linked members' MACs (all data frames above MAX_FILTER_MACS members)."""
    macs = sorted({mac.strip().lower() for mac in member_macs})
    for mac in macs:
        if not MAC_PATTERN.match(mac):
            raise ValueError(f"not a MAC address: {mac!r}")
    management = "type mgt subtype probe-req" if probe_requests_only else "type mgt"
    if not macs:
        return management
    if len(macs) > MAX_FILTER_MACS:
        return f"{management} or type data"
    senders = " or ".join(f"wlan addr2 {mac}" for mac in macs)
    return f"{management} or (type data and ({senders}))"


def hop_schedule(
    channels: Sequence[int], dwell_s: float | Mapping[int, float] = DEFAULT_DWELL_S
) -> Iterator[tuple[int, float]]:
    """Endless ``(channel, seconds)`` steps over ``channels`` in order; ``dwell_s`` may give a
    channel more time (e.g. {1: 0.5, 6: 0.5, 11: 0.5, 36: 0.1})."""
    if not channels:
        raise ValueError("channel list is empty")
    steps = []
    for channel in channels:
        if channel not in VALID_CHANNELS:
            raise ValueError(f"not a 2.4/5 GHz channel number: {channel}")
        dwell = dwell_s.get(channel, DEFAULT_DWELL_S) if isinstance(dwell_s, Mapping) else dwell_s
        if dwell <= 0:
            raise ValueError(f"dwell for channel {channel} must be positive, got {dwell}")
        steps.append((channel, float(dwell)))
    return itertools.cycle(steps)


class ChannelHopper:
    """Runs ``iw dev IF set channel N`` along a hop schedule. A channel the driver refuses (not
    allowed in this country, not supported) is dropped with a warning; if all are, it raises."""

    def __init__(
        self,
        interface: str,
        channels: Sequence[int],
        dwell_s: float | Mapping[int, float] = DEFAULT_DWELL_S,
        run_command: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    ) -> None:
        self.interface = interface
        self.channels = list(channels)
        self.dwell_s = dwell_s
        self.run_command = run_command
        hop_schedule(self.channels, dwell_s)  # validate now, not in the background task
        self.current: int | None = None

    def set_channel(self, channel: int) -> bool:
        """Tune the radio; False (and logged) when `iw` refuses."""
        command = ["iw", "dev", self.interface, "set", "channel", str(channel)]
        try:
            result = self.run_command(
                command, capture_output=True, text=True, timeout=IW_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("%s: %s", " ".join(command), exc)
            return False
        if result.returncode != 0:
            log.warning("%s: %s", " ".join(command), (result.stderr or "").strip())
            return False
        self.current = channel
        return True

    async def run(self) -> None:
        """Hop until cancelled; with one channel left, set it once and return."""
        while self.channels:
            for channel, dwell in hop_schedule(self.channels, self.dwell_s):
                if not await asyncio.to_thread(self.set_channel, channel):
                    self.channels.remove(channel)
                    break  # restart the schedule without it
                if len(self.channels) == 1:
                    return
                await asyncio.sleep(dwell)
        raise ChannelHopError(f"{self.interface}: no channel could be set (see the iw errors)")


class ScapyCaptureSocket:
    """The real radio: scapy's Linux packet socket with a kernel filter, read without
    dissection."""

    def __init__(self, interface: str, bpf_filter: str) -> None:
        # Only the socket layer (~20 MB); ``scapy.all`` would load every protocol (~50 MB more).
        from scapy.arch.linux import L2ListenSocket

        self.interface = interface
        self.linktype = interface_linktype(interface)
        # Without scapy's 802.11 layers loaded it warns that it cannot name the link type; we
        # never let it dissect, so that is expected, not worth a line in the log.
        scapy_log = logging.getLogger("scapy.runtime")
        level = scapy_log.level
        scapy_log.setLevel(logging.ERROR)
        try:
            self._socket: Any = L2ListenSocket(iface=interface, type=ETH_P_ALL, filter=bpf_filter)
        finally:
            scapy_log.setLevel(level)

    def receive(self, timeout: float) -> tuple[bytes, float] | None:
        readable, _, _ = select.select([self._socket.ins], [], [], timeout)
        if not readable:
            return None
        _cls, data, ts = self._socket.recv_raw(RECV_BUFFER)
        return (data, ts) if data is not None else None

    def set_filter(self, bpf_filter: str) -> None:
        from scapy.arch.linux import attach_filter

        attach_filter(self._socket.ins, bpf_filter, self.interface)

    def close(self) -> None:
        self._socket.close()


def interface_linktype(interface: str) -> int:
    """The capture link type of a monitor-mode interface; ValueError with the fix otherwise."""
    try:
        arphrd = int(Path(f"/sys/class/net/{interface}/type").read_text())
    except FileNotFoundError:
        raise ValueError(f"no network interface {interface!r}") from None
    if arphrd not in ARPHRD_TO_LINKTYPE:
        raise ValueError(
            f"{interface} is not in monitor mode (type {arphrd}); "
            f"try: iw dev {interface} set type monitor"
        )
    return ARPHRD_TO_LINKTYPE[arphrd]


class WifiSource:
    """The live wifi presence source (see the module docstring).

    ``member_macs`` are linked members' MACs whose data frames are wanted: a collection, or a
    function returning the current ones, read when the stream starts and every
    MEMBER_REFRESH_S; ``set_member_macs`` changes them while running (the kernel filter is
    replaced in place). ``open_socket`` is the
    radio seam, replaced only in tests (this machine has no radio).
    """

    def __init__(
        self,
        interface: str,
        sensor_id: str,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        dwell_s: float | Mapping[int, float] = DEFAULT_DWELL_S,
        member_macs: Iterable[str] | Callable[[], Iterable[str]] = (),
        *,
        hop: bool = True,
        probe_requests_only: bool = False,
        name: str = "wifi",
        open_socket: Callable[[str, str], CaptureSocket] = ScapyCaptureSocket,
        run_command: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    ) -> None:
        self.name = name
        self.interface = interface
        self.sensor_id = sensor_id
        self.probe_requests_only = probe_requests_only
        self.hopper = ChannelHopper(interface, channels, dwell_s, run_command) if hop else None
        self._open_socket = open_socket
        self._member_provider = member_macs if callable(member_macs) else None
        self._members = frozenset() if callable(member_macs) else _lowered(member_macs)
        self.bpf_filter = build_bpf_filter(self._members, probe_requests_only)
        self._socket: CaptureSocket | None = None
        self.frames = 0
        self.malformed = 0
        self.dropped = 0  # observations lost because the consumer fell behind

    def set_member_macs(self, member_macs: Iterable[str]) -> None:
        """Follow linked MACs as members link and unlink devices."""
        members = _lowered(member_macs)
        self.bpf_filter = build_bpf_filter(members, self.probe_requests_only)
        self._members = members
        if self._socket is not None:
            self._socket.set_filter(self.bpf_filter)

    async def stream(self) -> AsyncIterator[Observation]:
        """Capture until cancelled; raises when the interface goes away (the daemon retries)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[Observation] | BaseException] = asyncio.Queue()
        stop = threading.Event()
        self._refresh_members()
        capture_socket = await asyncio.to_thread(self._open_socket, self.interface, self.bpf_filter)
        self._socket = capture_socket
        thread = threading.Thread(
            target=self._capture,
            args=(capture_socket, loop, queue, stop),
            name=f"wifi-capture-{self.interface}",
            daemon=True,
        )
        thread.start()
        hopping = asyncio.create_task(self._hop(queue)) if self.hopper else None
        following = asyncio.create_task(self._follow_members()) if self._member_provider else None
        try:
            while True:
                batch = await queue.get()
                if isinstance(batch, BaseException):
                    raise batch
                for observation in batch:
                    yield observation
        finally:
            stop.set()
            for task in (hopping, following):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ChannelHopError):
                        await task
            await asyncio.to_thread(thread.join)
            capture_socket.close()
            self._socket = None

    def _refresh_members(self) -> None:
        """Read the member list again if it is a function; keep the old one if that fails."""
        if self._member_provider is None:
            return
        try:
            members = _lowered(self._member_provider())
        except Exception as exc:  # a locked database must not stop the capture
            log.warning("%s: member MACs not refreshed: %s", self.interface, exc)
            return
        if members != self._members:
            self.set_member_macs(members)

    async def _follow_members(self) -> None:
        while True:
            await asyncio.sleep(MEMBER_REFRESH_S)
            self._refresh_members()

    async def _hop(self, queue: asyncio.Queue[list[Observation] | BaseException]) -> None:
        assert self.hopper is not None
        try:
            await self.hopper.run()
        except ChannelHopError as exc:
            queue.put_nowait(exc)

    def _capture(
        self,
        capture_socket: CaptureSocket,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[list[Observation] | BaseException],
        stop: threading.Event,
    ) -> None:
        """Capture thread: read, parse, batch, hand over; errors go to the stream to raise."""

        def offer(item: list[Observation] | BaseException) -> None:
            if isinstance(item, list) and queue.qsize() >= QUEUE_MAX_BATCHES:
                self.dropped += len(item)
                return
            queue.put_nowait(item)

        linktype = capture_socket.linktype
        batch: list[Observation] = []
        flush_at = 0.0  # when the oldest observation in ``batch`` must be handed over
        try:
            while not stop.is_set():
                now = time.monotonic()
                wait = min(RECV_TIMEOUT_S, flush_at - now) if batch else RECV_TIMEOUT_S
                received = capture_socket.receive(max(wait, 0.0))
                if received is not None:
                    data, ts = received
                    self.frames += 1
                    try:
                        frame = parse_frame(data, linktype)
                    except MalformedFrame:
                        self.malformed += 1
                    else:
                        observation = frame_observation(frame, ts, self.sensor_id, self._members)
                        if observation is not None:
                            if not batch:
                                flush_at = time.monotonic() + BATCH_MAX_DELAY_S
                            batch.append(observation)
                if batch and (len(batch) >= BATCH_MAX or time.monotonic() >= flush_at):
                    loop.call_soon_threadsafe(offer, batch)
                    batch = []
        except Exception as exc:  # the interface went away: the stream raises it
            log.warning("%s: capture stopped: %s", self.interface, exc)
            with contextlib.suppress(RuntimeError):  # loop already closed
                if batch:  # what was heard before the error still counts
                    loop.call_soon_threadsafe(offer, batch)
                loop.call_soon_threadsafe(offer, exc)


def _lowered(macs: Iterable[str]) -> frozenset[str]:
    return frozenset(mac.strip().lower() for mac in macs)
