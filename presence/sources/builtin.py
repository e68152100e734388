"""Built-in wifi and replay sources, registered through the ``presence_source`` hook like a
third-party source would be.

Settings come from the ``[presence]`` config section (``sensor_id``, ``wifi_interface``,
``wifi_channels``, ``wifi_dwell_ms``, ``wifi_hop``, ``replay_file``, ``replay_speed``), whose
defaults and meaning are declared once in ``instore.config``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from instore import hookimpl
from presence.sources.replay import PcapReplaySource
from presence.sources.wifi import WifiSource

MS_PER_S = 1000.0


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
    presence = config["presence"]
    if name == "wifi":
        return WifiSource(
            interface=presence["wifi_interface"],
            sensor_id=presence["sensor_id"],
            channels=[int(channel) for channel in presence["wifi_channels"]],
            dwell_s=presence["wifi_dwell_ms"] / MS_PER_S,
            hop=presence["wifi_hop"],
            member_macs=linked_member_macs(config),
        )
    if name == "replay":
        if not presence["replay_file"]:
            raise ValueError("presence.replay_file is not set: which capture file to replay?")
        return PcapReplaySource(
            presence["replay_file"],
            sensor_id=presence["sensor_id"],
            speed=replay_speed(presence["replay_speed"]),
        )
    return None
