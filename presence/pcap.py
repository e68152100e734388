"""Read 802.11 capture files fast: classic pcap (either byte order, micro- or nanosecond
timestamps) and the common pcapng case (section header, interface descriptions, enhanced and
simple packet blocks), as written by tcpdump, dumpcap/tshark and scapy.

Why not scapy's reader: it builds a Packet per record, which costs more than our whole parse.
Here the file is memory-mapped and each record is one ``struct`` unpack and one slice.

Records come out as ``(timestamp, linktype, data, truncated)`` tuples; ``truncated`` is true when
fewer bytes were captured than were on the air (snap length, or a file cut off mid-record, e.g. a
capture killed while writing). Only 802.11 link types are accepted (127 radiotap, 105 plain).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from presence.dot11 import LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP

Record = tuple[float, int, bytes, bool]

SUPPORTED_LINKTYPES = {
    LINKTYPE_IEEE802_11_RADIOTAP: "802.11 + radiotap",
    LINKTYPE_IEEE802_11: "802.11",
}
KNOWN_LINKTYPE_NAMES = {1: "Ethernet", 113: "Linux cooked", 276: "Linux cooked v2"}
# The upper bits of a pcap header's link type field carry FCS information (pcap spec, "LinkType
# and additional information"); the link type itself is the low 16 bits.
LINKTYPE_MASK = 0xFFFF

PCAP_MAGIC_MICRO = 0xA1B2C3D4
PCAP_MAGIC_NANO = 0xA1B23C4D
PCAP_FILE_HEADER = 24
PCAP_LINKTYPE_AT = 20
PCAP_RECORD_HEADER = 16  # seconds, fraction, captured length, original length
MICRO = 1e-6
NANO = 1e-9
# libpcap refuses snap lengths above 256 KiB; a longer record means the file is corrupt.
MAX_RECORD_BYTES = 262144

PCAPNG_SHB = 0x0A0D0D0A  # section header block (the same in either byte order)
PCAPNG_IDB = 0x00000001  # interface description block
PCAPNG_SPB = 0x00000003  # simple packet block: no timestamp, interface 0
PCAPNG_EPB = 0x00000006  # enhanced packet block
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_BLOCK_HEADER = 8  # type, total length
PCAPNG_MIN_BLOCK = 12  # header + trailing length
PCAPNG_EPB_FIXED = 20  # interface, ts high, ts low, captured length, original length
PCAPNG_SPB_FIXED = 4  # original length
PCAPNG_IDB_FIXED = 8  # link type, reserved, snap length
PCAPNG_OPT_END = 0
PCAPNG_OPT_IF_TSRESOL = 9
PCAPNG_TSRESOL_POW2 = 0x80  # high bit set: resolution is 2^-n, else 10^-n
PCAPNG_DEFAULT_RESOLUTION = 1e-6  # no if_tsresol option: microseconds
ALIGN4 = 3


class PcapError(Exception):
    """A capture file that cannot be read; the message is one line for the person who gave it."""


class CaptureReader:
    """Iterate the records of a pcap or pcapng file. Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                if size < PCAPNG_MIN_BLOCK:
                    raise PcapError(f"{self.path}: not a pcap file (only {size} bytes)")
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise PcapError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise PcapError(f"{self.path}: is a directory, not a pcap file") from None
        except OSError as exc:
            raise PcapError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        magic_le = struct.unpack_from("<I", self._map, 0)[0]
        magic_be = struct.unpack_from(">I", self._map, 0)[0]
        self.format = "pcapng" if magic_le == PCAPNG_SHB else "pcap"
        if self.format == "pcap":
            if PCAP_MAGIC_MICRO in (magic_le, magic_be):
                self._fraction = MICRO
            elif PCAP_MAGIC_NANO in (magic_le, magic_be):
                self._fraction = NANO
            else:
                self.close()
                raise PcapError(f"{self.path}: not a pcap or pcapng file (magic {magic_le:#010x})")
            self._order = "<" if magic_le in (PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO) else ">"
            if len(self._map) < PCAP_FILE_HEADER:
                self.close()
                raise PcapError(f"{self.path}: pcap file header cut short")
            raw_linktype = struct.unpack_from(self._order + "I", self._map, PCAP_LINKTYPE_AT)[0]
            self.linktype = self._check_linktype(raw_linktype & LINKTYPE_MASK)
        else:
            next(self._pcapng_records(), None)  # a foreign link type fails now, not mid-replay

    def _check_linktype(self, linktype: int) -> int:
        if linktype not in SUPPORTED_LINKTYPES:
            name = KNOWN_LINKTYPE_NAMES.get(linktype, f"link type {linktype}")
            self.close()
            raise PcapError(
                f"{self.path}: {name} capture, not 802.11; capture on a monitor-mode interface"
            )
        return linktype

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._map.closed:
            self._map.close()

    def __iter__(self) -> Iterator[Record]:
        if self.format == "pcap":
            return self._pcap_records()
        return self._pcapng_records()

    def _pcap_records(self) -> Iterator[Record]:
        data = self._map
        size = len(data)
        linktype = self.linktype
        fraction = self._fraction
        header = struct.Struct(self._order + "IIII")
        unpack = header.unpack_from
        pos = PCAP_FILE_HEADER
        while pos + PCAP_RECORD_HEADER <= size:
            seconds, frac, captured, original = unpack(data, pos)
            if captured > MAX_RECORD_BYTES:
                raise PcapError(f"{self.path}: corrupt record at byte {pos} ({captured} bytes)")
            pos += PCAP_RECORD_HEADER
            end = pos + captured
            if end > size:  # the file stops inside this record
                yield seconds + frac * fraction, linktype, data[pos:size], True
                return
            yield seconds + frac * fraction, linktype, data[pos:end], captured != original
            pos = end
        if pos < size:
            yield 0.0, linktype, b"", True  # a record cut off inside its header

    def _pcapng_records(self) -> Iterator[Record]:
        data = self._map
        size = len(data)
        pos = 0
        order = "<"
        interfaces: list[tuple[int, float]] = []  # (linktype, seconds per timestamp unit)
        while pos + PCAPNG_MIN_BLOCK <= size:
            block_type = struct.unpack_from(order + "I", data, pos)[0]
            if block_type == PCAPNG_SHB:
                magic = data[pos + PCAPNG_BLOCK_HEADER : pos + PCAPNG_BLOCK_HEADER + 4]
                if magic == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC):
                    order = "<"
                elif magic == struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC):
                    order = ">"
                else:
                    raise PcapError(f"{self.path}: pcapng section header has a bad byte order")
                interfaces = []
            block_length = struct.unpack_from(order + "I", data, pos + 4)[0]
            if block_length < PCAPNG_MIN_BLOCK or block_length & ALIGN4:
                raise PcapError(f"{self.path}: corrupt pcapng block at byte {pos}")
            if pos + block_length > size:  # the file stops inside this block
                if block_type in (PCAPNG_EPB, PCAPNG_SPB):
                    linktype = interfaces[0][0] if interfaces else LINKTYPE_IEEE802_11_RADIOTAP
                    yield 0.0, linktype, b"", True
                return
            body = pos + PCAPNG_BLOCK_HEADER
            if block_type == PCAPNG_IDB:
                linktype = struct.unpack_from(order + "H", data, body)[0]
                resolution = self._tsresol(data, order, body + PCAPNG_IDB_FIXED, pos + block_length)
                interfaces.append((self._check_linktype(linktype), resolution))
            elif block_type == PCAPNG_EPB:
                interface, high, low, captured, original = struct.unpack_from(
                    order + "IIIII", data, body
                )
                if interface >= len(interfaces):
                    raise PcapError(f"{self.path}: packet for undeclared interface {interface}")
                linktype, resolution = interfaces[interface]
                start = body + PCAPNG_EPB_FIXED
                record = data[start : min(start + captured, pos + block_length - 4)]
                yield (high << 32 | low) * resolution, linktype, record, captured < original
            elif block_type == PCAPNG_SPB:
                if not interfaces:
                    raise PcapError(f"{self.path}: packet before any interface description")
                original = struct.unpack_from(order + "I", data, body)[0]
                start = body + PCAPNG_SPB_FIXED
                record = data[start : min(start + original, pos + block_length - 4)]
                yield 0.0, interfaces[0][0], record, len(record) < original
            pos += block_length

    @staticmethod
    def _tsresol(data: mmap.mmap, order: str, pos: int, end: int) -> float:
        """The interface's timestamp unit from its ``if_tsresol`` option (default microseconds)."""
        while pos + 4 <= end - 4:
            code, length = struct.unpack_from(order + "HH", data, pos)
            if code == PCAPNG_OPT_END:
                break
            if code == PCAPNG_OPT_IF_TSRESOL and length >= 1:
                value = data[pos + 4]
                exponent = value & ~PCAPNG_TSRESOL_POW2
                return 2.0**-exponent if value & PCAPNG_TSRESOL_POW2 else 10.0**-exponent
            pos += 4 + ((length + ALIGN4) & ~ALIGN4)
        return PCAPNG_DEFAULT_RESOLUTION


def read_capture(path: str | Path) -> Iterator[Record]:
    """Yield every record of a capture file; raise PcapError if it is missing or not a capture."""
    with CaptureReader(path) as reader:
        yield from reader
