"""Built-in wifi and replay sources, registered through the ``presence_source`` hook like a
third-party source would be.

Settings come from the ``[presence]`` config section when it has them (keys below), else from
defaults that work on a box whose monitor interface is ``wlan0mon``:

- ``sensor_id`` (str): the sensor row this box's radio is; default ``"wifi-1"``.
- ``wifi_interface`` (str): monitor-mode interface; default ``"wlan0mon"``.
- ``wifi_channels`` (list of str): channel numbers to hop over; default ``["1", "6", "11"]``.
- ``wifi_dwell_ms`` (int): time on each channel; default 250.
- ``wifi_hop`` (bool): false when another tool (or a fixed channel) manages the radio.
- ``replay_file`` (str): capture file for the replay source.
- ``replay_speed`` (str): multiple of the recorded pace, or ``"max"``; default ``"max"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from instore import hookimpl
from presence.sources.replay import PcapReplaySource
from presence.sources.wifi import DEFAULT_CHANNELS, DEFAULT_DWELL_S, WifiSource

SECTION = "presence"
DEFAULTS: dict[str, Any] = {
    "sensor_id": "wifi-1",
    "wifi_interface": "wlan0mon",
    "wifi_channels": [str(channel) for channel in DEFAULT_CHANNELS],
    "wifi_dwell_ms": int(DEFAULT_DWELL_S * 1000),
    "wifi_hop": True,
    "replay_file": "",
    "replay_speed": "max",
}
MS_PER_S = 1000.0


def setting(config: Any, key: str) -> Any:
    """``[presence] key`` from the config if the section and key exist, else our default."""
    try:
        return config.get(SECTION, key)
    except (KeyError, AttributeError, TypeError):
        return DEFAULTS[key]


def replay_speed(raw: str) -> float | None:
    """``"max"`` (or empty) means as fast as possible; otherwise a positive multiple."""
    if raw.strip().lower() in {"", "max"}:
        return None
    try:
        speed = float(raw)
    except ValueError:
        raise ValueError(
            f"presence.replay_speed: expected a number or 'max', got {raw!r}"
        ) from None
    if speed <= 0:
        raise ValueError(f"presence.replay_speed: must be positive, got {raw!r}")
    return speed


def linked_member_macs(config: Any) -> Callable[[], list[str]]:
    """Consenting members' linked MACs from the database, read on each call (the wifi source
    calls it when it starts and every minute). The database opens on first use."""
    state: dict[str, Any] = {}

    def current() -> list[str]:
        if "identifier" not in state:
            from instore.db import open_database
            from presence.identity import Identifier

            db = open_database(config.database_path, config["database"]["busy_timeout_ms"])
            state["identifier"] = Identifier(db)
        identifier = state["identifier"]
        identifier.refresh_members()
        return list(identifier.member_macs)

    return current


@hookimpl
def presence_source(name: str, config: Any) -> Any:
    """Return the "wifi" or "replay" source built from ``[presence]``, else None."""
    if name == "wifi":
        channels = [int(channel) for channel in setting(config, "wifi_channels")]
        return WifiSource(
            interface=setting(config, "wifi_interface"),
            sensor_id=setting(config, "sensor_id"),
            channels=channels,
            dwell_s=setting(config, "wifi_dwell_ms") / MS_PER_S,
            hop=setting(config, "wifi_hop"),
            member_macs=linked_member_macs(config),
        )
    if name == "replay":
        path = setting(config, "replay_file")
        if not path:
            raise ValueError("presence.replay_file is not set: which capture file to replay?")
        return PcapReplaySource(
            path,
            sensor_id=setting(config, "sensor_id"),
            speed=replay_speed(setting(config, "replay_speed")),
        )
    return None
