"""Decode BLE advertisements: iBeacon, Eddystone UID/URL/TLM and the loyalty app's rotating token.

Pure bytes in, values out, so every decoder is tested against canned real adverts and the scanner
(``presence.sources.ble``) stays a thin shell around bleak. Bytes that contradict the format they
claim raise ``MalformedAdvertisement``; the source counts and skips them. Adverts that are simply
something else (Apple's other Continuity messages, unknown Eddystone frames) decode to nothing.

Loyalty token — a contract with the phone app; change it only together with ``TOKEN_VERSION``
------------------------------------------------------------------------------------------------
The app advertises manufacturer-specific data (AD type 0xFF) under company id
``LOYALTY_COMPANY_ID`` = 0xFFFF, sent little-endian (``FF FF``), with a 9-byte payload::

    offset 0      version   0x01
    offset 1..8   token     HMAC-SHA256(member_key, member_id || window)[:8]

    on air: 0C FF  FF FF  01  t0 t1 t2 t3 t4 t5 t6 t7

- ``member_id``: the member id as UTF-8. ``window``: floor(unix_time / WINDOW_SECONDS) as an 8-byte
  big-endian unsigned integer (fixed width, so ``member_id || window`` is unambiguous).
- ``member_key`` = HMAC-SHA256(box_key, ``MEMBER_KEY_LABEL`` || member_id): the portal gives each
  consenting member their own key at sign-in; only the box holds ``box_key`` and so only the box
  can turn tokens back into members. One leaked phone exposes one member, not everyone.
- The box accepts the current window ±1 (phone clocks drift; adverts straddle boundaries).

Tokens are secrets in transit: nothing here logs them, exception messages never quote payload
bytes, and the source drops the raw token from the observations it yields.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

# --- Bluetooth SIG assigned numbers -------------------------------------------------------------
APPLE_COMPANY_ID = 0x004C
IBEACON_PREFIX = b"\x02\x15"  # Apple type 0x02 (iBeacon), then 0x15 = 21 bytes follow
IBEACON_LENGTH = 23  # prefix + 16-byte proximity UUID + major + minor + measured power
EDDYSTONE_UUID16 = 0xFEAA
BASE_UUID_TEMPLATE = "0000{:04x}-0000-1000-8000-00805f9b34fb"  # how 16-bit UUIDs expand
EDDYSTONE_SERVICE_UUID = BASE_UUID_TEMPLATE.format(EDDYSTONE_UUID16)  # bleak's service_data key

AD_FLAGS = 0x01
AD_UUID16_LISTS = (0x02, 0x03)  # incomplete / complete list of 16-bit service UUIDs
AD_LOCAL_NAMES = (0x08, 0x09)  # shortened / complete local name
AD_SERVICE_DATA_UUID16 = 0x16
AD_SERVICE_DATA_UUID32 = 0x20
AD_SERVICE_DATA_UUID128 = 0x21
AD_MANUFACTURER_DATA = 0xFF

# --- Eddystone (github.com/google/eddystone) ------------------------------------------------------
EDDYSTONE_UID_FRAME = 0x00
EDDYSTONE_URL_FRAME = 0x10
EDDYSTONE_TLM_FRAME = 0x20
UID_FRAME_LENGTHS = (20, 18)  # the spec's 20 bytes; older firmware leaves out the 2 RFU bytes
TLM_PLAIN_VERSION = 0x00  # version 0x01 is encrypted TLM: opaque without the beacon's key
TLM_PLAIN_LENGTH = 14  # the spec fixes the frame length
TLM_NO_TEMPERATURE = -128.0  # 0x8000: "temperature not supported"
URL_SCHEMES = ("http://www.", "https://www.", "http://", "https://")
URL_EXPANSIONS = (
    ".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
    ".com", ".org", ".edu", ".net", ".info", ".biz", ".gov",
)  # fmt: skip
URL_PRINTABLE = range(0x21, 0x7F)  # other bytes are reserved by the spec

# --- Loyalty token (see the module docstring) ---------------------------------------------------
LOYALTY_COMPANY_ID = 0xFFFF  # the SIG's id for tests/internal use: we squat on no real company
TOKEN_VERSION = 0x01
TOKEN_BYTES = 8  # 64 bits: 100k members x 3 windows collide with odds of ~1e-9, and it still
# fits a legacy 31-byte advert beside flags and a name
TOKEN_PAYLOAD_LENGTH = 1 + TOKEN_BYTES
WINDOW_SECONDS = 300  # someone recording tokens can follow a phone for at most ~5 minutes
WINDOW_TOLERANCE = 1  # windows either side that still resolve: skewed phone clocks, boundaries
MEMBER_KEY_LABEL = b"instore/ble-token/v1:"  # domain separation from any other use of box_key
MIN_KEY_BYTES = 32  # HMAC-SHA256 gains nothing from more, loses strength with less


class MalformedAdvertisement(ValueError):
    """The bytes contradict the format they claim (a truncated frame, an overrunning length).

    Messages describe lengths and types only, never payload bytes: those may be tokens.
    """


# --- Raw advertisement data ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AdvertisementFields:
    """The AD structures of one advert, keyed the way bleak reports them."""

    flags: int | None
    local_name: str | None
    service_uuids: list[str]
    manufacturer_data: dict[int, bytes]  # company id -> bytes after the id
    service_data: dict[str, bytes]  # 128-bit UUID string -> bytes after the UUID


def parse_advertisement(data: bytes) -> AdvertisementFields:
    """Split raw advertising (or scan response) data into its length-type-value AD structures.

    A zero length byte ends the significant part (Android pads scan records with zeros).
    """
    flags: int | None = None
    local_name: str | None = None
    service_uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    offset = 0
    while offset < len(data):
        length = data[offset]
        if length == 0:
            break
        end = offset + 1 + length
        if end > len(data):
            raise MalformedAdvertisement(
                f"AD structure at offset {offset} claims {length} bytes; {end - len(data)} missing"
            )
        ad_type, value = data[offset + 1], data[offset + 2 : end]
        offset = end
        if ad_type == AD_FLAGS and value:
            flags = value[0]
        elif ad_type in AD_LOCAL_NAMES:
            local_name = value.decode("utf-8", errors="replace")
        elif ad_type in AD_UUID16_LISTS:
            if len(value) % 2:
                raise MalformedAdvertisement(f"16-bit UUID list of odd length {len(value)}")
            for (short,) in struct.iter_unpack("<H", value):
                service_uuids.append(BASE_UUID_TEMPLATE.format(short))
        elif ad_type == AD_MANUFACTURER_DATA:
            if len(value) < 2:
                raise MalformedAdvertisement("manufacturer data shorter than its company id")
            manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
        elif ad_type in (AD_SERVICE_DATA_UUID16, AD_SERVICE_DATA_UUID32, AD_SERVICE_DATA_UUID128):
            service_uuid, payload = _split_service_data(ad_type, value)
            service_data[service_uuid] = payload
    return AdvertisementFields(flags, local_name, service_uuids, manufacturer, service_data)


def _split_service_data(ad_type: int, value: bytes) -> tuple[str, bytes]:
    """Service data starts with its UUID (little-endian on air); return it as bleak spells it."""
    width = {AD_SERVICE_DATA_UUID16: 2, AD_SERVICE_DATA_UUID32: 4, AD_SERVICE_DATA_UUID128: 16}
    size = width[ad_type]
    if len(value) < size:
        raise MalformedAdvertisement(f"service data shorter than its {size * 8}-bit UUID")
    if size == 16:
        return str(uuid.UUID(bytes=value[:16][::-1])), value[16:]
    return f"{int.from_bytes(value[:size], 'little'):08x}-0000-1000-8000-00805f9b34fb", value[size:]


# --- iBeacon -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IBeacon:
    """Apple iBeacon: a proximity UUID with major/minor, and the RSSI expected at 1 m."""

    uuid: str
    major: int
    minor: int
    measured_power: int  # dBm at 1 m


def decode_ibeacon(apple_data: bytes) -> IBeacon | None:
    """Decode Apple manufacturer data (after the 0x004C id); None for Apple's other messages."""
    if not apple_data.startswith(IBEACON_PREFIX):
        return None  # AirDrop, Nearby, Find My...: every iPhone sends these, they are not errors
    if len(apple_data) != IBEACON_LENGTH:
        raise MalformedAdvertisement(
            f"iBeacon data is {len(apple_data)} bytes, not {IBEACON_LENGTH}"
        )
    major, minor, power = struct.unpack(">HHb", apple_data[18:23])
    return IBeacon(str(uuid.UUID(bytes=apple_data[2:18])), major, minor, power)


# --- Eddystone -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EddystoneUID:
    """A 10-byte namespace (the fleet) and 6-byte instance (the beacon), as hex."""

    frame: ClassVar[str] = "uid"
    namespace: str
    instance: str
    tx_power: int  # dBm at 0 m


@dataclass(frozen=True, slots=True)
class EddystoneURL:
    """A compressed URL (the Physical Web)."""

    frame: ClassVar[str] = "url"
    url: str
    tx_power: int  # dBm at 0 m


@dataclass(frozen=True, slots=True)
class EddystoneTLM:
    """Unencrypted telemetry: lets the store see beacons' batteries before they die."""

    frame: ClassVar[str] = "tlm"
    battery_mv: int | None  # None: mains powered (the spec's 0)
    temperature_c: float | None  # None: no sensor (the spec's 0x8000)
    adv_count: int  # adverts sent since boot
    uptime_s: float  # since boot, 0.1 s resolution


Eddystone = EddystoneUID | EddystoneURL | EddystoneTLM


def decode_eddystone(frame: bytes) -> Eddystone | None:
    """Decode Eddystone service data (after the 0xFEAA UUID); None for frames we do not read."""
    if not frame:
        raise MalformedAdvertisement("empty Eddystone frame")
    kind = frame[0]
    if kind == EDDYSTONE_UID_FRAME:
        if len(frame) not in UID_FRAME_LENGTHS:
            raise MalformedAdvertisement(f"Eddystone-UID frame is {len(frame)} bytes")
        return EddystoneUID(frame[2:12].hex(), frame[12:18].hex(), _signed(frame[1]))
    if kind == EDDYSTONE_URL_FRAME:
        if len(frame) < 3:
            raise MalformedAdvertisement(f"Eddystone-URL frame is {len(frame)} bytes")
        return EddystoneURL(_expand_url(frame[2], frame[3:]), _signed(frame[1]))
    if kind == EDDYSTONE_TLM_FRAME:
        if frame[1:2] != bytes([TLM_PLAIN_VERSION]):
            return None  # encrypted TLM, or a future version
        if len(frame) != TLM_PLAIN_LENGTH:
            raise MalformedAdvertisement(f"Eddystone-TLM frame is {len(frame)} bytes")
        battery, temperature, adv_count, tenths = struct.unpack(">HhLL", frame[2:14])
        celsius = temperature / 256  # signed 8.8 fixed point
        return EddystoneTLM(
            battery_mv=battery or None,
            temperature_c=None if celsius == TLM_NO_TEMPERATURE else celsius,
            adv_count=adv_count,
            uptime_s=tenths / 10,
        )
    return None  # EID (0x30) and newer frames: nothing we can use without their keys


def _signed(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


def _expand_url(scheme: int, encoded: bytes) -> str:
    if scheme >= len(URL_SCHEMES):
        raise MalformedAdvertisement(f"unknown Eddystone-URL scheme code {scheme:#04x}")
    parts = [URL_SCHEMES[scheme]]
    for byte in encoded:
        if byte < len(URL_EXPANSIONS):
            parts.append(URL_EXPANSIONS[byte])
        elif byte in URL_PRINTABLE:
            parts.append(chr(byte))
        else:
            raise MalformedAdvertisement(f"reserved byte {byte:#04x} in an Eddystone URL")
    return "".join(parts)


# --- Loyalty token -------------------------------------------------------------------------------
def member_token_key(box_key: bytes, member_id: str) -> bytes:
    """The key the portal hands one consenting member's app; derived, so the box stores none."""
    return hmac.digest(box_key, MEMBER_KEY_LABEL + member_id.encode(), hashlib.sha256)


def token_window(unix_time: float, window_seconds: int = WINDOW_SECONDS) -> int:
    """The time window a token belongs to: floor(unix_time / window_seconds)."""
    return math.floor(unix_time / window_seconds)


def make_token(member_key: bytes, member_id: str, window: int) -> bytes:
    """The 8-byte token for one member and window (what the app computes)."""
    message = member_id.encode() + struct.pack(">Q", window)
    return hmac.digest(member_key, message, hashlib.sha256)[:TOKEN_BYTES]


def loyalty_manufacturer_data(
    member_key: bytes, member_id: str, unix_time: float, window_seconds: int = WINDOW_SECONDS
) -> bytes:
    """The manufacturer data (after the company id) the app advertises at ``unix_time``."""
    window = token_window(unix_time, window_seconds)
    return bytes([TOKEN_VERSION]) + make_token(member_key, member_id, window)


def decode_loyalty_token(data: bytes) -> bytes:
    """Check the version and length of loyalty manufacturer data and return its token."""
    if len(data) != TOKEN_PAYLOAD_LENGTH:
        raise MalformedAdvertisement(
            f"loyalty data is {len(data)} bytes, not {TOKEN_PAYLOAD_LENGTH}"
        )
    if data[0] != TOKEN_VERSION:
        raise MalformedAdvertisement(f"unknown loyalty token version {data[0]}")
    return data[1:]


class TokenResolver:
    """Turns a rotating token back into a member id with one dict lookup.

    The tokens of every consenting member for the current window ±``WINDOW_TOLERANCE`` are
    precomputed; when time reaches a new window only the newly needed window is computed (one
    HMAC per member), so a box with thousands of members spends milliseconds every few minutes.
    A token two members share (odds ~1e-9) resolves to nobody rather than the wrong person.
    """

    def __init__(
        self, key: bytes, member_ids: Iterable[str], window_seconds: int = WINDOW_SECONDS
    ) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the token key must be at least {MIN_KEY_BYTES} bytes")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self._key = key
        self.window_seconds = window_seconds
        self._member_keys: dict[str, bytes] = {}
        self._windows: dict[int, dict[bytes, str | None]] = {}
        self._table: dict[bytes, str | None] = {}
        self._current: int | None = None
        self.set_members(member_ids)

    def __repr__(self) -> str:  # never the key nor the table: both would let a reader track
        return f"TokenResolver(members={len(self._member_keys)}, window={self.window_seconds}s)"

    def set_members(self, member_ids: Iterable[str]) -> None:
        """Replace the consenting members; a withdrawn consent stops resolving at once."""
        self._member_keys = {m: member_token_key(self._key, m) for m in member_ids}
        self._windows.clear()
        self._current = None

    def resolve(self, token: bytes, unix_time: float) -> str | None:
        """The member whose app sent ``token`` around ``unix_time``, or None."""
        window = token_window(unix_time, self.window_seconds)
        if window != self._current:
            self._refresh(window)
        return self._table.get(token)

    def _refresh(self, window: int) -> None:
        wanted = range(window - WINDOW_TOLERANCE, window + WINDOW_TOLERANCE + 1)
        self._windows = {w: self._windows.get(w) or self._tokens_for(w) for w in wanted}
        table: dict[bytes, str | None] = {}
        for tokens in self._windows.values():
            for token, member in tokens.items():
                table[token] = member if table.get(token, member) == member else None
        self._table, self._current = table, window

    def _tokens_for(self, window: int) -> dict[bytes, str | None]:
        tokens: dict[bytes, str | None] = {}
        for member, member_key in self._member_keys.items():
            token = make_token(member_key, member, window)
            tokens[token] = None if token in tokens else member
        return tokens


# --- Everything at once --------------------------------------------------------------------------
def decode_advertisement(
    manufacturer_data: Mapping[int, bytes],
    service_data: Mapping[str, bytes],
    *,
    unix_time: float,
    token_resolver: TokenResolver | None = None,
) -> dict[str, Any]:
    """Decode what we understand of one advert into the ``decoded`` dict of a BLE Observation.

    Keys present only when found: ``ibeacon``, ``eddystone`` (with ``frame``: uid/url/tlm) and
    ``loyalty`` (``member_id``: None when no consenting member matches or no resolver is set).
    """
    decoded: dict[str, Any] = {}
    apple = manufacturer_data.get(APPLE_COMPANY_ID)
    if apple is not None and (beacon := decode_ibeacon(apple)) is not None:
        decoded["ibeacon"] = asdict(beacon)
    frame = service_data.get(EDDYSTONE_SERVICE_UUID)
    if frame is not None and (eddystone := decode_eddystone(frame)) is not None:
        decoded["eddystone"] = {"frame": eddystone.frame, **asdict(eddystone)}
    loyalty = manufacturer_data.get(LOYALTY_COMPANY_ID)
    if loyalty is not None:
        token = decode_loyalty_token(loyalty)
        member = token_resolver.resolve(token, unix_time) if token_resolver else None
        decoded["loyalty"] = {"member_id": member}
    return decoded
