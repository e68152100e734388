"""The BLE source: observations from adverts fed directly, then bleak against a mocked BlueZ."""

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

from presence.ble import LOYALTY_COMPANY_ID, TokenResolver, parse_advertisement
from presence.observation import BLE, Observation
from presence.sources.ble import BleSource, BluetoothUnavailable, create_ble_source
from tests.ble_adverts import (
    AIRLOCATE_IBEACON,
    BLUECHARM_EDDYSTONE_URL,
    BLUECHARM_IBEACON,
    BLUECHARM_IBEACON_MEANS,
    BOX_KEY,
    MEMBER,
    phone_advert,
)

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
