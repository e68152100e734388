"""802.11 frames parsed from raw bytes: header fields, and probe requests' information elements.

The hot path of the wifi and replay sources (see ``presence.radiotap`` for why not scapy). Only
what presence needs is decoded: frame type, the three addresses, the sequence number and, for
probe requests, the SSIDs, the order of the information elements (IEs) and a fingerprint.

The fingerprint is how devices are counted while their MACs rotate (``presence.fingerprint``):
a phone keeps sending the same IEs in the same order with the same capabilities whatever random
MAC it uses, while different models differ. It hashes the IE ids in order plus the contents of
the IEs that describe the hardware and never change from frame to frame (rates, HT/VHT/HE
capabilities, extended capabilities, vendor OUI and type). It leaves out what does vary: the SSID
asked for, the channel (DS parameter set) and vendor payloads (the WPS one carries a per-device
UUID we do not want to key on; others carry counters).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from presence.radiotap import (
    ABSENT,
    FLAG_BAD_FCS,
    FLAG_FCS_AT_END,
    SIGNED_BYTE_MAX,
    SIGNED_BYTE_WRAP,
    MalformedFrame,
    layout_key,
    radiotap_layout,
)
from presence.radiotap import layouts as radiotap_layouts

__all__ = ["MalformedFrame", "ProbeRequest", "WifiFrame", "parse_frame", "parse_probe_request"]

LINKTYPE_IEEE802_11 = 105  # plain 802.11 frames, no radio information (no RSSI)
LINKTYPE_IEEE802_11_RADIOTAP = 127  # radiotap header + 802.11 frame: what monitor mode gives

FCS_SIZE = 4

# Frame control (first two bytes, little-endian): version in bits 0-1, type 2-3, subtype 4-7 of
# the first byte; flags in the second.
TYPE_MANAGEMENT = 0
TYPE_CONTROL = 1
TYPE_DATA = 2
SUBTYPE_PROBE_REQUEST = 4
FC_TYPE_SHIFT = 2
FC_TYPE_MASK = 0x3
FC_SUBTYPE_SHIFT = 4
FC_VERSION_MASK = 0x3
FC_FLAG_TO_DS = 0x01
FC_FLAG_FROM_DS = 0x02
FC_FLAG_ORDER = 0x80  # on management and QoS data frames: a 4-byte HT Control field follows

ADDR1_AT = 4  # after frame control (2) and duration (2)
ADDR2_AT = 10
ADDR3_AT = 16
SEQ_CTRL_AT = 22
MAC_SIZE = 6
MAC_TEXT = 17  # "aa:bb:cc:dd:ee:ff"
ACK_CTS_HEADER = 10  # control frames with a receiver address only
CONTROL_TA_HEADER = 16  # control frames that also carry a transmitter address
MANAGEMENT_HEADER = 24  # also the three-address data header
HT_CONTROL_SIZE = 4
SEQ_SHIFT = 4  # the low 4 bits of sequence control are the fragment number
SEQ_MODULO = 4096  # 12-bit sequence number
CONTROL_SUBTYPES_WITHOUT_TA = frozenset({7, 12, 13})  # control wrapper, CTS, ACK

# Information elements.
IE_HEADER = 2  # id, length
IE_SSID = 0
IE_SUPPORTED_RATES = 1
IE_DS_PARAMETER_SET = 3
IE_HT_CAPABILITIES = 45
IE_EXTENDED_SUPPORTED_RATES = 50
IE_SSID_LIST = 84
IE_EXTENDED_CAPABILITIES = 127
IE_VHT_CAPABILITIES = 191
IE_VENDOR_SPECIFIC = 221
IE_EXTENSION = 255  # the first content byte is the extension id
IE_EXT_HE_CAPABILITIES = 35
VENDOR_OUI_AND_TYPE = 4  # OUI (3) + vendor type (1): which vendor feature, not its payload

# Hardware capabilities: identical in every probe a device sends, different between models.
FINGERPRINT_CONTENT_IES = frozenset(
    {
        IE_SUPPORTED_RATES,
        IE_EXTENDED_SUPPORTED_RATES,
        IE_HT_CAPABILITIES,
        IE_VHT_CAPABILITIES,
        IE_EXTENDED_CAPABILITIES,
    }
)
FINGERPRINT_EXTENSION_CONTENT = frozenset({IE_EXT_HE_CAPABILITIES})
FINGERPRINT_DIGEST_BYTES = 8  # 64 bits: collisions between distinct IE sets are negligible

# Phones repeat the same probe body on every channel of a scan and every scan, so the parsed IEs
# are cached by body bytes. Bounded so a flood of distinct bodies cannot grow memory.
PROBE_CACHE_MAX = 8192
NEVER_LENGTH = 1 << 32  # more bytes than any captured frame has


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """What a probe request's information elements say about the device that sent it."""

    ssids: tuple[str, ...]  # networks asked for by name; empty for a wildcard probe
    ie_ids: tuple[int, ...]  # element ids in the order sent
    fingerprint: str  # hex digest, stable across the device's random MACs


@dataclass(slots=True)
class WifiFrame:
    """One captured frame, as much as presence needs of it."""

    type: int  # TYPE_MANAGEMENT, TYPE_CONTROL, TYPE_DATA or 3 (extension)
    subtype: int
    addr1: str  # receiver, lower-case colon hex
    addr2: str | None  # transmitter (the device we heard); None on ACK/CTS
    addr3: str | None
    seq: int | None  # 12-bit sequence number; None on control frames
    rssi: int | None  # dBm, None without radiotap signal
    channel_mhz: int | None
    probe: ProbeRequest | None  # set on probe requests only

    @property
    def is_probe_request(self) -> bool:
        return self.probe is not None

    @property
    def is_data(self) -> bool:
        return self.type == TYPE_DATA


_probe_cache: dict[bytes, ProbeRequest] = {}
# The last radiotap header shape seen: (key, layout). Its first value's header length is longer
# than any frame, so the first frame takes the full path whatever its bytes.
_last_layout: list[Any] = [b"", (NEVER_LENGTH, ABSENT, ABSENT, ABSENT)]


def parse_frame(
    data: bytes, linktype: int = LINKTYPE_IEEE802_11_RADIOTAP, truncated: bool = False
) -> WifiFrame:
    """Parse one captured frame (radiotap + 802.11, or bare 802.11 for linktype 105).

    ``truncated`` says the capture kept fewer bytes than the radio received (snap length, or a
    capture file cut short): then the FCS is not among the captured bytes and is not stripped.
    Raises MalformedFrame for anything that cannot be parsed; callers count and skip those.
    """
    rssi = channel = None
    start = 0
    end = len(data)
    if linktype == LINKTYPE_IEEE802_11_RADIOTAP:
        # A capture nearly always repeats one header shape: if this frame starts with the last
        # frame's version, length and present words, it has the same layout (one C call).
        last_key, layout = _last_layout
        if not data.startswith(last_key) or layout[0] > end:
            layout = radiotap_layout(data)
            key = layout_key(data)
            if radiotap_layouts.get(key) is layout:  # not a shape whose layout varies (vendor)
                _last_layout[:] = key, layout
        start, flags_at, signal_at, channel_at = layout
        if signal_at != ABSENT:
            rssi = data[signal_at]
            if rssi > SIGNED_BYTE_MAX:
                rssi -= SIGNED_BYTE_WRAP
        if channel_at != ABSENT:
            channel = data[channel_at] | data[channel_at + 1] << 8
        if flags_at != ABSENT:
            flags = data[flags_at]
            if flags & FLAG_BAD_FCS:
                raise MalformedFrame("radio reported a bad FCS")
            if flags & FLAG_FCS_AT_END and not truncated:
                end -= FCS_SIZE
    elif linktype != LINKTYPE_IEEE802_11:
        raise ValueError(f"linktype {linktype} is not 802.11")
    if end - start < ACK_CTS_HEADER:
        raise MalformedFrame("shorter than an 802.11 header")
    fc = data[start]
    if fc & FC_VERSION_MASK:
        raise MalformedFrame(f"802.11 protocol version {fc & FC_VERSION_MASK}")
    ftype = (fc >> FC_TYPE_SHIFT) & FC_TYPE_MASK
    subtype = fc >> FC_SUBTYPE_SHIFT
    if ftype == TYPE_CONTROL:
        addr2 = None
        if subtype not in CONTROL_SUBTYPES_WITHOUT_TA:
            if end - start < CONTROL_TA_HEADER:
                raise MalformedFrame("control frame shorter than its header")
            addr2 = data[start + ADDR2_AT : start + ADDR2_AT + MAC_SIZE].hex(":")
        addr1 = data[start + ADDR1_AT : start + ADDR1_AT + MAC_SIZE].hex(":")
        return WifiFrame(ftype, subtype, addr1, addr2, None, None, rssi, channel, None)
    if end - start < MANAGEMENT_HEADER:
        raise MalformedFrame("shorter than an 802.11 management/data header")
    seq_ctrl = data[start + SEQ_CTRL_AT] | data[start + SEQ_CTRL_AT + 1] << 8
    probe = None
    if ftype == TYPE_MANAGEMENT and subtype == SUBTYPE_PROBE_REQUEST:
        body = start + MANAGEMENT_HEADER
        if data[start + 1] & FC_FLAG_ORDER:
            body += HT_CONTROL_SIZE
        probe = parse_probe_request(data[body:end])
    # The three addresses are contiguous: one hex() call, then cut (half the cost of three).
    text = data[start + ADDR1_AT : start + SEQ_CTRL_AT].hex(":")
    return WifiFrame(
        ftype,
        subtype,
        text[:MAC_TEXT],
        text[MAC_TEXT + 1 : 2 * MAC_TEXT + 1],
        text[2 * MAC_TEXT + 2 :],
        seq_ctrl >> SEQ_SHIFT,
        rssi,
        channel,
        probe,
    )


def parse_probe_request(body: bytes) -> ProbeRequest:
    """Walk a probe request's information elements; cached by body bytes (see PROBE_CACHE_MAX)."""
    cached = _probe_cache.get(body)
    if cached is not None:
        return cached
    ssids: list[str] = []
    ie_ids: list[int] = []
    canonical = bytearray()
    pos = 0
    end = len(body)
    while pos < end:
        if pos + IE_HEADER > end:
            raise MalformedFrame("information element header cut short")
        element = body[pos]
        content_at = pos + IE_HEADER
        pos = content_at + body[pos + 1]
        if pos > end:
            raise MalformedFrame(f"information element {element} runs past the frame")
        ie_ids.append(element)
        if element == IE_SSID:
            if pos > content_at:
                ssids.append(_ssid_text(body[content_at:pos]))
            canonical.append(element)
        elif element in FINGERPRINT_CONTENT_IES:
            canonical += body[content_at - IE_HEADER : pos]
        elif element == IE_VENDOR_SPECIFIC:
            canonical.append(element)
            canonical += body[content_at : min(pos, content_at + VENDOR_OUI_AND_TYPE)]
        elif element == IE_EXTENSION and pos > content_at:
            canonical.append(element)
            if body[content_at] in FINGERPRINT_EXTENSION_CONTENT:
                canonical += body[content_at - IE_HEADER : pos]
            else:
                canonical.append(body[content_at])
        elif element == IE_SSID_LIST:
            ssids.extend(_ssid_list(body[content_at:pos]))
            canonical.append(element)
        else:
            canonical.append(element)
    probe = ProbeRequest(
        tuple(ssids),
        tuple(ie_ids),
        hashlib.blake2b(canonical, digest_size=FINGERPRINT_DIGEST_BYTES).hexdigest(),
    )
    if len(_probe_cache) >= PROBE_CACHE_MAX:
        _probe_cache.clear()
    _probe_cache[body] = probe
    return probe


def _ssid_text(raw: bytes) -> str:
    """SSIDs are bytes, usually UTF-8; undecodable bytes stay visible as escapes."""
    return raw.decode("utf-8", "backslashreplace")


def _ssid_list(content: bytes) -> list[str]:
    """The SSID List element (id 84) holds SSID elements back to back."""
    names = []
    pos = 0
    while pos + IE_HEADER <= len(content):
        start = pos + IE_HEADER
        pos = start + content[pos + 1]
        if pos > len(content):
            raise MalformedFrame("SSID list runs past its element")
        if pos > start:
            names.append(_ssid_text(content[start:pos]))
    return names
