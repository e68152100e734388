"""BLE decoding on real advert bytes, the loyalty token, and bleak against a mocked BlueZ."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from bleak.backends.scanner import AdvertisementData

from presence.ble import (
    APPLE_COMPANY_ID,
    EDDYSTONE_SERVICE_UUID,
    LOYALTY_COMPANY_ID,
    WINDOW_SECONDS,
    EddystoneTLM,
    EddystoneUID,
    EddystoneURL,
    IBeacon,
    MalformedAdvertisement,
    TokenResolver,
    decode_advertisement,
    decode_eddystone,
    decode_ibeacon,
    loyalty_manufacturer_data,
    make_token,
    member_token_key,
    parse_advertisement,
    token_window,
)
from presence.observation import BLE, Observation
from presence.sources.ble import BleSource, BluetoothUnavailable, create_ble_source

# --- Canned real adverts (raw advertising data, as a scanner reports it) -------------------------

# Apple's AirLocate sample UUID, advertised from a Linux box in David G. Young's answer to "What is
# the iBeacon Bluetooth Profile" (Stack Overflow, 2013): flags 0x1a, then the iBeacon.
AIRLOCATE_IBEACON = bytes.fromhex(
    "02011a"  # flags: LE general discoverable, BR/EDR capable
    "1aff4c00"  # manufacturer data, Apple (0x004C)
    "0215"  # iBeacon, 21 bytes follow
    "e2c56db5dffb48d2b060d0f5a71096e0"  # proximity UUID
    "0000"  # major 0
    "0000"  # minor 0
    "c5"  # measured power -59 dBm at 1 m
)
AIRLOCATE_MEANS = IBeacon("e2c56db5-dffb-48d2-b060-d0f5a71096e0", 0, 0, -59)

# Captured from a Blue Charm BC011 beacon; Android's Bluetooth stack replays these four in its
# scan test mode (AOSP packages/modules/Bluetooth, ScanController.TEST_MODE_BEACONS). Each also
# carries Blue Charm's own service data (UUID 0x2080) and the name "BlueCharm_169685".
BLUECHARM_TAIL = "09168020691e0efe13551109426c7565436861726d5f313639363835"
BLUECHARM_IBEACON = bytes.fromhex(
    "020106" "1aff4c000215"
    "426c7565436861726d426561636f6e73"  # UUID: "BlueCharmBeacons" in ASCII
    "0efe" "1355" "c5" + BLUECHARM_TAIL + "00000000"
)  # fmt: skip
BLUECHARM_IBEACON_MEANS = IBeacon("426c7565-4368-6172-6d42-6561636f6e73", 3838, 4949, -59)
BLUECHARM_EDDYSTONE_URL = bytes.fromhex(
    "020106" "0303aafe"  # flags; complete list of 16-bit service UUIDs: 0xFEAA
    "1716aafe" "10" "ee"  # Eddystone service data: URL frame, -18 dBm at 0 m
    "01" "626c7565636861726d626561636f6e73" "00"  # "https://www." "bluecharmbeacons" ".com/"
    + BLUECHARM_TAIL + "000000"
)  # fmt: skip
BLUECHARM_EDDYSTONE_URL_MEANS = EddystoneURL("https://www.bluecharmbeacons.com/", -18)
BLUECHARM_EDDYSTONE_UID = bytes.fromhex(
    "020106" "0303aafe"
    "1716aafe" "00" "ee"  # UID frame, -18 dBm at 0 m
    "626c7565636861726d31" "000000000001" "0000"  # namespace "bluecharm1", instance 1, RFU
    + BLUECHARM_TAIL + "000000"
)  # fmt: skip
BLUECHARM_EDDYSTONE_UID_MEANS = EddystoneUID("626c7565636861726d31", "000000000001", -18)
BLUECHARM_EDDYSTONE_TLM = bytes.fromhex(
    "020106" "0303aafe"
    "1116aafe" "20" "00"  # TLM frame, version 0 (unencrypted)
    "0bf0" "1700" "00088748" "03fb9354"  # 3056 mV, 23.0 °C, 558 920 adverts, 6 681 890.0 s
    "0916802069080efe1355" "1109426c7565436861726d5f313639363835" + "00" * 9
)  # fmt: skip
BLUECHARM_EDDYSTONE_TLM_MEANS = EddystoneTLM(3056, 23.0, 0x00088748, 6_681_890.0)

# MikroTik TG-BT5 tags as listed by RouterOS (help.mikrotik.com, Bluetooth, "peripheral devices"):
# RouterOS decodes the TLM as 2.928 V, 21.285 °C, 37040856 packets, uptime 3724474.2 s.
MIKROTIK_EDDYSTONE_TLM = bytes.fromhex("0201060303aafe1116aafe20000b701549023532d802384f46")
MIKROTIK_EDDYSTONE_TLM_MEANS = EddystoneTLM(2928, 21 + 0x49 / 256, 37_040_856, 3_724_474.2)
# ...and a UID without flags: -27 dBm, namespace b2b98de4c81c47c2b14e, instance 750000000000.
MIKROTIK_EDDYSTONE_UID = bytes.fromhex("0303aafe1716aafe00e5b2b98de4c81c47c2b14e7500000000000000")
MIKROTIK_EDDYSTONE_UID_MEANS = EddystoneUID("b2b98de4c81c47c2b14e", "750000000000", -27)

# The Android Beacon Library's Eddystone-UID test vector (GattBeaconTest): an 18-byte frame
# without the RFU bytes, as older firmware sends it, in a scan record padded with zeros.
ALTBEACON_EDDYSTONE_UID = bytes.fromhex(
    "0201060303aafe1516aafe00e700010203040506070809010203040506" + "00" * 33
)
ALTBEACON_EDDYSTONE_UID_MEANS = EddystoneUID("00010203040506070809", "010203040506", -25)

BOX_KEY = bytes(range(32))
MEMBER = "member-42"


def test_split_constants_are_the_published_captures_byte_for_byte() -> None:
    """The constants above are split for reading; this pins them to AOSP's strings verbatim."""
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


def phone_advert(member_id: str, unix_time: float, key: bytes = BOX_KEY) -> bytes:
    """What the member's app advertises: it holds only its own member key."""
    return loyalty_manufacturer_data(member_token_key(key, member_id), member_id, unix_time)


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


# --- The source, fed directly ------------------------------------------------------------------


def advert(manufacturer: dict[int, bytes], service: dict[str, bytes], rssi: int) -> Any:
    return AdvertisementData(None, manufacturer, service, [], None, rssi, ())


def test_source_builds_observations_and_hides_the_token() -> None:
    now = 1_700_000_123.0
    source = BleSource(
        "entrance", token_resolver=TokenResolver(BOX_KEY, [MEMBER]), clock=lambda: now
    )
    apple = parse_advertisement(BLUECHARM_IBEACON).manufacturer_data
    data = {**apple, LOYALTY_COMPANY_ID: phone_advert(MEMBER, now)}
    observation = source.observation_from("DD:34:02:05:5C:4D", advert(data, {}, -61))
    assert observation == Observation(
        ts=now,
        sensor_id="entrance",
        kind=BLE,
        address="dd:34:02:05:5c:4d",
        rssi=-61,
        payload={
            "manufacturer": apple,  # the loyalty entry is gone
            "service_data": {},
            "decoded": {
                "ibeacon": {"uuid": BLUECHARM_IBEACON_MEANS.uuid, "major": 3838, "minor": 4949,
                            "measured_power": -59},
                "loyalty": {"member_id": MEMBER},
            },
        },
    )  # fmt: skip


def test_source_counts_and_skips_malformed_adverts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = BleSource("entrance")
    secret = b"\x01" + b"SECRETTOK"  # one byte too long
    assert source.observation_from("AA:BB:CC:DD:EE:FF", advert({0xFFFF: secret}, {}, -70)) is None
    assert source.observation_from("AA:BB:CC:DD:EE:FF", advert({}, {}, -70)) is not None
    assert (source.counters.adverts, source.counters.malformed) == (2, 1)
    assert "SECRETTOK" not in caplog.text
    assert "aa:bb" not in caplog.text.lower()


# --- bleak for real, against python-dbusmock's bluez5 template ----------------------------------

STEP_TIMEOUT_S = 10.0  # generous for a loaded CI machine; a healthy run takes milliseconds
IBEACON_ADDRESS = "F0:0D:00:00:00:01"
PHONE_ADDRESS = "4A:11:22:33:44:55"  # locally administered, as phones' private addresses are
EDDYSTONE_ADDRESS = "F0:0D:00:00:00:02"


@pytest.fixture
def bluez(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """BlueZ mocked on a private system bus; ``@pytest.mark.parametrize("bluez", [False],
    indirect=True)`` leaves out the AdvertisementMonitor API (no passive scanning)."""
    missing = shutil.which("dbus-daemon") is None or any(
        importlib.util.find_spec(name) is None for name in ("dbusmock", "dbus")
    )
    if missing and os.environ.get("CI"):
        pytest.fail("dbus-daemon or python-dbusmock missing; .ci/run and make test install them")
    if missing:
        pytest.skip(reason="dbus-daemon or python-dbusmock not installed (.ci/run installs them)")
    from tests.bluez_mock import mocked_bluez

    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)  # restored after the test
    with mocked_bluez(tmp_path, monitor_api=getattr(request, "param", True)) as mock:
        yield mock


class Collector:
    """Runs a source in a task and lets the test wait for what it yields (no sleeping)."""

    def __init__(self, source: BleSource) -> None:
        self.source = source
        self.seen: list[Observation] = []
        self.changed = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the source; return once its scan runs (or raise what stopped it)."""
        self.task = asyncio.create_task(self._run())
        scanning = asyncio.create_task(self.source.scanning.wait())
        await asyncio.wait(
            {self.task, scanning}, timeout=STEP_TIMEOUT_S, return_when="FIRST_COMPLETED"
        )
        scanning.cancel()
        if self.task.done():
            self.task.result()
        assert self.source.scanning.is_set(), "the scan did not start"

    async def until(self, predicate: Any) -> None:
        """Wait until ``predicate(seen)`` holds or the source stops, at most STEP_TIMEOUT_S."""
        assert self.task is not None
        async with asyncio.timeout(STEP_TIMEOUT_S), self.changed:
            await self.changed.wait_for(lambda: predicate(self.seen) or self.task.done())
        if self.task.done():
            self.task.result()

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def finished(self) -> None:
        """Wait for the stream to end by itself (it raises when BlueZ goes away)."""
        assert self.task is not None
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await self.task

    async def _run(self) -> None:
        try:
            async with contextlib.aclosing(self.source.stream()) as stream:
                async for observation in stream:
                    self.seen.append(observation)
                    async with self.changed:
                        self.changed.notify_all()
        finally:
            async with self.changed:
                self.changed.notify_all()


def decoded_by_address(seen: list[Observation]) -> dict[str, dict[str, Any]]:
    return {o.address: dict(o.payload["decoded"]) for o in seen if o.payload["decoded"]}


def test_bleak_source_decodes_adverts_from_bluez(bluez: Any) -> None:
    bluez.add_adapter("hci0")
    resolver = TokenResolver(BOX_KEY, [MEMBER])
    source = create_ble_source("entrance", adapter="hci0", token_resolver=resolver)
    assert isinstance(source, BleSource)
    ibeacon = parse_advertisement(BLUECHARM_IBEACON)
    url = parse_advertisement(BLUECHARM_EDDYSTONE_URL)

    beacon = bluez.add_device("hci0", IBEACON_ADDRESS)
    phone = bluez.add_device("hci0", PHONE_ADDRESS)
    eddystone = bluez.add_device("hci0", EDDYSTONE_ADDRESS)

    async def scenario() -> list[Observation]:
        collector = Collector(source)
        await collector.start()
        bluez.advertise(beacon, rssi=-58, manufacturer_data=ibeacon.manufacturer_data)
        token = phone_advert(MEMBER, time.time())
        bluez.advertise(phone, rssi=-71, manufacturer_data={LOYALTY_COMPANY_ID: token})
        bluez.advertise(eddystone, rssi=-80, service_data=url.service_data)
        await collector.until(lambda seen: len(decoded_by_address(seen)) == 3)
        await collector.stop()
        return collector.seen

    seen = asyncio.run(scenario())
    decoded = decoded_by_address(seen)
    assert decoded[IBEACON_ADDRESS.lower()] == {
        "ibeacon": {"uuid": BLUECHARM_IBEACON_MEANS.uuid, "major": 3838, "minor": 4949,
                    "measured_power": -59}
    }  # fmt: skip
    assert decoded[PHONE_ADDRESS.lower()] == {"loyalty": {"member_id": MEMBER}}
    assert decoded[EDDYSTONE_ADDRESS.lower()]["eddystone"] == {
        "frame": "url",
        "url": "https://www.bluecharmbeacons.com/",
        "tx_power": -18,
    }
    sighting = next(o for o in seen if o.address == PHONE_ADDRESS.lower() and o.payload["decoded"])
    assert (sighting.sensor_id, sighting.kind, sighting.rssi) == ("entrance", BLE, -71)
    assert sighting.payload["manufacturer"] == {}  # the token never leaves the source
    assert source.counters.malformed == 0


@pytest.mark.parametrize(
    ("bluez", "mode"), [(True, "passive"), (False, "active")], indirect=["bluez"]
)
def test_passive_where_bluez_allows_else_active(
    bluez: Any, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    bluez.add_adapter("hci0")
    source = BleSource("entrance", adapter="hci0")
    beacon = bluez.add_device("hci0", IBEACON_ADDRESS)

    async def scenario() -> str | None:
        collector = Collector(source)
        await collector.start()
        in_use = source.scanning_mode
        apple = parse_advertisement(AIRLOCATE_IBEACON).manufacturer_data
        bluez.advertise(beacon, rssi=-60, manufacturer_data=apple)
        await collector.until(lambda seen: bool(decoded_by_address(seen)))
        await collector.stop()
        return in_use

    assert asyncio.run(scenario()) == mode
    fell_back = "falling back to active scanning" in caplog.text
    assert fell_back is (mode == "active")


def test_stream_raises_when_the_adapter_is_removed(bluez: Any) -> None:
    bluez.add_adapter("hci0")
    source = BleSource("entrance", adapter="hci0")

    async def scenario() -> None:
        collector = Collector(source)
        await collector.start()
        bluez.remove_adapter("hci0")
        await collector.finished()

    with pytest.raises(BluetoothUnavailable, match="adapter hci0 was removed"):
        asyncio.run(scenario())
    assert not source.scanning.is_set()


def test_stream_raises_when_bluetoothd_goes_away(bluez: Any) -> None:
    bluez.add_adapter("hci0")
    source = BleSource("entrance")  # the first powered adapter

    async def scenario() -> None:
        collector = Collector(source)
        await collector.start()
        bluez.stop_bluetoothd()
        await collector.finished()

    with pytest.raises(BluetoothUnavailable, match="bluetoothd stopped or restarted"):
        asyncio.run(scenario())


def test_stream_raises_without_the_adapter(bluez: Any) -> None:
    bluez.add_adapter("hci0")

    async def first(stream: AsyncIterator[Observation]) -> None:
        await anext(stream)

    with pytest.raises(BluetoothUnavailable, match="adapter hci1 not found"):
        asyncio.run(first(BleSource("entrance", adapter="hci1").stream()))
