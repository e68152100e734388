"""Radiotap headers parsed from raw bytes: where the 802.11 frame starts, its flags and its RSSI.

Why not scapy: its full dissection runs at ~600 frames/s, and a busy store hears tens of
thousands of frames a second. A radiotap header's layout (which field sits at which offset) is
fully determined by its length and its present bitmaps, so the layout is computed once per
distinct header shape and cached; each later frame costs a dictionary lookup and three index
reads.

Layout rules (https://www.radiotap.org): the header is ``version u8, pad u8, length u16,
present u32`` (little-endian) and more ``u32`` present words follow while bit 31 is set. Fields
follow the last present word in bit order, each aligned to its natural alignment counted from the
start of the header. Bit 29 in a word means "the next word restarts the radiotap namespace" (how
Linux mac80211 lists one signal per antenna), bit 30 "the next word is a vendor namespace" whose
data is skipped using the length in its 6-byte header.

Several antennas: mac80211 writes the combined signal in the first namespace and one
``dBm signal, antenna`` pair per antenna in the following ones. We keep the **first** dBm antenna
signal in field order, i.e. the combined one; tshark prints them all in that same order
(``-86,-89,-89``) and scapy decodes only the first, so all three agree.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RADIOTAP_FIXED_HEADER = 8  # version, pad, length, first present word
PRESENT_WORD_SIZE = 4

# Bits of a present word.
BIT_TSFT = 0
BIT_FLAGS = 1
BIT_CHANNEL = 3
BIT_DBM_ANTSIGNAL = 5
BIT_TLV = 28  # the rest of the header is type-length-value items (radiotap 2.0); nothing we need
BIT_RADIOTAP_NAMESPACE = 29
BIT_VENDOR_NAMESPACE = 30
BIT_EXT = 31
BITS_PER_WORD = 32
NAMESPACE_CONTROL_BITS = (
    (1 << BIT_RADIOTAP_NAMESPACE) | (1 << BIT_VENDOR_NAMESPACE) | (1 << BIT_EXT)
)
EXT_BIT_IN_LAST_BYTE = 0x80  # bit 31 of a little-endian u32 is the top bit of its 4th byte

# (alignment, size) of every field of the radiotap namespace, by present bit, as in Linux's
# net/wireless/radiotap.c and Wireshark's dissector (which also decodes bit 18, XChannel).
FIELD_ALIGN_SIZE: dict[int, tuple[int, int]] = {
    0: (8, 8),  # TSFT: u64 microseconds
    1: (1, 1),  # Flags
    2: (1, 1),  # Rate
    3: (2, 4),  # Channel: u16 MHz, u16 flags
    4: (2, 2),  # FHSS
    5: (1, 1),  # dBm antenna signal: s8
    6: (1, 1),  # dBm antenna noise
    7: (2, 2),  # Lock quality
    8: (2, 2),  # TX attenuation
    9: (2, 2),  # dB TX attenuation
    10: (1, 1),  # dBm TX power
    11: (1, 1),  # Antenna index
    12: (1, 1),  # dB antenna signal
    13: (1, 1),  # dB antenna noise
    14: (2, 2),  # RX flags
    15: (2, 2),  # TX flags
    16: (1, 1),  # RTS retries
    17: (1, 1),  # data retries
    18: (4, 8),  # XChannel: u32 flags, u16 MHz, u8 channel, u8 max power
    19: (1, 3),  # MCS
    20: (4, 8),  # A-MPDU status
    21: (2, 12),  # VHT
    22: (8, 12),  # timestamp
    23: (2, 12),  # HE
    24: (2, 12),  # HE-MU
    25: (2, 6),  # HE-MU-other-user
    26: (1, 1),  # 0-length PSDU
    27: (2, 4),  # L-SIG
}
VENDOR_NAMESPACE_ALIGN = 2
VENDOR_NAMESPACE_HEADER = 6  # OUI (3), sub-namespace (1), skip length (u16)
VENDOR_SKIP_LENGTH_OFFSET = 4

# Flags field (bit 1) values.
FLAG_FCS_AT_END = 0x10  # the frame ends with its 4-byte FCS
FLAG_BAD_FCS = 0x40  # the radio saw a checksum error: the bytes cannot be trusted

SIGNED_BYTE_WRAP = 256  # s8 stored as u8
SIGNED_BYTE_MAX = 127

# Each distinct header shape is cached. A capture has a handful; the bound stops a stream of
# garbage headers from growing memory without limit.
LAYOUT_CACHE_MAX = 256
ABSENT = -1  # offset of a field the header does not carry

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class MalformedFrame(ValueError):
    """A frame too short or inconsistent to parse. Callers count these and move on."""


@dataclass(slots=True)
class Radiotap:
    """What the rest of the pipeline needs from a radiotap header."""

    length: int  # the 802.11 frame starts here
    flags: int  # the Flags field, 0 when absent
    dbm_signal: int | None  # first dBm antenna signal (the combined one), None when absent
    channel_mhz: int | None  # Channel field frequency, None when absent


# (header length, flags offset, signal offset, channel offset), keyed by the header's bytes up
# to the end of the present words: same key, same offsets, and the bounds were checked
# when it was computed. ``presence.dot11.parse_frame`` reads this directly (its hot path).
Layout = tuple[int, int, int, int]
layouts: dict[bytes, Layout] = {}


def parse_radiotap(data: bytes) -> Radiotap:
    """Parse the radiotap header at the start of ``data``; raise MalformedFrame if impossible."""
    length, flags_at, signal_at, channel_at = radiotap_layout(data)
    signal: int | None = None
    if signal_at != ABSENT:
        signal = data[signal_at]
        if signal > SIGNED_BYTE_MAX:
            signal -= SIGNED_BYTE_WRAP
    return Radiotap(
        length,
        data[flags_at] if flags_at != ABSENT else 0,
        signal,
        data[channel_at] | data[channel_at + 1] << 8 if channel_at != ABSENT else None,
    )


def layout_key(data: bytes) -> bytes:
    """The cache key of ``data``'s header: version, length and present words."""
    size = len(data)
    if size < RADIOTAP_FIXED_HEADER:
        raise MalformedFrame("shorter than a radiotap header")
    end = RADIOTAP_FIXED_HEADER
    while data[end - 1] & EXT_BIT_IN_LAST_BYTE:
        end += PRESENT_WORD_SIZE
        if end > size:
            raise MalformedFrame("radiotap present words run past the frame")
    return data[:end]


def radiotap_layout(data: bytes) -> Layout:
    """Header length and the offsets of Flags, first dBm signal and Channel (ABSENT if none)."""
    key = layout_key(data)
    layout = layouts.get(key)
    if layout is not None:
        if layout[0] > len(data):
            raise MalformedFrame(f"radiotap length {layout[0]} with {len(data)} bytes captured")
        return layout
    if data[0] != 0:
        raise MalformedFrame(f"radiotap version {data[0]}")
    length = data[2] | data[3] << 8
    fields_start = len(key)
    if length < fields_start or length > len(data):
        raise MalformedFrame(f"radiotap length {length} with {len(data)} bytes captured")
    offsets, cacheable = _compute_layout(data, fields_start, length)
    layout = (length, *offsets)
    if cacheable:
        if len(layouts) >= LAYOUT_CACHE_MAX:
            layouts.clear()
        layouts[key] = layout
    return layout


def _compute_layout(
    data: bytes, fields_start: int, length: int
) -> tuple[tuple[int, int, int], bool]:
    """Walk the present words once: offsets of Flags, first dBm signal and Channel.

    Returns the offsets and whether they may be cached (not when a vendor namespace's skip
    length, which lives in the field data, moved later fields).
    """
    offsets = {BIT_FLAGS: ABSENT, BIT_DBM_ANTSIGNAL: ABSENT, BIT_CHANNEL: ABSENT}
    offset = fields_start
    in_radiotap = True  # the first word is in the radiotap namespace
    bit_base = 0  # 32 * words since the namespace (re)started
    cacheable = True
    for word_at in range(4, fields_start, PRESENT_WORD_SIZE):
        word = _U32.unpack_from(data, word_at)[0]
        if in_radiotap:
            fields = word & ~NAMESPACE_CONTROL_BITS
            if bit_base and fields:
                # Bits 32 and up of the radiotap namespace are undefined: we cannot know their
                # sizes, so nothing after them can be located. What we found so far stands.
                return _layout_tuple(offsets), cacheable
            bit = 0
            while fields:
                if fields & 1:
                    if bit == BIT_TLV:
                        return _layout_tuple(offsets), cacheable
                    align, field_size = FIELD_ALIGN_SIZE[bit]
                    offset = (offset + align - 1) & -align
                    if offset + field_size > length:
                        raise MalformedFrame(f"radiotap field {bit} runs past the header")
                    if bit in offsets and offsets[bit] == ABSENT:
                        offsets[bit] = offset
                    offset += field_size
                fields >>= 1
                bit += 1
        if word & (1 << BIT_VENDOR_NAMESPACE):
            offset = (offset + VENDOR_NAMESPACE_ALIGN - 1) & -VENDOR_NAMESPACE_ALIGN
            if offset + VENDOR_NAMESPACE_HEADER > length:
                raise MalformedFrame("radiotap vendor namespace runs past the header")
            skip = _U16.unpack_from(data, offset + VENDOR_SKIP_LENGTH_OFFSET)[0]
            offset += VENDOR_NAMESPACE_HEADER + skip
            in_radiotap, bit_base, cacheable = False, 0, False
        elif word & (1 << BIT_RADIOTAP_NAMESPACE):
            in_radiotap, bit_base = True, 0
        else:
            bit_base += BITS_PER_WORD
    return _layout_tuple(offsets), cacheable


def _layout_tuple(offsets: dict[int, int]) -> tuple[int, int, int]:
    return offsets[BIT_FLAGS], offsets[BIT_DBM_ANTSIGNAL], offsets[BIT_CHANNEL]
