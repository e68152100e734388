"""The uplink's settings, its topic names, and the MQTT client they describe.

One topic tree per store, under a chain-wide prefix::

    <prefix>/<store>/events/<kind>   the outbox, one message per event (QoS 1)
    <prefix>/<store>/status          "online" / "offline", retained; "offline" is the Last Will
    <prefix>/<store>/inbox/<kind>    headquarters' messages to this store (offers, members)

Kept apart from the loop (``instore.uplink``) so the CLI can check the files and build a client
before anything runs, and ``instore uplink status`` can name the topics without a broker.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from instore.config import Config

STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
# An event kind is one topic level; these would split it or act as wildcards to a subscriber.
_TOPIC_UNSAFE = str.maketrans({"/": "_", "+": "_", "#": "_", "\0": "_"})
# How long a TCP connect (and TLS handshake) to the broker may take before it counts as failed.
CONNECT_TIMEOUT_SECONDS = 10.0


class UplinkConfigError(Exception):
    """A setting the uplink cannot work with (unreadable certificate, …); the message says which."""


@dataclass(frozen=True)
class UplinkSettings:
    """``[uplink]`` with the store's topic level resolved."""

    enabled: bool
    host: str
    port: int
    tls: bool
    ca_file: str
    cert_file: str
    key_file: str
    username: str
    password: str
    store_id: str
    topic_prefix: str
    batch_size: int
    keepalive_seconds: int
    reconnect_min_seconds: float
    reconnect_max_seconds: float

    @classmethod
    def from_config(cls, config: Config) -> UplinkSettings:
        section = config["uplink"]
        return cls(
            enabled=section["enabled"],
            host=section["host"],
            port=section["port"],
            tls=section["tls"],
            ca_file=section["ca_file"],
            cert_file=section["cert_file"],
            key_file=section["key_file"],
            username=section["username"],
            password=section["password"],
            store_id=section["store_id"] or config["store"]["id"],
            topic_prefix=section["topic_prefix"],
            batch_size=section["batch_size"],
            keepalive_seconds=section["keepalive_seconds"],
            reconnect_min_seconds=float(section["reconnect_min_seconds"]),
            reconnect_max_seconds=float(section["reconnect_max_seconds"]),
        )

    @property
    def store_topic(self) -> str:
        return f"{self.topic_prefix}/{self.store_id}"

    @property
    def client_id(self) -> str:
        """Fixed per store: the broker keeps the store's session (its inbox) across reconnects."""
        return f"instore-{self.store_id}"

    def event_topic(self, kind: str) -> str:
        return f"{self.store_topic}/events/{kind.translate(_TOPIC_UNSAFE) or 'unknown'}"

    @property
    def status_topic(self) -> str:
        return f"{self.store_topic}/status"

    @property
    def inbox_prefix(self) -> str:
        return f"{self.store_topic}/inbox/"

    @property
    def inbox_filter(self) -> str:
        return f"{self.store_topic}/inbox/#"

    @property
    def broker(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def check_files(settings: UplinkSettings) -> None:
    """Raise ``UplinkConfigError`` if a CA, certificate or key file cannot be read.

    Found out once at start with the file's name, rather than as an SSL error on every retry.
    """
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(settings, key)
        if path and not os.access(path, os.R_OK):
            reason = "does not exist" if not os.path.exists(path) else "is not readable"
            raise UplinkConfigError(f"uplink.{key}: {path} {reason} (for this user)")


def make_client(settings: UplinkSettings, **callbacks: Any) -> mqtt.Client:
    """A configured, unconnected client: TLS, credentials, the Last Will, and ``callbacks``.

    ``clean_session=False`` with the store's fixed client id: headquarters' messages published
    while the box is offline wait at the broker, and one whose acknowledgement was lost comes
    again (``instore.uplink_apply`` skips the repeat by its message id). The events need no
    session: the database is their buffer.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    client.connect_timeout = CONNECT_TIMEOUT_SECONDS
    # The window is ours (batch_size events); paho must not hold them back, nor the status
    # message ("online"/"offline") that may be in flight beside them.
    client.max_inflight_messages_set(settings.batch_size + 1)
    if settings.tls:
        try:
            client.tls_set(
                ca_certs=settings.ca_file or None,
                certfile=settings.cert_file or None,
                keyfile=settings.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise UplinkConfigError(f"uplink TLS files: {exc}") from None
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    client.will_set(settings.status_topic, STATUS_OFFLINE, qos=1, retain=True)
    for name, callback in callbacks.items():
        setattr(client, name, callback)
    return client
