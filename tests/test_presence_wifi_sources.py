"""The replay and live wifi sources: Observations from real pcap files, the kernel filter compiled
and run by libpcap, channel hopping through ``iw`` (the one faked seam: no radio here)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import subprocess
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from instore.config import Config, load_config
from instore.plugins import pm
from presence.dot11 import LINKTYPE_IEEE802_11_RADIOTAP
from presence.observation import WIFI_DATA, WIFI_PROBE, Observation
from presence.pcap import PcapError, read_capture
from presence.sources import builtin, replay
from presence.sources.replay import PcapReplaySource
from presence.sources.wifi import (
    MAX_FILTER_MACS,
    ChannelHopError,
    ChannelHopper,
    ScapyCaptureSocket,
    WifiSource,
    build_bpf_filter,
    hop_schedule,
)
from tests.wifi_captures import (
    ANDROID_IES,
    AP_MAC,
    IPHONE_IES,
    ack,
    beacon,
    data_frame,
    probe_request,
    rts,
    write_pcap,
)

PRIVATE = "da:a1:19:0b:7c:2e"
MEMBER = "3c:22:fb:12:34:56"
STRANGER = "00:1b:63:aa:bb:cc"
START = 1_700_000_000.0


def capture(tmp_path: Path) -> Path:
    """A probe, a beacon, a member's data frame, a stranger's, an ACK, a broken frame, a probe."""
    frames: list[Any] = [
        probe_request(PRIVATE, 10, IPHONE_IES, "Shop Guest", -61),
        beacon(1),
        data_frame(MEMBER, 700, -55),
        data_frame(STRANGER, 5, -70),
        ack(MEMBER),
        bytes(probe_request(PRIVATE, 11, IPHONE_IES, "", -62))[:30],
        probe_request(MEMBER, 701, ANDROID_IES, "", -57, layout="antennas", antennas=(-58, -60)),
    ]
    return write_pcap(tmp_path / "store.pcap", frames, start=START, step=0.5)


async def collect(
    stream: AsyncGenerator[Observation, None], limit: int | None = None
) -> list[Observation]:
    seen = []
    async with contextlib.aclosing(stream):  # as the daemon does: stop the radio when done
        async for observation in stream:
            seen.append(observation)
            if limit is not None and len(seen) >= limit:
                break
    return seen


def test_replay_as_fast_as_possible_yields_the_observations(tmp_path: Path) -> None:
    source = PcapReplaySource(capture(tmp_path), sensor_id="door")
    observations = asyncio.run(collect(source.stream()))
    probe_ids = (0, 1, 50, 3, 45, 127, 221)
    assert [(o.kind, o.address, o.rssi, o.ts) for o in observations] == [
        (WIFI_PROBE, PRIVATE, -61, START),
        (WIFI_DATA, MEMBER, -55, START + 1.0),
        (WIFI_DATA, STRANGER, -70, START + 1.5),  # no member list given: the identity stage picks
        (WIFI_PROBE, MEMBER, -57, START + 3.0),
    ]
    assert all(o.sensor_id == "door" for o in observations)
    first = observations[0].payload
    assert first["ssids"] == ["Shop Guest"]
    assert (first["seq"], first["ie_ids"]) == (10, probe_ids)
    assert len(first["fingerprint"]) == 16
    assert observations[1].payload == {"seq": 700}
    assert observations[3].payload["fingerprint"] != first["fingerprint"]
    assert (source.frames, source.malformed) == (7, 1)


def test_replay_keeps_only_members_data_frames_when_told(tmp_path: Path) -> None:
    source = PcapReplaySource(capture(tmp_path), "door", member_macs=[MEMBER.upper()])
    kinds = [(o.kind, o.address) for o in asyncio.run(collect(source.stream()))]
    assert (WIFI_DATA, STRANGER) not in kinds
    assert (WIFI_DATA, MEMBER) in kinds


def test_replay_at_recorded_speed_waits_between_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        clock[0] += seconds

    monkeypatch.setattr(replay, "MONOTONIC_TIME", lambda: clock[0])
    source = PcapReplaySource(capture(tmp_path), "door", speed=2.0, sleep=fake_sleep)
    observations = asyncio.run(collect(source.stream()))
    # Observations at 0, 1.0, 1.5 and 3.0 s of capture time, replayed twice as fast.
    assert slept == [0.5, 0.25, 0.75]
    assert clock[0] == pytest.approx(101.5)
    assert len(observations) == 4


def test_replay_rebased_to_now(tmp_path: Path) -> None:
    source = PcapReplaySource(capture(tmp_path), "door", rebase_time=True)
    observations = asyncio.run(collect(source.stream()))
    assert observations[-1].ts - observations[0].ts == pytest.approx(3.0)
    assert observations[0].ts > START + 86400


def test_replay_refuses_bad_files_and_speeds_at_once(tmp_path: Path) -> None:
    with pytest.raises(PcapError, match="no such file"):
        PcapReplaySource(tmp_path / "missing.pcap", "door")
    with pytest.raises(ValueError, match="positive"):
        PcapReplaySource(capture(tmp_path), "door", speed=0)


def presence_config(**values: Any) -> Config:
    """The real configuration, with these [presence] settings given as a box's environment."""
    environ = {
        f"INSTORE_PRESENCE_{key.upper()}": ",".join(value)
        if isinstance(value, list)
        else str(value)
        for key, value in values.items()
    }
    return load_config(environ=environ)


def test_builtin_hook_builds_sources_from_presence_settings(tmp_path: Path) -> None:
    path = capture(tmp_path)
    registered = pm.is_registered(builtin)
    if not registered:
        pm.register(builtin)
    try:
        config = presence_config(
            replay_file=str(path),
            replay_speed="4",
            sensor_id="till",
            wifi_interface="mon1",
            wifi_channels=["1", "6"],
            wifi_dwell_ms=100,
        )
        source = pm.hook.presence_source(name="replay", config=config)
        assert isinstance(source, PcapReplaySource)
        assert (source.name, source.sensor_id, source.speed) == ("replay", "till", 4.0)
        wifi = pm.hook.presence_source(name="wifi", config=config)
        assert isinstance(wifi, WifiSource)
        assert wifi.hopper is not None
        assert (wifi.interface, wifi.hopper.channels, wifi.hopper.dwell_s) == ("mon1", [1, 6], 0.1)
        assert pm.hook.presence_source(name="nonesuch", config=config) is None
    finally:
        if not registered:
            pm.unregister(builtin)


def test_builtin_hook_with_the_default_presence_settings(config: Config) -> None:
    wifi = builtin.presence_source("wifi", config)
    assert (wifi.interface, wifi.sensor_id, wifi.bpf_filter) == ("wlan0mon", "wifi-1", "type mgt")
    with pytest.raises(ValueError, match="replay_file"):
        builtin.presence_source("replay", config)
    assert builtin.replay_speed("max") is None
    with pytest.raises(ValueError, match="replay_speed"):
        builtin.replay_speed("fast")


def compile_and_run_filter(expression: str, frames: list[bytes]) -> list[bool]:
    """Compile with scapy (libpcap, radiotap link type) and run the BPF program on each frame
    with libpcap's interpreter: the program the kernel would run on the monitor interface."""
    from scapy.arch.common import compile_filter
    from scapy.libs.structures import bpf_program
    from scapy.libs.winpcapy import pcap_pkthdr

    library = ctypes.util.find_library("pcap")
    if library is None:
        pytest.fail("libpcap is missing (.ci/run installs libpcap0.8)")
    libpcap = ctypes.CDLL(library)
    libpcap.pcap_offline_filter.restype = ctypes.c_int
    libpcap.pcap_offline_filter.argtypes = [
        ctypes.POINTER(bpf_program),
        ctypes.POINTER(pcap_pkthdr),
        ctypes.c_char_p,
    ]
    program = compile_filter(expression, linktype=LINKTYPE_IEEE802_11_RADIOTAP)
    results = []
    for data in frames:
        header = pcap_pkthdr()
        header.caplen = header.len = len(data)
        results.append(bool(libpcap.pcap_offline_filter(program, header, data)))
    return results


def test_kernel_filter_passes_management_and_members_frames_only() -> None:
    frames = [
        bytes(probe_request(PRIVATE, 1)),
        bytes(beacon()),
        bytes(data_frame(MEMBER, 2)),
        bytes(data_frame(STRANGER, 3)),
        bytes(ack(MEMBER)),
        bytes(rts(AP_MAC, MEMBER)),
        bytes(probe_request(MEMBER, 4, layout="antennas", antennas=(-60, -61))),
        bytes(data_frame(MEMBER, 5, layout="tsft")),
    ]
    members = build_bpf_filter([MEMBER.upper(), "02:00:00:00:00:09"])
    assert compile_and_run_filter(members, frames) == [
        True,
        True,
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    probes_only = build_bpf_filter([MEMBER], probe_requests_only=True)
    assert compile_and_run_filter(probes_only, frames) == [
        True,
        False,
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    assert compile_and_run_filter(build_bpf_filter(), frames) == [
        True,
        True,
        False,
        False,
        False,
        False,
        True,
        False,
    ]


def test_kernel_filter_for_many_members_passes_all_data_and_still_compiles() -> None:
    many = [f"02:00:00:00:{i // 256:02x}:{i % 256:02x}" for i in range(MAX_FILTER_MACS + 1)]
    assert build_bpf_filter(many) == "type mgt or type data"
    at_limit = build_bpf_filter(many[:MAX_FILTER_MACS])
    assert at_limit.count("wlan addr2") == MAX_FILTER_MACS
    assert compile_and_run_filter(at_limit, [bytes(data_frame(many[-2], 1))]) == [True]


@pytest.mark.parametrize("bad", ["3c:22:fb:12:34", "3c:22:fb:12:34:5g", "x or type data"])
def test_kernel_filter_refuses_what_is_not_a_mac(bad: str) -> None:
    with pytest.raises(ValueError, match="not a MAC"):
        build_bpf_filter([bad])


def test_hop_schedule_cycles_with_per_channel_dwell() -> None:
    steps = hop_schedule([1, 6, 11, 36], {1: 0.5, 6: 0.5, 11: 0.5, 36: 0.1})
    assert [next(steps) for _ in range(6)] == [
        (1, 0.5),
        (6, 0.5),
        (11, 0.5),
        (36, 0.1),
        (1, 0.5),
        (6, 0.5),
    ]
    uniform = hop_schedule([11], 0.2)
    assert [next(uniform) for _ in range(2)] == [(11, 0.2), (11, 0.2)]
    for channels, dwell in (([], 0.25), ([15], 0.25), ([1], 0.0)):
        with pytest.raises(ValueError):
            hop_schedule(channels, dwell)


class FakeIw:
    """The subprocess seam: records `iw` commands, refuses the channels it is told to."""

    def __init__(self, refuse: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.commands: list[list[str]] = []
        self.refuse = refuse

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        assert kwargs["timeout"] > 0
        refused = int(command[-1]) in self.refuse
        return subprocess.CompletedProcess(
            command,
            1 if refused else 0,
            "",
            "command failed: Invalid argument (-22)" if refused else "",
        )


def test_channel_hopper_runs_iw_and_drops_refused_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    iw = FakeIw(refuse={13})
    hopper = ChannelHopper("mon0", [1, 13, 6], 0.001, run_command=iw)

    async def hop_a_while() -> None:
        task = asyncio.create_task(hopper.run())
        while len(iw.commands) < 6:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(hop_a_while())
    assert iw.commands[0] == ["iw", "dev", "mon0", "set", "channel", "1"]
    assert [int(c[-1]) for c in iw.commands[:6]] == [1, 13, 1, 6, 1, 6]
    assert hopper.channels == [1, 6]


def test_channel_hopper_gives_up_when_no_channel_can_be_set() -> None:
    hopper = ChannelHopper("mon0", [1, 6], 0.001, run_command=FakeIw(refuse={1, 6}))
    with pytest.raises(ChannelHopError, match="no channel"):
        asyncio.run(hopper.run())


class PcapRadio:
    """The radio seam for WifiSource: a "monitor interface" that receives the frames of a real
    pcap file, then nothing (or an error, like an interface unplugged)."""

    linktype = LINKTYPE_IEEE802_11_RADIOTAP

    def __init__(self, path: Path, then_fail: bool = False) -> None:
        self.records = [(data, ts) for ts, _, data, _ in read_capture(path)]
        self.then_fail = then_fail
        self.filters: list[str] = []
        self.closed = False

    def receive(self, timeout: float) -> tuple[bytes, float] | None:
        if self.records:
            return self.records.pop(0)
        if self.then_fail:
            raise OSError(100, "Network is down")
        time.sleep(min(timeout, 0.01))  # a quiet radio: recv blocks until its timeout
        return None

    def set_filter(self, bpf_filter: str) -> None:
        self.filters.append(bpf_filter)

    def close(self) -> None:
        self.closed = True


def test_wifi_source_turns_captured_frames_into_observations(tmp_path: Path) -> None:
    radio = PcapRadio(capture(tmp_path))
    opened: list[tuple[str, str]] = []

    def open_socket(interface: str, bpf_filter: str) -> PcapRadio:
        opened.append((interface, bpf_filter))
        return radio

    iw = FakeIw()
    source = WifiSource(
        "mon0",
        "door",
        channels=[1, 6],
        dwell_s=0.01,
        member_macs=[MEMBER],
        open_socket=open_socket,
        run_command=iw,
    )
    observations = asyncio.run(collect(source.stream(), limit=3))
    assert opened == [("mon0", f"type mgt or (type data and (wlan addr2 {MEMBER}))")]
    assert [(o.kind, o.address, o.rssi, o.ts) for o in observations] == [
        (WIFI_PROBE, PRIVATE, -61, START),
        (WIFI_DATA, MEMBER, -55, START + 1.0),
        (WIFI_PROBE, MEMBER, -57, START + 3.0),  # the stranger's data frame is not a member's
    ]
    assert (source.frames, source.malformed) == (7, 1)
    assert radio.closed
    assert iw.commands and iw.commands[0][:4] == ["iw", "dev", "mon0", "set"]


def test_wifi_source_follows_member_changes_and_raises_when_the_radio_goes(tmp_path: Path) -> None:
    radio = PcapRadio(capture(tmp_path), then_fail=True)
    source = WifiSource("mon0", "door", hop=False, open_socket=lambda i, f: radio)

    async def run() -> list[Observation]:
        seen: list[Observation] = []
        async for observation in source.stream():
            seen.append(observation)
            source.set_member_macs([STRANGER])
        return seen

    with pytest.raises(OSError, match="Network is down"):
        asyncio.run(run())
    assert radio.filters[0] == f"type mgt or (type data and (wlan addr2 {STRANGER}))"
    assert radio.closed


def test_live_capture_refuses_an_interface_not_in_monitor_mode() -> None:
    # Real interfaces of this machine: loopback is ARPHRD_LOOPBACK (772), not radiotap (803).
    with pytest.raises(ValueError, match="lo is not in monitor mode"):
        ScapyCaptureSocket("lo", "type mgt")
    with pytest.raises(ValueError, match="no network interface"):
        ScapyCaptureSocket("nonesuch0", "type mgt")
    source = WifiSource("lo", "door", hop=False)
    with pytest.raises(ValueError, match="monitor mode"):
        asyncio.run(collect(source.stream()))


def test_wifi_source_reads_a_member_function_and_follows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from presence.sources import wifi

    monkeypatch.setattr(wifi, "MEMBER_REFRESH_S", 0.01)
    radio = PcapRadio(capture(tmp_path))
    state = {"switched": False, "calls_after": 0}

    def members() -> list[str]:
        """One member until the test switches; then a failed read, then another member."""
        if not state["switched"]:
            return [MEMBER.upper()]
        state["calls_after"] += 1
        if state["calls_after"] == 1:
            raise OSError("database is locked")
        return [STRANGER]

    opened: list[str] = []

    def open_socket(interface: str, bpf_filter: str) -> PcapRadio:
        opened.append(bpf_filter)
        return radio

    source = WifiSource("mon0", "door", hop=False, member_macs=members, open_socket=open_socket)

    async def run() -> list[Observation]:
        seen: list[Observation] = []
        async with contextlib.aclosing(source.stream()) as stream:
            async for observation in stream:
                seen.append(observation)
                if len(seen) == 3:
                    state["switched"] = True
                    while not radio.filters:  # the refresh task replaces the kernel filter
                        await asyncio.sleep(0.005)
                    break
        return seen

    observations = asyncio.run(run())
    assert opened == [f"type mgt or (type data and (wlan addr2 {MEMBER}))"]
    assert (WIFI_DATA, MEMBER) in [(o.kind, o.address) for o in observations]
    assert radio.filters == [f"type mgt or (type data and (wlan addr2 {STRANGER}))"]


def test_builtin_wifi_source_gets_consenting_members_macs_from_the_database(
    config: Config, db: Any
) -> None:
    from instore import members

    ana = members.create_member(db, display_name="Ana", password="long enough", email="a@x.es")
    members.link_device(db, MEMBER, ana.id)
    current = builtin.linked_member_macs(config)
    assert current() == []  # linked, but no location consent yet
    members.record_consents(db, ana.id, {"location": True}, "v1")
    assert current() == [MEMBER]
