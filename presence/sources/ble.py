"""The BLE presence source: bleak scanning through BlueZ, adverts decoded into ``Observation``s.

Passive scanning comes first: the box only listens and never sends scan requests, so it is
invisible to the phones and uses less airtime in a crowded store. BlueZ scans passively only
through its AdvertisementMonitor API (BlueZ >= 5.56 with ``--experimental``, Linux >= 5.10), which
wakes up for adverts matching "or patterns", so passive mode hears exactly ``PASSIVE_PATTERNS``
(iBeacon, Eddystone, the loyalty token). Where that API is missing the source falls back to active
scanning, which hears every advert, and logs why.

bleak does not notice when the adapter is unplugged or bluetoothd restarts: it just stops calling
back. So ``AdapterWatch`` keeps its own D-Bus connection, follows BlueZ's bus name, the adapter's
``InterfacesRemoved`` and its ``Powered`` property, and ``stream()`` raises
``BluetoothUnavailable``; the daemon restarts the source with back-off.

Privacy: nothing here logs addresses or payloads (logs reach the disk, raw MACs must not), and
the loyalty token is dropped from the payload once decoded: downstream sees ``member_id`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from bleak import BleakScanner
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from presence.ble import (
    APPLE_COMPANY_ID,
    EDDYSTONE_UUID16,
    IBEACON_PREFIX,
    LOYALTY_COMPANY_ID,
    TOKEN_VERSION,
    MalformedAdvertisement,
    TokenResolver,
    decode_advertisement,
)
from presence.observation import BLE, Observation
from presence.sources import Source

logger = logging.getLogger(__name__)

ScanningMode = Literal["active", "passive"]

# What passive scanning wakes up for: (start position, AD type, leading bytes of the AD data).
PASSIVE_PATTERNS: tuple[tuple[int, AdvertisementDataType, bytes], ...] = (
    (
        0,
        AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA,
        APPLE_COMPANY_ID.to_bytes(2, "little") + IBEACON_PREFIX,
    ),
    (
        0,
        AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA,
        LOYALTY_COMPANY_ID.to_bytes(2, "little") + bytes([TOKEN_VERSION]),
    ),
    (0, AdvertisementDataType.SERVICE_DATA_UUID16, EDDYSTONE_UUID16.to_bytes(2, "little")),
)
QUEUE_SIZE = 10_000  # seconds of adverts in a busy store; a consumer further behind is stuck,
# and sightings that old are worth less than the memory they hold
STOP_TIMEOUT_S = 5.0  # stopping a scan asks bluetoothd; a wedged one must not hang shutdown
BLUEZ_SERVICE = "org.bluez"
ADAPTER_INTERFACE = "org.bluez.Adapter1"
OBJECT_MANAGER_INTERFACE = "org.freedesktop.DBus.ObjectManager"


class BluetoothUnavailable(RuntimeError):
    """No usable adapter: missing, removed, powered off, or bluetoothd is gone."""


@dataclass
class BleCounters:
    """What the source heard and skipped since it was created (across restarts)."""

    adverts: int = 0  # advert callbacks from bleak
    malformed: int = 0  # skipped: bytes contradict their format (MalformedAdvertisement)
    dropped: int = 0  # skipped: the consumer fell QUEUE_SIZE observations behind


class BleSource:
    """A ``Source`` of BLE sightings from one adapter; ``stream()`` may be called again after
    it raised (a new scan, a new watch)."""

    name = "ble"

    def __init__(
        self,
        sensor_id: str,
        adapter: str | None = None,
        token_resolver: TokenResolver | None = None,
        *,
        scanning_mode: ScanningMode = "passive",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sensor_id = sensor_id
        self.adapter = adapter  # e.g. "hci0"; None: the first powered adapter
        self.token_resolver = token_resolver
        self.preferred_mode: ScanningMode = scanning_mode
        self.clock = clock  # wall time: observations and token windows are in unix time
        self.counters = BleCounters()
        self.scanning_mode: ScanningMode | None = None  # the mode in use while scanning
        self.scanning = asyncio.Event()  # set while a scan is running (tests wait on it)

    def observation_from(self, address: str, advert: AdvertisementData) -> Observation | None:
        """Decode one advert; None (and counted) when it is malformed."""
        self.counters.adverts += 1
        now = self.clock()
        try:
            decoded = decode_advertisement(
                advert.manufacturer_data,
                advert.service_data,
                unix_time=now,
                token_resolver=self.token_resolver,
            )
        except MalformedAdvertisement as exc:
            self.counters.malformed += 1
            logger.debug("skipped a malformed BLE advert: %s", exc)
            return None
        manufacturer = {
            company: bytes(data)
            for company, data in advert.manufacturer_data.items()
            if company != LOYALTY_COMPANY_ID  # the token stays here; member_id is in decoded
        }
        payload = {
            "manufacturer": manufacturer,
            "service_data": {key: bytes(data) for key, data in advert.service_data.items()},
            "decoded": decoded,
        }
        return Observation(now, self.sensor_id, BLE, address.lower(), advert.rssi, payload)

    async def stream(self) -> AsyncIterator[Observation]:
        """Scan until cancelled; raise ``BluetoothUnavailable`` when the adapter goes away."""
        queue: asyncio.Queue[Observation | None] = asyncio.Queue(QUEUE_SIZE)
        failures: list[BluetoothUnavailable] = []

        def fail(reason: str) -> None:
            failures.append(BluetoothUnavailable(reason))
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)  # wake the loop; a full queue wakes it anyway

        def on_advert(device: BLEDevice, advert: AdvertisementData) -> None:
            observation = self.observation_from(device.address, advert)
            if observation is None:
                return
            try:
                queue.put_nowait(observation)
            except asyncio.QueueFull:
                self.counters.dropped += 1

        watch = AdapterWatch(self.adapter, fail)
        try:
            adapter = await watch.start()
            scanner = await self._start_scanner(adapter, on_advert)
            try:
                self.scanning.set()
                while not failures:
                    item = await queue.get()
                    if item is not None and not failures:
                        yield item
                raise failures[0]
            finally:
                self.scanning.clear()
                self.scanning_mode = None
                await _stop_quietly(scanner)
        finally:
            await watch.close()

    async def _start_scanner(
        self, adapter: str, on_advert: Callable[[BLEDevice, AdvertisementData], None]
    ) -> BleakScanner:
        if self.preferred_mode == "passive":
            try:
                scanner = BleakScanner(on_advert, **_scanner_kwargs(adapter, "passive"))
                await scanner.start()
            except BleakError as exc:
                logger.warning(
                    "BLE %s: passive scanning unavailable (%s); falling back to active scanning",
                    adapter,
                    exc,
                )
            else:
                self.scanning_mode = "passive"
                logger.info("BLE %s: scanning (passive)", adapter)
                return scanner
        try:
            scanner = BleakScanner(on_advert, **_scanner_kwargs(adapter, "active"))
            await scanner.start()
        except BleakError as exc:
            raise BluetoothUnavailable(f"cannot scan on {adapter}: {exc}") from exc
        self.scanning_mode = "active"
        logger.info("BLE %s: scanning (active)", adapter)
        return scanner


def create_ble_source(
    sensor_id: str, adapter: str | None = None, token_resolver: TokenResolver | None = None
) -> Source:
    """The BLE source for the ``presence_source`` hook: ``sensor_id`` is the radio's sensor row."""
    return BleSource(sensor_id, adapter, token_resolver)


def _scanner_kwargs(adapter: str, mode: ScanningMode) -> dict[str, Any]:
    """BleakScanner arguments for this bleak version: the adapter moved into ``bluez`` in 3.0."""
    bluez: dict[str, Any] = {}
    kwargs: dict[str, Any] = {"scanning_mode": mode}
    if mode == "passive":
        or_pattern = _or_pattern_class()
        bluez["or_patterns"] = [or_pattern(*pattern) for pattern in PASSIVE_PATTERNS]
    if _bluez_args_take_adapter():
        bluez["adapter"] = adapter
    else:
        kwargs["adapter"] = adapter
    if bluez:
        kwargs["bluez"] = bluez
    return kwargs


def _or_pattern_class() -> Any:
    try:  # bleak >= 1.0
        return importlib.import_module("bleak.args.bluez").OrPattern
    except ImportError:  # bleak 0.21
        return importlib.import_module("bleak.backends.bluezdbus.advertisement_monitor").OrPattern


def _bluez_args_take_adapter() -> bool:
    try:
        args = importlib.import_module("bleak.args.bluez").BlueZScannerArgs
    except ImportError:
        return False
    return "adapter" in getattr(args, "__annotations__", {})


async def _stop_quietly(scanner: BleakScanner) -> None:
    """Stop a scan that may have lost its adapter or bluetoothd already: nothing left to stop."""
    try:
        await asyncio.wait_for(scanner.stop(), STOP_TIMEOUT_S)
    except Exception as exc:  # cleanup: whatever went wrong, the scan is over either way
        logger.debug("stopping the BLE scan failed, as expected when BlueZ is gone: %s", exc)


class AdapterWatch:
    """Reports (through ``on_lost``) when the adapter stops being usable, on its own D-Bus link.

    A separate connection because bleak's is private to it and keeps going quietly when BlueZ
    goes away; D-Bus signals tell us at once, no polling.
    """

    def __init__(self, adapter: str | None, on_lost: Callable[[str], None]) -> None:
        self.adapter = adapter
        self._on_lost = on_lost
        self._bus: MessageBus | None = None
        self._bluez_owner: str | None = None
        self._adapter_name: str | None = None
        self._adapter_path: str | None = None
        self._lost = False
        self._closing = False
        self._watch_task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Connect, subscribe, then check the adapter exists and is powered; return its name."""
        try:
            self._bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except (OSError, EOFError, ValueError) as exc:
            raise BluetoothUnavailable(f"system D-Bus unreachable: {exc}") from exc
        self._bus.add_message_handler(self._on_message)
        # Subscribe before reading state, so nothing can change unseen in between.
        for rule in (
            f"type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',"
            f"arg0='{BLUEZ_SERVICE}'",
            f"type='signal',sender='{BLUEZ_SERVICE}',interface='{OBJECT_MANAGER_INTERFACE}',"
            "member='InterfacesRemoved'",
            f"type='signal',sender='{BLUEZ_SERVICE}',"
            "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
            "path_namespace='/org/bluez'",
        ):
            await self._call("org.freedesktop.DBus", "/org/freedesktop/DBus", "AddMatch", rule)
        owner = await self._call(
            "org.freedesktop.DBus", "/org/freedesktop/DBus", "GetNameOwner", BLUEZ_SERVICE
        )
        if owner is None:
            raise BluetoothUnavailable("bluetoothd is not running (no org.bluez on the bus)")
        self._bluez_owner = owner[0]
        objects = await self._call(BLUEZ_SERVICE, "/", "GetManagedObjects")
        if objects is None:
            raise BluetoothUnavailable("bluetoothd did not list its objects")
        name = self._adapter_name = self._pick_adapter(objects[0])
        self._adapter_path = f"/org/bluez/{name}"
        self._watch_task = asyncio.create_task(self._watch_bus(self._bus))
        return name

    async def close(self) -> None:
        """Stop watching (our own shutdown is not a loss)."""
        self._closing = True
        if self._bus is not None:
            self._bus.disconnect()
        if self._watch_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._watch_task, STOP_TIMEOUT_S)

    def _pick_adapter(self, objects: dict[str, dict[str, dict[str, Any]]]) -> str:
        adapters = {
            path.rsplit("/", 1)[-1]: interfaces[ADAPTER_INTERFACE]
            for path, interfaces in objects.items()
            if ADAPTER_INTERFACE in interfaces
        }
        if self.adapter is None:
            powered = sorted(name for name, props in adapters.items() if _powered(props))
            if not powered:
                raise BluetoothUnavailable(f"no powered Bluetooth adapter (found {len(adapters)})")
            return powered[0]
        if self.adapter not in adapters:
            raise BluetoothUnavailable(f"Bluetooth adapter {self.adapter} not found")
        if not _powered(adapters[self.adapter]):
            raise BluetoothUnavailable(f"Bluetooth adapter {self.adapter} is powered off")
        return self.adapter

    async def _call(self, destination: str, path: str, member: str, *args: str) -> Any:
        """Call a method; its reply body, or None if it answered with an error."""
        assert self._bus is not None
        interface = {BLUEZ_SERVICE: OBJECT_MANAGER_INTERFACE}.get(destination, destination)
        reply = await self._bus.call(
            Message(
                destination=destination,
                path=path,
                interface=interface,
                member=member,
                signature="s" * len(args),
                body=list(args),
            )
        )
        if reply.message_type == MessageType.ERROR:
            logger.debug("D-Bus %s failed: %s", member, reply.error_name)
            return None
        return reply.body

    async def _watch_bus(self, bus: MessageBus) -> None:
        await bus.wait_for_disconnect()
        self._report("the system D-Bus connection closed")

    def _on_message(self, message: Message) -> None:
        if message.message_type != MessageType.SIGNAL:
            return
        if message.member == "NameOwnerChanged" and message.body[0] == BLUEZ_SERVICE:
            if message.body[2] != self._bluez_owner:
                self._report("bluetoothd stopped or restarted")
        elif message.sender != self._bluez_owner:
            return  # a stale subscription from before a restart, or not BlueZ at all
        elif message.member == "InterfacesRemoved":
            path, interfaces = message.body
            if path == self._adapter_path and ADAPTER_INTERFACE in interfaces:
                self._report(f"Bluetooth adapter {self._adapter_name} was removed")
        elif message.member == "PropertiesChanged" and message.path == self._adapter_path:
            interface, changed, _invalidated = message.body
            powered = changed.get("Powered") if interface == ADAPTER_INTERFACE else None
            if powered is not None and not powered.value:
                self._report(f"Bluetooth adapter {self._adapter_name} was powered off")

    def _report(self, reason: str) -> None:
        if self._lost or self._closing:
            return
        self._lost = True
        logger.warning("BLE: %s", reason)
        self._on_lost(reason)


def _powered(adapter_props: dict[str, Any]) -> bool:
    powered = adapter_props.get("Powered")
    return bool(getattr(powered, "value", powered))
