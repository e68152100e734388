"""Who is asking: the WiFi client (IP, and its MAC from the hardware lookup) behind a request."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request

from hardware.clients import ClientLookup
from instore import sessions
from portal.database import get_db


@dataclass(frozen=True)
class WifiClient:
    ip: str
    mac: str | None


def client_lookup() -> ClientLookup:
    lookup: ClientLookup = current_app.extensions["instore_client_lookup"]
    return lookup


def current_client() -> WifiClient:
    """The client that sent this request. The portal faces phones directly, so REMOTE_ADDR is it."""
    ip = request.remote_addr or ""
    return WifiClient(ip=ip, mac=client_lookup().mac_for(ip) if ip else None)


def current_session() -> sessions.ClientSession | None:
    client = current_client()
    if client.mac is None:
        return None
    return sessions.live_session(get_db(), client.ip, client.mac)
