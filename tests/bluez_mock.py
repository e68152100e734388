"""A mocked BlueZ on a private system bus, so bleak runs for real on a machine without a radio.

python-dbusmock's ``bluez5`` template plays bluetoothd. Two of its habits need working around
(see TESTING.md, "Bluetooth LE without a radio"):

- ``AddDevice`` gives ``ManufacturerData`` and ``ServiceData`` the wrong D-Bus type (arrays, not
  dictionaries); bleak's handler then fails silently. ``add_device`` re-sets them at once with
  ``UpdateProperties`` as ``a{qv}`` / ``a{sv}`` dictionaries; ``advertise`` does the same with
  data, a PropertiesChanged signal like the one real BlueZ sends when it hears an advert.
- The bus daemon and the template server are child processes: ``MockBluez.close`` stops both.
  Their output goes to files, never to a pipe nobody drains (a full pipe blocks the mock).

Import this module only after checking dbusmock is installed (``test_ble.bluez`` does).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dbus
from dbusmock.testcase import BusType, PrivateDBus, SpawnedMock

BLUEZ_MOCK_INTERFACE = "org.bluez.Mock"
MOCK_INTERFACE = "org.freedesktop.DBus.Mock"
DEVICE_INTERFACE = "org.bluez.Device1"


class MockBluez:
    """Adapters and advertising devices in the mock, in the D-Bus types real BlueZ uses."""

    def __init__(self, bus: PrivateDBus, server: SpawnedMock) -> None:
        self.bus = bus
        self.server = server
        self.connection = BusType.SYSTEM.get_connection()

    def add_adapter(self, name: str = "hci0") -> str:
        """A powered adapter, e.g. /org/bluez/hci0."""
        return str(
            self.server.obj.AddAdapter(name, "instore-test", dbus_interface=BLUEZ_MOCK_INTERFACE)
        )

    def remove_adapter(self, name: str = "hci0") -> None:
        """Unplug the adapter (BlueZ emits InterfacesRemoved)."""
        self.server.obj.RemoveAdapter(name, dbus_interface=BLUEZ_MOCK_INTERFACE)

    def add_device(self, adapter: str, address: str) -> str:
        """A device BlueZ knows, its advert properties retyped as real BlueZ types them.

        Add devices before the scan starts: the mock's InterfacesAdded carries the wrong types
        and a running bleak scanner logs the error (harmlessly) before the retyping arrives.
        """
        path = str(
            self.server.obj.AddDevice(adapter, address, "", dbus_interface=BLUEZ_MOCK_INTERFACE)
        )
        self.advertise(path, rssi=-127)
        return path

    def advertise(
        self,
        device_path: str,
        *,
        rssi: int,
        manufacturer_data: Mapping[int, bytes] | None = None,
        service_data: Mapping[str, bytes] | None = None,
    ) -> None:
        """An advert heard from the device: RSSI and data in one PropertiesChanged, which is
        what makes bleak call back."""
        properties: dict[str, Any] = {
            "RSSI": dbus.Int16(rssi),
            "ManufacturerData": dbus.Dictionary(
                {
                    dbus.UInt16(company): dbus.Array(data, signature="y")
                    for company, data in (manufacturer_data or {}).items()
                },
                signature="qv",
            ),
            "ServiceData": dbus.Dictionary(
                {
                    dbus.String(uuid): dbus.Array(data, signature="y")
                    for uuid, data in (service_data or {}).items()
                },
                signature="sv",
            ),
        }
        device = self.connection.get_object("org.bluez", device_path)
        device.UpdateProperties(DEVICE_INTERFACE, properties, dbus_interface=MOCK_INTERFACE)

    def stop_bluetoothd(self) -> None:
        """bluetoothd exits: its bus name goes away, as when systemd restarts it."""
        self.server.terminate()

    def close(self) -> None:
        self.connection.close()
        self.server.terminate()
        self.bus.stop()


@contextmanager
def mocked_bluez(log_dir: Path, *, monitor_api: bool = True) -> Iterator[MockBluez]:
    """A private system bus (``DBUS_SYSTEM_BUS_ADDRESS`` points at it) with the bluez5 mock.

    ``monitor_api=False`` leaves out AdvertisementMonitorManager1, like a BlueZ without
    ``--experimental``: passive scanning is then impossible. The caller restores the
    environment variable (monkeypatch), since PrivateDBus sets it and never unsets it.
    """
    bus = PrivateDBus(BusType.SYSTEM)
    bus.start()
    log = (log_dir / "bluez-mock.log").open("wb")
    try:
        server = SpawnedMock.spawn_with_template(
            "bluez5",
            {"enable_monitor_api": monitor_api},
            BusType.SYSTEM,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    except BaseException:
        bus.stop()
        log.close()
        raise
    mock = MockBluez(bus, server)
    try:
        yield mock
    finally:
        mock.close()
        log.close()
