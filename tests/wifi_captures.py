"""Build 802.11 capture files with scapy for the presence tests: real radiotap + 802.11 bytes,
written by scapy's PcapWriter with linktype 127 (radiotap), as a monitor interface records them.

The information elements are those of two real phone families, as captured in the field and
decoded by Wireshark (contents kept; only the SSID and channel vary per frame):

- ``IPHONE_IES``: iOS 17: rates 1-11 Mb/s, extended rates, DS parameter set, HT capabilities
  (0x002d: LDPC, 20 MHz, SM power save disabled, short GI 20), extended capabilities (8 bytes,
  interworking + extended channel switching), an Apple vendor element 00:17:f2 type 0x0a.
- ``ANDROID_IES``: Android 14 (Pixel): the same rates, HT capabilities 0x01ef (40 MHz, short GI
  20/40, RX STBC), extended capabilities (10 bytes), VHT capabilities, a Wi-Fi Alliance element
  50:6f:9a type 0x16 (MBO-OCE), an HE capabilities extension element (id 255, ext 35: MAC and
  PHY capabilities, 40/80 MHz, no PPE thresholds, HE-MCS 0-11 on 2 streams).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scapy.layers.dot11 import (
    Dot11,
    Dot11Beacon,
    Dot11Elt,
    Dot11FCS,
    Dot11ProbeReq,
    Dot11QoS,
    RadioTap,
    RadioTapExtendedPresenceMask,
)
from scapy.packet import Packet, Raw
from scapy.utils import PcapNgWriter, PcapWriter

LINKTYPE_RADIOTAP = 127
BROADCAST = "ff:ff:ff:ff:ff:ff"
AP_MAC = "f4:92:bf:10:20:30"  # a universally administered access point address

# (element id, content) in the order the phone sends them; the DS parameter set (id 3) carries
# the channel and is filled per frame.
IPHONE_IES: list[tuple[int, bytes]] = [
    (1, bytes.fromhex("02040b16")),
    (50, bytes.fromhex("0c1218243048606c")),
    (3, b"\x01"),
    (45, bytes.fromhex("2d0017ffff0000000000000000000000000000000000000000000000")[:26]),
    (127, bytes.fromhex("0400080000000040")),
    (221, bytes.fromhex("0017f20a000104000000000000")),
]
ANDROID_IES: list[tuple[int, bytes]] = [
    (1, bytes.fromhex("02040b16")),
    (50, bytes.fromhex("0c1218243048606c")),
    (3, b"\x06"),
    (45, bytes.fromhex("ef0117ffff0000000000000000000000000000000000000000000000")[:26]),
    (127, bytes.fromhex("0000080400000040c001")),
    (191, bytes.fromhex("b259820ffaff0000faff0000")),
    (255, bytes.fromhex("230108081800000620000000000000000000fafffaff")),
    (221, bytes.fromhex("506f9a16030103")),
]


def elements(ies: Iterable[tuple[int, bytes]], ssid: str = "", channel: int = 1) -> Packet:
    """The IE chain of a probe request: the SSID first (wildcard when empty), then ``ies``."""
    chain: Packet = Dot11Elt(ID=0, info=ssid.encode())
    for element, content in ies:
        chain /= Dot11Elt(ID=element, info=bytes([channel]) if element == 3 else content)
    return chain


def radiotap(layout: str, rssi: int = -60, antennas: tuple[int, ...] = (), **fields: Any) -> Packet:
    """A radiotap header of one of the layouts real drivers write.

    - ``basic``: Flags, Rate, Channel, dBm signal (a typical Realtek/Atheros USB dongle).
    - ``tsft``: TSFT first (8-byte alignment) then Flags, Rate, Channel, dBm signal, RX flags.
    - ``no_signal``: Flags, Rate, Channel only (no RSSI at all).
    - ``antennas``: Linux mac80211 with several chains: the combined signal in the first
      namespace, then one (dBm signal, antenna index) pair per chain in extra radiotap
      namespaces chained through extended present bitmaps.
    - ``fcs``: like ``basic`` with the FCS flag; pair it with ``Dot11FCS`` so the 4 FCS bytes
      really are at the end.
    - ``bare``: no fields at all (an 8-byte header).
    """
    if layout == "bare":
        return RadioTap(present=0)
    if layout == "no_signal":
        return RadioTap(present="Flags+Rate+Channel", Rate=1, ChannelFrequency=2412, **fields)
    if layout in ("basic", "fcs"):
        flags = "FCS" if layout == "fcs" else 0
        return RadioTap(
            present="Flags+Rate+Channel+dBm_AntSignal",
            Flags=flags,
            Rate=1,
            ChannelFrequency=2437,
            ChannelFlags="2GHz+CCK",
            dBm_AntSignal=rssi,
            **fields,
        )
    if layout == "tsft":
        return RadioTap(
            present="TSFT+Flags+Rate+Channel+dBm_AntSignal+RXFlags",
            mac_timestamp=123456789,
            Rate=2,
            ChannelFrequency=2462,
            ChannelFlags="2GHz+OFDM",
            dBm_AntSignal=rssi,
            **fields,
        )
    if layout == "antennas":
        signal_antenna = (1 << 5) | (1 << 11)  # dBm antenna signal + antenna index
        more = (1 << 29) | (1 << 31)  # the next word restarts the radiotap namespace
        ext = [
            RadioTapExtendedPresenceMask(
                present=signal_antenna | (more if i < len(antennas) - 1 else 0), index=i
            )
            for i in range(len(antennas))
        ]
        per_chain = b"".join(bytes([chain & 0xFF, index]) for index, chain in enumerate(antennas))
        return RadioTap(
            present="TSFT+Flags+Rate+Channel+dBm_AntSignal+RXFlags+RadiotapNS+Ext",
            mac_timestamp=987654321,
            Rate=12,
            ChannelFrequency=5180,
            ChannelFlags="5GHz+OFDM",
            dBm_AntSignal=rssi,
            Ext=ext,
            notdecoded=per_chain,
            **fields,
        )
    raise ValueError(layout)


def probe_request(
    mac: str,
    seq: int,
    ies: Iterable[tuple[int, bytes]] = IPHONE_IES,
    ssid: str = "",
    rssi: int = -60,
    layout: str = "basic",
    channel: int = 1,
    antennas: tuple[int, ...] = (),
) -> Packet:
    """A probe request from ``mac`` as heard by a monitor interface."""
    header_cls = Dot11FCS if layout == "fcs" else Dot11
    header = header_cls(
        type=0, subtype=4, addr1=BROADCAST, addr2=mac, addr3=BROADCAST, SC=(seq % 4096) << 4
    )
    return (
        radiotap(layout, rssi, antennas) / header / Dot11ProbeReq() / elements(ies, ssid, channel)
    )


def beacon(seq: int = 1, rssi: int = -40, layout: str = "basic") -> Packet:
    """An access point's beacon: management, but not a probe request."""
    header = Dot11(type=0, subtype=8, addr1=BROADCAST, addr2=AP_MAC, addr3=AP_MAC, SC=seq << 4)
    return radiotap(layout, rssi) / header / Dot11Beacon(cap="ESS") / Dot11Elt(ID=0, info=b"Shop")


def data_frame(
    mac: str, seq: int, rssi: int = -55, layout: str = "basic", qos: bool = True
) -> Packet:
    """A (QoS) data frame sent by a phone to the AP (to-DS), with an encrypted-looking body."""
    header = Dot11(
        type=2,
        subtype=8 if qos else 0,
        FCfield=0x01,
        addr1=AP_MAC,
        addr2=mac,
        addr3=AP_MAC,
        SC=seq << 4,
    )
    body: Packet = Dot11QoS() / Raw(b"\xaa" * 40) if qos else Raw(b"\xaa" * 40)
    return radiotap(layout, rssi) / header / body


def ack(receiver: str, rssi: int = -50) -> Packet:
    """A control frame with a receiver address only."""
    return radiotap("basic", rssi) / Dot11(type=1, subtype=13, addr1=receiver)


def rts(receiver: str, transmitter: str, rssi: int = -50) -> Packet:
    """A control frame with both receiver and transmitter addresses."""
    return radiotap("basic", rssi) / Dot11(type=1, subtype=11, addr1=receiver, addr2=transmitter)


def write_pcap(
    path: Path,
    frames: Iterable[Packet | bytes],
    start: float = 1_700_000_000.0,
    step: float = 0.01,
    times: Iterable[float] | None = None,
    pcapng: bool = False,
) -> Path:
    """Write ``frames`` (packets, or raw bytes for deliberately broken ones, written as they are)
    as a radiotap capture, one every ``step`` seconds from ``start`` unless ``times`` are given."""
    stamps = iter(times) if times is not None else None
    writer: Any = (
        PcapNgWriter(str(path)) if pcapng else PcapWriter(str(path), linktype=LINKTYPE_RADIOTAP)
    )
    try:
        if not pcapng:
            writer.write_header(None)  # write_packet() does not; write() would re-dissect bytes
        for index, frame in enumerate(frames):
            ts = next(stamps) if stamps is not None else start + index * step
            if pcapng:
                packet = frame if isinstance(frame, Packet) else RadioTap(frame)
                packet.time = ts
                writer.write(packet)
            else:
                seconds = int(ts)
                writer.write_packet(
                    bytes(frame), sec=seconds, usec=round((ts - seconds) * 1_000_000)
                )
    finally:
        writer.close()
    return path
