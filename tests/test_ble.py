"""BLE decoding on real advert bytes (see ``ble_adverts.py``) and the loyalty token.

The BLE source, fed directly and through bleak against a mocked BlueZ, is in
``test_ble_scanner.py``.
"""

from __future__ import annotations

import time

import pytest

from presence.ble import (
    APPLE_COMPANY_ID,
    EDDYSTONE_SERVICE_UUID,
    LOYALTY_COMPANY_ID,
    WINDOW_SECONDS,
    EddystoneTLM,
    IBeacon,
    MalformedAdvertisement,
    TokenResolver,
    decode_advertisement,
    decode_eddystone,
    decode_ibeacon,
    make_token,
    parse_advertisement,
    token_window,
)
from tests.ble_adverts import (
    AIRLOCATE_IBEACON,
    AIRLOCATE_MEANS,
    ALTBEACON_EDDYSTONE_UID,
    ALTBEACON_EDDYSTONE_UID_MEANS,
    BLUECHARM_EDDYSTONE_TLM,
    BLUECHARM_EDDYSTONE_TLM_MEANS,
    BLUECHARM_EDDYSTONE_UID,
    BLUECHARM_EDDYSTONE_UID_MEANS,
    BLUECHARM_EDDYSTONE_URL,
    BLUECHARM_EDDYSTONE_URL_MEANS,
    BLUECHARM_IBEACON,
    BLUECHARM_IBEACON_MEANS,
    BOX_KEY,
    MEMBER,
    MIKROTIK_EDDYSTONE_TLM,
    MIKROTIK_EDDYSTONE_TLM_MEANS,
    MIKROTIK_EDDYSTONE_UID,
    MIKROTIK_EDDYSTONE_UID_MEANS,
    phone_advert,
)


def test_split_constants_are_the_published_captures_byte_for_byte() -> None:
    """ble_adverts.py splits the captures for reading; this pins them to AOSP's verbatim."""
    aosp = [
        "0201060303AAFE1716AAFE10EE01626C7565636861726D626561636F6E730009168020691E0EFE1355"
        "1109426C7565436861726D5F313639363835000000",
        "0201060303AAFE1716AAFE00EE626C7565636861726D31000000000001000009168020691E0EFE1355"
        "1109426C7565436861726D5F313639363835000000",
        "0201060303AAFE1116AAFE20000BF017000008874803FB93540916802069080EFE1355"
        "1109426C7565436861726D5F313639363835000000000000000000",
        "0201061AFF4C000215426C7565436861726D426561636F6E730EFE1355C509168020691E0EFE1355"
        "1109426C7565436861726D5F31363936383500000000",
    ]
    ours = [BLUECHARM_EDDYSTONE_URL, BLUECHARM_EDDYSTONE_UID, BLUECHARM_EDDYSTONE_TLM]
    assert [capture.hex().upper() for capture in [*ours, BLUECHARM_IBEACON]] == aosp
    assert len(ALTBEACON_EDDYSTONE_UID) == 62  # Android's legacy scan record size


# --- Raw AD structures -------------------------------------------------------------------------


def test_parse_advertisement_splits_ad_structures() -> None:
    fields = parse_advertisement(BLUECHARM_EDDYSTONE_URL)
    assert fields.flags == 0x06
    assert fields.local_name == "BlueCharm_169685"
    assert fields.service_uuids == [EDDYSTONE_SERVICE_UUID]
    assert fields.manufacturer_data == {}
    assert fields.service_data == {
        EDDYSTONE_SERVICE_UUID: bytes.fromhex("10ee01626c7565636861726d626561636f6e7300"),
        "00002080-0000-1000-8000-00805f9b34fb": bytes.fromhex("691e0efe1355"),
    }


def test_parse_advertisement_generic_manufacturer_data() -> None:
    fields = parse_advertisement(AIRLOCATE_IBEACON)
    assert fields.flags == 0x1A
    assert fields.manufacturer_data == {APPLE_COMPANY_ID: AIRLOCATE_IBEACON[7:]}


def test_parse_advertisement_stops_at_zero_padding() -> None:
    fields = parse_advertisement(ALTBEACON_EDDYSTONE_UID)
    assert list(fields.service_data) == [EDDYSTONE_SERVICE_UUID]


@pytest.mark.parametrize(
    ("advert", "reason"),
    [
        (bytes.fromhex("0201061aff4c000215e2c5"), "claims 26 bytes"),
        (bytes.fromhex("02ff4c"), "shorter than its company id"),
        (bytes.fromhex("0216aa"), "shorter than its 16-bit UUID"),
        (bytes.fromhex("0403aafe01"), "odd length"),
    ],
)
def test_parse_advertisement_rejects_malformed(advert: bytes, reason: str) -> None:
    with pytest.raises(MalformedAdvertisement, match=reason):
        parse_advertisement(advert)


# --- iBeacon and Eddystone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("advert", "means"),
    [(AIRLOCATE_IBEACON, AIRLOCATE_MEANS), (BLUECHARM_IBEACON, BLUECHARM_IBEACON_MEANS)],
)
def test_ibeacon(advert: bytes, means: IBeacon) -> None:
    apple = parse_advertisement(advert).manufacturer_data[APPLE_COMPANY_ID]
    assert decode_ibeacon(apple) == means


def test_other_apple_messages_are_not_ibeacons() -> None:
    nearby_info = bytes.fromhex("1005031c")  # an idle iPhone's Continuity "Nearby Info"
    assert decode_ibeacon(nearby_info) is None


def test_truncated_ibeacon_is_malformed() -> None:
    with pytest.raises(MalformedAdvertisement, match="22 bytes"):
        decode_ibeacon(AIRLOCATE_IBEACON[7:-1])


@pytest.mark.parametrize(
    ("advert", "means"),
    [
        (BLUECHARM_EDDYSTONE_URL, BLUECHARM_EDDYSTONE_URL_MEANS),
        (BLUECHARM_EDDYSTONE_UID, BLUECHARM_EDDYSTONE_UID_MEANS),
        (BLUECHARM_EDDYSTONE_TLM, BLUECHARM_EDDYSTONE_TLM_MEANS),
        (MIKROTIK_EDDYSTONE_TLM, MIKROTIK_EDDYSTONE_TLM_MEANS),
        (MIKROTIK_EDDYSTONE_UID, MIKROTIK_EDDYSTONE_UID_MEANS),
        (ALTBEACON_EDDYSTONE_UID, ALTBEACON_EDDYSTONE_UID_MEANS),
    ],
)
def test_eddystone(advert: bytes, means: object) -> None:
    frame = parse_advertisement(advert).service_data[EDDYSTONE_SERVICE_UUID]
    assert decode_eddystone(frame) == means


def test_mikrotik_tlm_temperature_is_fixed_point() -> None:
    frame = parse_advertisement(MIKROTIK_EDDYSTONE_TLM).service_data[EDDYSTONE_SERVICE_UUID]
    tlm = decode_eddystone(frame)
    assert isinstance(tlm, EddystoneTLM)
    assert tlm.temperature_c == pytest.approx(21.285, abs=0.001)


def test_tlm_unsupported_fields_are_none() -> None:
    usb_powered_no_sensor = bytes.fromhex("200000008000000000010000000a")
    assert decode_eddystone(usb_powered_no_sensor) == EddystoneTLM(None, None, 1, 1.0)


def test_frames_we_cannot_read_decode_to_nothing() -> None:
    encrypted_tlm = bytes.fromhex("2001") + bytes(16)
    eid = bytes.fromhex("30e3") + b"EID_test"
    assert decode_eddystone(encrypted_tlm) is None
    assert decode_eddystone(eid) is None


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "empty"),
        (bytes.fromhex("00e7") + bytes(10), "UID frame is 12 bytes"),
        (bytes.fromhex("10ee"), "URL frame is 2 bytes"),
        (bytes.fromhex("10ee04") + b"example", "scheme code 0x04"),
        (bytes.fromhex("10ee03") + b"bad\x7furl", "reserved byte 0x7f"),
        (bytes.fromhex("2000") + bytes(11), "TLM frame is 13 bytes"),
    ],
)
def test_malformed_eddystone(frame: bytes, reason: str) -> None:
    with pytest.raises(MalformedAdvertisement, match=reason):
        decode_eddystone(frame)


# --- Loyalty token -----------------------------------------------------------------------------


def test_token_round_trip() -> None:
    now = 1_700_000_123.0
    resolver = TokenResolver(BOX_KEY, [MEMBER, "member-7"])
    decoded = decode_advertisement(
        {LOYALTY_COMPANY_ID: phone_advert(MEMBER, now)}, {}, unix_time=now, token_resolver=resolver
    )
    assert decoded == {"loyalty": {"member_id": MEMBER}}


def test_token_layout_is_the_documented_contract() -> None:
    """Version byte, then HMAC-SHA256(member key, member id || 8-byte big-endian window)[:8]."""
    import hashlib
    import hmac

    now = 1_700_000_123.0
    member_key = hmac.digest(BOX_KEY, b"instore/ble-token/v1:" + MEMBER.encode(), hashlib.sha256)
    window = int(now // WINDOW_SECONDS)
    expected = hmac.digest(member_key, MEMBER.encode() + window.to_bytes(8, "big"), "sha256")[:8]
    assert phone_advert(MEMBER, now) == b"\x01" + expected
    assert make_token(member_key, MEMBER, window) == expected


@pytest.mark.parametrize(
    ("phone_offset", "resolves"),
    [
        (0, True),
        (-WINDOW_SECONDS, True),  # phone clock a window behind
        (WINDOW_SECONDS, True),  # ...or ahead
        (-2 * WINDOW_SECONDS, False),  # a token recorded ten minutes ago no longer works
        (2 * WINDOW_SECONDS, False),
    ],
)
def test_token_window_edges(phone_offset: int, resolves: bool) -> None:
    box_time = 1_700_000_100.0  # exactly on a window boundary
    assert box_time % WINDOW_SECONDS == 0
    resolver = TokenResolver(BOX_KEY, [MEMBER])
    token = phone_advert(MEMBER, box_time + phone_offset)[1:]
    assert (resolver.resolve(token, box_time) == MEMBER) is resolves


def test_token_boundary_seconds() -> None:
    """The last second of a window and the first of the next are neighbours, not strangers."""
    resolver = TokenResolver(BOX_KEY, [MEMBER])
    boundary = 1_700_000_100.0
    assert token_window(boundary - 0.001) + 1 == token_window(boundary)
    token = phone_advert(MEMBER, boundary - 0.001)[1:]
    assert resolver.resolve(token, boundary) == MEMBER
    assert resolver.resolve(token, boundary + WINDOW_SECONDS) is None  # two windows on


def test_resolver_follows_time_forward_and_back() -> None:
    resolver = TokenResolver(BOX_KEY, [MEMBER])
    start = 1_700_000_100.0
    for step in range(5):
        now = start + step * WINDOW_SECONDS
        assert resolver.resolve(phone_advert(MEMBER, now)[1:], now) == MEMBER
    assert resolver.resolve(phone_advert(MEMBER, start)[1:], start) == MEMBER


def test_resolver_only_knows_consenting_members() -> None:
    now = time.time()
    resolver = TokenResolver(BOX_KEY, [MEMBER])
    assert resolver.resolve(phone_advert("member-7", now)[1:], now) is None
    resolver.set_members([])  # consent withdrawn
    assert resolver.resolve(phone_advert(MEMBER, now)[1:], now) is None


def test_another_box_key_resolves_nobody() -> None:
    now = time.time()
    resolver = TokenResolver(BOX_KEY, [MEMBER])
    assert resolver.resolve(phone_advert(MEMBER, now, key=b"k" * 32)[1:], now) is None


def test_resolver_never_shows_its_secrets() -> None:
    resolver = TokenResolver(BOX_KEY, [MEMBER])
    assert repr(resolver) == "TokenResolver(members=1, window=300s)"
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenResolver(b"short", [MEMBER])


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"\x01" + bytes(7), "8 bytes, not 9"), (b"\x02" + bytes(8), "version 2")],
)
def test_malformed_token(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedAdvertisement, match=reason):
        decode_advertisement({LOYALTY_COMPANY_ID: data}, {}, unix_time=0.0)
