"""A real Mosquitto broker for tests: own port on loopback, own directory, stop and restart.

Persistence is on, so a graceful stop (SIGTERM) saves the queued QoS 1 messages of persistent
sessions and a restart delivers them, as a real broker does across a reboot.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.live_portal import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 15.0  # saving a persistence file of some 10,000 messages takes a moment


def mosquitto_available() -> bool:
    return os.path.exists(MOSQUITTO)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    """Poll ``condition`` until true; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def stop_process(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Ask a server to stop with ``sig``; kill it if it has not exited after ``timeout`` s."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Broker:
    """One mosquitto process; ``extra`` lines are added to its config (TLS, passwords)."""

    def __init__(self, directory: Path, extra: Sequence[str] = (), port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.extra = list(extra)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "mosquitto.log"
        directory.mkdir(parents=True, exist_ok=True)

    def _write_config(self) -> Path:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.directory}/",
            # A persistent subscriber that falls behind must not lose messages to a queue limit.
            "max_queued_messages 0",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"log_dest file {self.log_path}",
            *self.extra,
        ]
        if not any(line.startswith(("allow_anonymous", "password_file")) for line in lines):
            lines.append("allow_anonymous true")
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to "mosquitto", who cannot write here
        path = self.directory / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        config = self._write_config()
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._listening, START_TIMEOUT_SECONDS, f"mosquitto on port {self.port}")

    def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"mosquitto exited at start: {self.log()}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        """Stop gracefully (SIGTERM): the broker saves its persistence file first."""
        if self.process is None:
            return
        stop_process(self.process, signal.SIGTERM, STOP_TIMEOUT_SECONDS)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


class Subscriber:
    """Headquarters' side in tests: a persistent session (fixed id, clean_session=False) that
    collects every message under ``topic_filter`` with QoS 1, reconnecting when the broker
    comes back."""

    def __init__(self, broker: Broker, topic_filter: str = "instore/#", client_id: str = "hq"):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool]] = []  # (topic, payload, retained)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(topic_filter, qos=1)
        self.event_ids: list[int] = []  # the id of every event message, repeats included
        self.client.on_message = self._received
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _received(self, client: Any, userdata: Any, message: Any) -> None:
        self.messages.append((message.topic, message.payload, bool(message.retain)))
        if "/events/" in message.topic:
            self.event_ids.append(json.loads(message.payload)["id"])

    def unique_events(self) -> int:
        return len(set(self.event_ids))

    def payloads(self, suffix: str) -> list[bytes]:
        return [payload for topic, payload, _ in list(self.messages) if topic.endswith(suffix)]

    def events(self) -> list[dict[str, Any]]:
        return [
            json.loads(payload) for topic, payload, _ in list(self.messages) if "/events/" in topic
        ]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_certificates(directory: Path, client_name: str) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    directory.mkdir(parents=True, exist_ok=True)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("instore test CA"))
        .issuer_name(name("instore test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(common_name: str, usage: x509.ObjectIdentifier, server: bool) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        return key, builder.sign(ca_key, hashes.SHA256())

    paths = {"ca": directory / "ca.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role, common_name, usage in (
        ("server", "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", client_name, ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key, cert = issue(common_name, usage, role == "server")
        paths[f"{role}_cert"] = directory / f"{role}.pem"
        paths[f"{role}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{role}_key"] = write_key(key, directory / f"{role}.key")
    return paths
