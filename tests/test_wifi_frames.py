"""The fast radiotap + 802.11 parser against scapy's dissection and tshark, on real pcap files.

Every capture here is written by scapy (tests/wifi_captures.py) in the radiotap layouts real
drivers produce; our parse of each frame must agree field by field with scapy's full dissection
of the same bytes and, where tshark is installed (CI installs it), with tshark's.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11FCS, Dot11ProbeReq, RadioTap
from scapy.packet import Packet
from scapy.utils import rdpcap

from presence.dot11 import MalformedFrame, WifiFrame, parse_frame
from presence.pcap import read_capture
from presence.radiotap import parse_radiotap
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

LAYOUTS = ["basic", "tsft", "no_signal", "antennas", "fcs", "bare"]
PHONE = "3c:22:fb:12:34:56"  # universally administered (an Apple OUI)
PRIVATE = "da:a1:19:0b:7c:2e"  # locally administered: a rotating private address
ANTENNAS = (-62, -65, -71)  # per-chain signals; the combined one is the radiotap ``rssi``

# A frame no driver sends but the radiotap spec allows: Flags and dBm signal, a vendor namespace
# (OUI 00:11:22, 3 bytes to skip), then the radiotap namespace again with a second signal and an
# antenna index. Offsets: 3 present words end at 16; flags 16, signal 17; the vendor header is
# 2-aligned at 18..24; its data 24..27; signal 27, antenna 28; length 29.
VENDOR_NS_RADIOTAP = (
    struct.pack("<BBH", 0, 0, 29)
    + struct.pack("<I", (1 << 1) | (1 << 5) | (1 << 30) | (1 << 31))
    + struct.pack("<I", (1 << 0) | (1 << 29) | (1 << 31))
    + struct.pack("<I", (1 << 5) | (1 << 11))
    + bytes([0x00, 0xC4])  # flags 0, signal -60
    + bytes.fromhex("001122")
    + b"\x07"
    + struct.pack("<H", 3)  # vendor OUI, sub-ns, skip 3
    + b"\xaa\xbb\xcc"  # vendor data, skipped
    + bytes([0xC2, 0x01])  # signal -62 (antenna 1)
)


def needs_tshark() -> str:
    """tshark's path; skipped locally without it, but CI (which installs it) must not skip."""
    tshark = shutil.which("tshark")
    if tshark is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is not installed; .ci/run installs it")
        pytest.skip(reason="tshark not installed (Debian package tshark)")
    return tshark


def tshark_fields(path: Path, *fields: str, display_filter: str = "") -> list[list[str]]:
    tshark = needs_tshark()
    command = [tshark, "-r", str(path), "-T", "fields"]
    if display_filter:
        command += ["-Y", display_filter]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in result.stdout.splitlines()]


def mixed_frames(layout: str) -> list[Packet]:
    """One of each frame kind presence meets, in ``layout``."""
    frames = [
        probe_request(PRIVATE, 100, IPHONE_IES, "", -61, layout, 1, ANTENNAS),
        probe_request(PRIVATE, 101, IPHONE_IES, "Shop Guest", -63, layout, 6, ANTENNAS),
        probe_request(PHONE, 4095, ANDROID_IES, "café", -80, layout, 11, ANTENNAS),
    ]
    if layout != "fcs":  # scapy builds these with Dot11, i.e. without an FCS to strip
        frames += [
            beacon(7, -40, layout if layout != "antennas" else "basic"),
            data_frame(PHONE, 2000, -55, layout if layout != "antennas" else "basic"),
            data_frame(PRIVATE, 3, -57, "basic", qos=False),
            ack(PHONE),
            rts(AP_MAC, PHONE),
        ]
    return frames


def parse_file(path: Path) -> list[WifiFrame]:
    return [
        parse_frame(data, linktype, truncated)
        for _, linktype, data, truncated in read_capture(path)
    ]


def scapy_view(packet: Packet) -> dict[str, Any]:
    """The fields we parse, as scapy's full dissection gives them."""
    radiotap = packet[RadioTap]
    dot11 = packet[Dot11FCS] if packet.haslayer(Dot11FCS) else packet[Dot11]
    present = radiotap.present
    view: dict[str, Any] = {
        "type": dot11.type,
        "subtype": dot11.subtype,
        "addr1": dot11.addr1,
        "addr2": dot11.addr2 if dot11.type != 1 or dot11.subtype not in (12, 13) else None,
        "addr3": dot11.addr3 if dot11.type != 1 else None,
        "seq": dot11.SC >> 4 if dot11.type != 1 else None,
        "rssi": radiotap.dBm_AntSignal if present and present.dBm_AntSignal else None,
        "channel_mhz": radiotap.ChannelFrequency if present and present.Channel else None,
    }
    if packet.haslayer(Dot11ProbeReq):
        ids, ssids = [], []
        element = packet.getlayer(Dot11Elt)
        while element is not None:
            ids.append(element.ID)
            if element.ID == 0 and element.info:
                ssids.append(element.info.decode("utf-8", "backslashreplace"))
            element = element.payload.getlayer(Dot11Elt)
        view["ie_ids"] = tuple(ids)
        view["ssids"] = tuple(ssids)
    return view


def our_view(frame: WifiFrame) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": frame.type,
        "subtype": frame.subtype,
        "addr1": frame.addr1,
        "addr2": frame.addr2,
        "addr3": frame.addr3,
        "seq": frame.seq,
        "rssi": frame.rssi,
        "channel_mhz": frame.channel_mhz,
    }
    if frame.probe is not None:
        view["ie_ids"] = frame.probe.ie_ids
        view["ssids"] = frame.probe.ssids
    return view


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fast_parse_matches_scapy_field_by_field(tmp_path: Path, layout: str) -> None:
    path = write_pcap(tmp_path / f"{layout}.pcap", mixed_frames(layout))
    ours = parse_file(path)
    theirs = rdpcap(str(path))
    assert len(ours) == len(theirs) >= 3
    for index, (frame, packet) in enumerate(zip(ours, theirs, strict=True)):
        assert our_view(frame) == scapy_view(packet), f"frame {index} ({layout})"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fast_parse_matches_tshark(tmp_path: Path, layout: str) -> None:
    path = write_pcap(tmp_path / f"{layout}.pcap", mixed_frames(layout))
    ours = parse_file(path)
    rows = tshark_fields(
        path, "wlan.fc.type_subtype", "wlan.ta", "wlan.seq", "radiotap.dbm_antsignal"
    )
    assert len(rows) == len(ours)
    for frame, (type_subtype, ta, seq, signals) in zip(ours, rows, strict=True):
        assert int(type_subtype, 16) == frame.type << 4 | frame.subtype
        assert (ta or None) == frame.addr2
        assert (int(seq) if seq else None) == frame.seq
        # tshark lists every antenna's signal, the combined one first.
        assert (int(signals.split(",")[0]) if signals else None) == frame.rssi


def test_several_antennas_give_the_combined_signal(tmp_path: Path) -> None:
    path = write_pcap(
        tmp_path / "antennas.pcap",
        [probe_request(PRIVATE, 9, rssi=-60, layout="antennas", antennas=ANTENNAS)],
    )
    (frame,) = parse_file(path)
    assert frame.rssi == -60
    if shutil.which("tshark") or os.environ.get("CI"):
        (row,) = tshark_fields(path, "radiotap.dbm_antsignal")
        assert row == ["-60,-62,-65,-71"]


def test_fcs_is_stripped_before_the_information_elements(tmp_path: Path) -> None:
    packet = probe_request(PRIVATE, 5, IPHONE_IES, "Shop", layout="fcs")
    raw = bytes(packet)
    start = parse_radiotap(raw).length
    assert struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[start:-4])  # a real FCS at the end
    frame = parse_frame(raw)
    assert frame.probe is not None
    assert frame.probe.ie_ids == (0, 1, 50, 3, 45, 127, 221)
    assert frame.probe.ssids == ("Shop",)
    # Without the flag the same 4 bytes would be read as a (bogus, truncated) element.
    flags_at = 8  # basic layout: the Flags field is the first after the present word
    with pytest.raises(MalformedFrame):
        parse_frame(with_byte(raw, flags_at, 0))


def test_vendor_namespace_is_skipped_and_matches_tshark(tmp_path: Path) -> None:
    dot11 = bytes(
        Dot11(
            type=0,
            subtype=4,
            addr1="ff:ff:ff:ff:ff:ff",
            addr2=PRIVATE,
            addr3="ff:ff:ff:ff:ff:ff",
            SC=42 << 4,
        )
        / Dot11ProbeReq()
        / Dot11Elt(ID=0, info=b"")
    )
    raw = VENDOR_NS_RADIOTAP + dot11
    radiotap = parse_radiotap(raw)
    assert (radiotap.length, radiotap.flags, radiotap.dbm_signal) == (29, 0, -60)
    frame = parse_frame(raw)
    assert (frame.addr2, frame.seq, frame.rssi) == (PRIVATE, 42, -60)
    path = write_pcap(tmp_path / "vendor.pcap", [raw])
    if shutil.which("tshark") or os.environ.get("CI"):
        (row,) = tshark_fields(path, "wlan.sa", "wlan.seq", "radiotap.dbm_antsignal")
        assert row == [PRIVATE, "42", "-60,-62"]


def vendor_first_radiotap(skip: int, signal: int) -> bytes:
    """A vendor namespace first, then Flags and dBm signal in the radiotap namespace, padded to
    29 bytes whatever ``skip`` (3 or 5): two headers with identical present words and length
    whose signal sits at different offsets (26 or 28)."""
    words = struct.pack("<III", (1 << 30) | (1 << 31), (1 << 29) | (1 << 31), (1 << 1) | (1 << 5))
    vendor = bytes.fromhex("001122") + b"\x07" + struct.pack("<H", skip) + b"\xee" * skip
    fields = vendor + bytes([0x00, signal & 0xFF])
    header = struct.pack("<BBH", 0, 0, 29) + words + fields
    return header + bytes(29 - len(header))


def test_vendor_namespace_layout_is_never_reused_from_the_cache() -> None:
    dot11 = bytes(probe_request(PRIVATE, 42, layout="bare")[Dot11])
    for skip, signal in ((3, -60), (5, -70), (3, -61)):
        frame = parse_frame(vendor_first_radiotap(skip, signal) + dot11)
        assert (frame.addr2, frame.seq, frame.rssi) == (PRIVATE, 42, signal)


def test_fingerprint_is_stable_across_mac_ssid_channel_and_sequence() -> None:
    first = parse_frame(bytes(probe_request(PRIVATE, 1, IPHONE_IES, "", channel=1)))
    later = parse_frame(
        bytes(probe_request("6e:00:00:00:00:01", 900, IPHONE_IES, "Home", channel=11))
    )
    other = parse_frame(bytes(probe_request(PRIVATE, 2, ANDROID_IES, "", channel=1)))
    assert first.probe and later.probe and other.probe
    assert first.probe.fingerprint == later.probe.fingerprint
    assert first.probe.fingerprint != other.probe.fingerprint
    # Capabilities count, not just the element ids: same ids, different HT capabilities.
    tweaked = [(45, b"\x00" * 26) if eid == 45 else (eid, body) for eid, body in IPHONE_IES]
    changed = parse_frame(bytes(probe_request(PRIVATE, 3, tweaked)))
    assert changed.probe and changed.probe.ie_ids == first.probe.ie_ids
    assert changed.probe.fingerprint != first.probe.fingerprint


def good_probe(layout: str = "basic") -> bytes:
    return bytes(probe_request(PRIVATE, 77, IPHONE_IES, "Shop", layout=layout))


def with_byte(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1 :]


RADIOTAP_BASIC = parse_radiotap(good_probe()).length  # where the 802.11 header starts

MALFORMED = {
    "empty": b"",
    "radiotap cut short": good_probe()[:6],
    "radiotap length past the frame": with_byte(good_probe()[:20], 2, 200),
    "radiotap version 1": with_byte(good_probe(), 0, 1),
    "extended bitmap runs off": bytes.fromhex("0000 0c00 00000080 00000080"),
    "802.11 header cut short": good_probe()[: RADIOTAP_BASIC + 20],
    "element runs past the frame": good_probe()[:-3],
    "bad FCS flag": with_byte(good_probe(), 8, 0x40),
    "802.11 version 1": with_byte(good_probe(), RADIOTAP_BASIC, 0x41),  # 0x40 is a probe request
    "ack cut short": bytes(ack(PHONE))[:-2],
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_frames_raise_the_counted_exception(name: str) -> None:
    with pytest.raises(MalformedFrame):
        parse_frame(MALFORMED[name])


# Where we are stricter than tshark, on purpose: it dissects these anyway.
STRICTER_THAN_TSHARK = {
    "radiotap version 1",  # the spec has only version 0: the rest of the header is unknowable
    "bad FCS flag",  # the radio says the bytes are corrupt: a wrong MAC would count a ghost
    "802.11 version 1",  # not an 802.11 frame presence can read
}


def test_malformed_frames_in_a_file_are_counted_not_fatal(tmp_path: Path) -> None:
    names = ["good", *MALFORMED, "good tsft"]
    frames: list[Any] = [good_probe(), *MALFORMED.values(), good_probe("tsft")]
    path = write_pcap(tmp_path / "broken.pcap", frames)
    ours: list[str | None] = []
    for _, linktype, data, truncated in read_capture(path):
        try:
            ours.append(parse_frame(data, linktype, truncated).addr2)
        except MalformedFrame:
            ours.append(None)
    assert ours == [PRIVATE, *[None] * len(MALFORMED), PRIVATE]
    # tshark, independently: every frame it finds malformed, we do too; every frame we parse, it
    # parses with the same source address; it accepts more only where we are stricter.
    rows = tshark_fields(path, "wlan.sa", "_ws.malformed")
    assert len(rows) == len(frames)
    for name, mine, (sa, malformed) in zip(names, ours, rows, strict=True):
        if malformed:
            assert mine is None, name
        elif mine is not None:
            assert sa == mine, name
        else:
            assert name in STRICTER_THAN_TSHARK, name


def test_plain_80211_linktype_has_no_rssi(tmp_path: Path) -> None:
    packet = probe_request(PRIVATE, 12, IPHONE_IES, "Shop")
    dot11_only = bytes(packet[Dot11])
    frame = parse_frame(dot11_only, linktype=105)
    assert (frame.addr2, frame.seq, frame.rssi) == (PRIVATE, 12, None)
    assert frame.probe and frame.probe.ssids == ("Shop",)
