"""What ``instore doctor`` asks the radios: monitor-mode support from ``iw``, adapters from BlueZ.

Parsing is kept apart from running so the parsers can be checked against real ``iw`` captures
from radios this machine lacks (``tests/fixtures/doctor/``); BlueZ is asked over the real D-Bus
system bus (``DBUS_SYSTEM_BUS_ADDRESS`` is honoured, so tests point it at a mocked bluetoothd).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

BLUEZ_SERVICE = "org.bluez"
ADAPTER_INTERFACE = "org.bluez.Adapter1"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
# BlueZ answers in milliseconds; a bus that takes longer than this is not going to answer.
DBUS_TIMEOUT_SECONDS = 5.0

_WIPHY = re.compile(r"^Wiphy (\S+)")
# iw indents with tabs; lines are read with tabs expanded (8 columns), so a capture pasted with
# spaces (as in most bug reports) reads the same.
_SECTION = re.compile(r"^ {8}(\S.*):\s*$")  # a one-tab heading: "\tSupported interface modes:"
_ITEM = re.compile(r"^ {16} \* (.+)$")  # one of its items: "\t\t * monitor"
_NESTED = " " * 16
SUPPORTED_MODES = "Supported interface modes"
SOFTWARE_MODES = "software interface modes (can always be added)"


@dataclass
class Phy:
    """One radio in ``iw list`` / ``iw phy NAME info``: the interface modes it can run."""

    name: str
    modes: set[str] = field(default_factory=set)
    software_modes: set[str] = field(default_factory=set)

    @property
    def monitor(self) -> bool:
        """Monitor interfaces can be created on it (as a driver mode or a software one)."""
        return "monitor" in self.modes or "monitor" in self.software_modes


def parse_iw_phys(text: str) -> list[Phy]:
    """The radios in ``iw list`` output (also ``iw phy`` and ``iw phy NAME info``), in order.

    Only the two interface-mode lists are read; iw prints them at one tab, their items at two
    tabs and a space (``\\t\\t * monitor``), which sets them apart from every other list.
    """
    phys: list[Phy] = []
    section = ""
    for raw in text.splitlines():
        line = raw.expandtabs(8)
        if match := _WIPHY.match(line):
            phys.append(Phy(match.group(1)))
            section = ""
            continue
        if not phys:
            continue
        if match := _SECTION.match(line):
            section = match.group(1)
            continue
        item = _ITEM.match(line)
        if item is None:
            if not line.startswith(_NESTED):
                section = ""
            continue
        if section == SUPPORTED_MODES:
            phys[-1].modes.add(item.group(1).strip())
        elif section == SOFTWARE_MODES:
            phys[-1].software_modes.add(item.group(1).strip())
    return phys


@dataclass(frozen=True)
class BluezAnswer:
    """BlueZ's adapters (name -> powered), or why they could not be listed."""

    adapters: dict[str, bool]
    error: str = ""  # "bus": no system bus; "bluez": bluetoothd not on it; else a D-Bus error


async def _bluez_adapters() -> BluezAnswer:
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    try:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    except Exception as exc:
        return BluezAnswer({}, f"bus: {exc}")
    try:
        reply = await bus.call(
            Message(
                destination=BLUEZ_SERVICE,
                path="/",
                interface=OBJECT_MANAGER,
                member="GetManagedObjects",
            )
        )
    finally:
        bus.disconnect()
    if reply is None or reply.message_type == MessageType.ERROR:
        name = getattr(reply, "error_name", "") or "no reply"
        if name in {
            "org.freedesktop.DBus.Error.ServiceUnknown",
            "org.freedesktop.DBus.Error.NameHasNoOwner",
        }:
            return BluezAnswer({}, "bluez")
        return BluezAnswer({}, name)
    adapters: dict[str, bool] = {}
    objects: dict[str, dict[str, dict[str, Any]]] = reply.body[0]
    for path, interfaces in sorted(objects.items()):
        props = interfaces.get(ADAPTER_INTERFACE)
        if props is None:
            continue
        powered = props.get("Powered")
        adapters[path.rsplit("/", 1)[-1]] = bool(getattr(powered, "value", powered))
    return BluezAnswer(adapters)


def bluez_adapters() -> BluezAnswer:
    """Ask BlueZ on the system bus for its adapters and whether each is powered."""
    try:
        return asyncio.run(asyncio.wait_for(_bluez_adapters(), DBUS_TIMEOUT_SECONDS))
    except TimeoutError:
        return BluezAnswer({}, f"no answer on the system bus within {DBUS_TIMEOUT_SECONDS:g} s")
