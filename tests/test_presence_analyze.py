"""``analyze_pcap`` (what ``instore presence analyze FILE --json`` prints), the capture reader's
formats and errors, and counting devices rather than MACs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from scapy.layers.dot11 import Dot11
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, PcapWriter

from presence.analyze import PcapError, analyze_pcap
from presence.fingerprint import AddressTrack, DeviceCounter, chain_tracks
from presence.pcap import read_capture
from tests.test_wifi_frames import tshark_fields
from tests.wifi_captures import (
    ANDROID_IES,
    IPHONE_IES,
    ack,
    beacon,
    data_frame,
    probe_request,
    write_pcap,
)

PRIVATE_A = "da:a1:19:0b:7c:2e"
FIXED_PHONE = "3c:22:fb:12:34:56"
KEYS = {
    "frames",
    "probe_requests",
    "addresses",
    "randomized_addresses",
    "devices_estimate",
    "rssi",
    "malformed",
}


def shop_frames() -> list[object]:
    """Nine frames: five probe requests from two phones, three other frames, one cut short."""
    return [
        probe_request(PRIVATE_A, 10, IPHONE_IES, "", -60),
        beacon(1),
        probe_request(
            PRIVATE_A, 11, IPHONE_IES, "Shop Guest", -62, layout="antennas", antennas=(-61, -66)
        ),
        probe_request(FIXED_PHONE, 500, ANDROID_IES, "", -70, layout="fcs"),
        data_frame(FIXED_PHONE, 501),
        ack(FIXED_PHONE),
        probe_request(PRIVATE_A, 12, IPHONE_IES, "", -64, layout="tsft"),
        bytes(probe_request(FIXED_PHONE, 502, ANDROID_IES, "", -52))[:-5],  # cut inside an element
        probe_request(FIXED_PHONE, 503, ANDROID_IES, "", -50, layout="no_signal"),
    ]


SHOP_EXPECTED = {
    "frames": 9,
    "probe_requests": 5,
    "addresses": 2,
    "randomized_addresses": 1,
    "devices_estimate": 2,
    "rssi": {"min": -70, "median": -63.0, "max": -60},  # the no-signal frame has none
    "malformed": 1,
}


def test_analyze_gives_exactly_the_documented_keys_and_values(tmp_path: Path) -> None:
    summary = analyze_pcap(write_pcap(tmp_path / "shop.pcap", shop_frames()))
    assert set(summary) == KEYS
    assert summary == SHOP_EXPECTED
    assert isinstance(summary["rssi"]["median"], float)
    json.dumps(summary)  # the CLI prints it as JSON


@pytest.mark.parametrize(
    "variant",
    ["big-endian", "nanoseconds", "pcapng"],
)
def test_every_capture_format_gives_the_same_summary(tmp_path: Path, variant: str) -> None:
    path = tmp_path / f"shop-{variant}.pcap"
    if variant == "pcapng":
        write_pcap(path, [f for f in shop_frames() if not isinstance(f, bytes)], pcapng=True)
        expected = {**SHOP_EXPECTED, "frames": 8, "malformed": 0}
    else:
        writer = PcapWriter(
            str(path),
            linktype=127,
            endianness=">" if variant == "big-endian" else "",
            nano=variant == "nanoseconds",
        )
        writer.write_header(None)
        for index, frame in enumerate(shop_frames()):
            # scapy takes the fraction in the file's unit: microseconds, or nanoseconds.
            fraction = 250_000_000 if variant == "nanoseconds" else 250_000
            writer.write_packet(bytes(frame), sec=1_700_000_000 + index, usec=fraction)
        writer.close()
        expected = SHOP_EXPECTED
    assert analyze_pcap(path) == expected
    stamps = [ts for ts, *_ in read_capture(path)]
    if variant == "pcapng":
        assert stamps[1] == pytest.approx(1_700_000_000.01, abs=1e-6)
    else:
        assert stamps[1] == pytest.approx(1_700_000_001.25, abs=1e-6)


def test_summary_agrees_with_tshark(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "shop.pcap", shop_frames())
    rows = tshark_fields(
        path,
        "wlan.sa",
        "radiotap.dbm_antsignal",
        display_filter="wlan.fc.type_subtype==4 && !_ws.malformed",
    )
    summary = analyze_pcap(path)
    assert summary["probe_requests"] == len(rows)
    assert summary["addresses"] == len({sa for sa, _ in rows})
    signals = [int(signal.split(",")[0]) for _, signal in rows if signal]
    assert summary["rssi"] == {
        "min": min(signals),
        "median": float(statistics.median(signals)),
        "max": max(signals),
    }


def rotating_device_frames() -> tuple[list[object], list[float]]:
    """One phone scanning every 30 s for 10 minutes under a new random MAC each scan (20 MACs),
    its 12-bit counter running on across MACs (and wrapping); plus three other devices: a phone of
    another model on one random MAC, a phone with a fixed MAC, and a second phone of the same
    model as the first, on one random MAC the whole time (it must not be merged with the first).
    """
    frames: list[object] = []
    times: list[float] = []
    seq = 4080  # wraps past 4095 in the first scans
    for scan in range(20):
        mac = f"{0x02 | (scan << 4) & 0xF0:02x}:5e:{scan:02x}:a0:1b:7c"
        for burst in range(4):
            frames.append(
                probe_request(
                    mac, seq % 4096, IPHONE_IES, "", -58 - burst, channel=(1, 6, 11)[burst % 3]
                )
            )
            times.append(scan * 30.0 + burst * 0.02)
            seq += 1
        seq += 3  # a few data frames between scans
    for index in range(20):
        t = index * 30.0 + 7.0
        frames += [
            probe_request("6a:11:22:33:44:55", 2000 + index, ANDROID_IES, "", -75),
            probe_request(FIXED_PHONE, 100 + index, IPHONE_IES, "Home", -80),
            probe_request("c6:99:88:77:66:55", 3000 + index * 5, IPHONE_IES, "", -66),
        ]
        times += [t, t + 0.1, t + 0.2]
    order = sorted(range(len(frames)), key=times.__getitem__)
    return [frames[i] for i in order], [times[i] + 1_700_000_000.0 for i in order]


def test_one_device_rotating_twenty_macs_counts_as_one_or_two(tmp_path: Path) -> None:
    frames, times = rotating_device_frames()
    summary = analyze_pcap(write_pcap(tmp_path / "rotating.pcap", frames, times=times))
    assert summary["addresses"] == 23  # what counting MACs would say
    assert summary["randomized_addresses"] == 22
    assert 4 <= summary["devices_estimate"] <= 5  # the rotating phone as 1-2, plus the other 3
    assert summary["probe_requests"] == 80 + 60


def track(
    address: str, first: float, last: float, seq0: int, seq1: int, fp: str = "f"
) -> AddressTrack:
    return AddressTrack(address, fp, first, last, seq0, seq1)


def test_same_model_phones_heard_at_the_same_time_are_split() -> None:
    tracks = [
        track("02:00:00:00:00:01", 0, 20, 10, 30),
        track("02:00:00:00:00:02", 5, 25, 900, 920),  # overlaps the first: another phone
        track("02:00:00:00:00:03", 40, 60, 31, 50),  # continues the first's counter
        track("02:00:00:00:00:04", 41, 60, 921, 940),  # continues the second's
    ]
    assert chain_tracks(tracks) == [
        ["02:00:00:00:00:01", "02:00:00:00:00:03"],
        ["02:00:00:00:00:02", "02:00:00:00:00:04"],
    ]


def test_counter_reset_merges_on_timing_only_when_close() -> None:
    close = [
        track("02:00:00:00:00:01", 0, 10, 100, 110),
        track("02:00:00:00:00:02", 40, 50, 3000, 3010),
    ]
    assert len(chain_tracks(close)) == 1  # a new MAC 30 s later, counter reset: the same phone
    far = [
        track("02:00:00:00:00:01", 0, 10, 100, 110),
        track("02:00:00:00:00:02", 900, 910, 3000, 3010),
    ]
    assert len(chain_tracks(far)) == 2  # a quarter of an hour later: could be anyone


def test_fixed_macs_count_as_themselves() -> None:
    counter = DeviceCounter()
    for index in range(5):
        counter.add(f"3c:22:fb:00:00:{index:02x}", float(index), index, "same-model")
    counter.add("02:00:00:00:00:01", 1.0, 1, "same-model")
    assert (counter.addresses, counter.randomized_addresses, counter.estimate()) == (6, 1, 6)


def test_no_probe_requests_gives_zero_counts_and_no_rssi(tmp_path: Path) -> None:
    summary = analyze_pcap(write_pcap(tmp_path / "quiet.pcap", [beacon(1), ack(FIXED_PHONE)]))
    assert summary == {
        "frames": 2,
        "probe_requests": 0,
        "addresses": 0,
        "randomized_addresses": 0,
        "devices_estimate": 0,
        "rssi": {"min": None, "median": None, "max": None},
        "malformed": 0,
    }


def test_a_file_cut_off_mid_record_counts_the_rest_as_malformed(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "cut.pcap", shop_frames()[:3])
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    summary = analyze_pcap(path)
    assert (summary["frames"], summary["probe_requests"], summary["malformed"]) == (3, 1, 1)
    first_record = 16 + int.from_bytes(data[24 + 8 : 24 + 12], "little")
    path.write_bytes(data[: 24 + first_record + 8])  # the second record's header is cut short
    assert analyze_pcap(path)["frames"] == 2


def test_a_pcapng_file_cut_off_mid_block_counts_it_as_malformed(tmp_path: Path) -> None:
    frames = [f for f in shop_frames() if not isinstance(f, bytes)][:3]
    path = write_pcap(tmp_path / "cut.pcapng", frames, pcapng=True)
    path.write_bytes(path.read_bytes()[:-10])
    summary = analyze_pcap(path)
    assert (summary["frames"], summary["probe_requests"], summary["malformed"]) == (3, 1, 1)


def ethernet_pcap(path: Path) -> Path:
    writer = PcapWriter(str(path), linktype=1)
    writer.write(Ether(dst="ff:ff:ff:ff:ff:ff") / b"hello")
    writer.close()
    return path


def ethernet_pcapng(path: Path) -> Path:
    writer = PcapNgWriter(str(path))
    writer.write(Ether(dst="ff:ff:ff:ff:ff:ff") / b"hello")
    writer.close()
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
        (lambda p: (p.write_bytes(b""), p)[1], "not a pcap file"),
        (
            lambda p: (p.write_text("time,mac,rssi\n12:00,aa:bb,-60\n"), p)[1],
            "not a pcap or pcapng file",
        ),
        (
            lambda p: (p.write_bytes(bytes.fromhex("d4c3b2a1") + bytes(12)), p)[1],
            "header cut short",
        ),
        (ethernet_pcap, "Ethernet capture, not 802.11"),
        (ethernet_pcapng, "Ethernet capture, not 802.11"),
    ],
    ids=["missing", "directory", "empty", "csv", "short-header", "ethernet", "ethernet-pcapng"],
)
def test_bad_files_raise_pcap_error_with_a_one_line_reason(
    tmp_path: Path, make, reason: str
) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path / "capture.pcap")
    with pytest.raises(PcapError) as caught:
        analyze_pcap(path)
    message = str(caught.value)
    assert reason in message
    assert str(path) in message
    assert "\n" not in message


def test_plain_80211_capture_without_radiotap(tmp_path: Path) -> None:
    path = tmp_path / "plain.pcap"
    writer = PcapWriter(str(path), linktype=105)
    for seq in range(3):
        writer.write(probe_request(PRIVATE_A, seq, IPHONE_IES)[Dot11])
    writer.close()
    summary = analyze_pcap(path)
    assert (summary["probe_requests"], summary["addresses"], summary["rssi"]["max"]) == (3, 1, None)
