"""The chain uplink against a real Mosquitto on loopback: events out, messages in, TLS, auth.

Each test starts its own broker (tests/mosquitto.py) on a free port with its own directory. The
uplink runs in a thread here (the same ``Uplink.run`` the command runs); the subprocess, the kill
and the broker outage are in tests/test_uplink_zero_loss.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlite_utils
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from instore import events
from instore.cli import main
from instore.config import Config, ConfigError, load_config, shown_value
from instore.db import open_database
from instore.uplink import CONSUMER, Uplink, backlog
from instore.uplink_config import UplinkSettings
from tests.mosquitto import Broker, Subscriber, make_certificates, mosquitto_available, wait_for
from tests.test_uplink_inbox import TRAIL_SHOES

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed")

DEADLINE = 30.0  # seconds any one wait may take on a slow CI machine


def uplink_config(tmp_path: Path, broker: Broker, busy_ms: int = 5000, **extra: str) -> Config:
    environ = {
        "INSTORE_DATABASE_BUSY_TIMEOUT_MS": str(busy_ms),
        "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
        "INSTORE_UPLINK_ENABLED": "true",
        "INSTORE_UPLINK_HOST": "127.0.0.1",
        "INSTORE_UPLINK_PORT": str(broker.port),
        "INSTORE_UPLINK_TLS": "false",
        "INSTORE_UPLINK_RECONNECT_MAX_SECONDS": "1",
    }
    environ.update({f"INSTORE_UPLINK_{key.upper()}": value for key, value in extra.items()})
    return load_config(environ=environ)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = Broker(tmp_path / "broker")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def hq(broker: Broker) -> Iterator[Subscriber]:
    subscriber = Subscriber(broker)
    wait_for(lambda: subscriber.client.is_connected(), DEADLINE, "the HQ subscriber to connect")
    yield subscriber
    subscriber.close()


@contextmanager
def running_uplink(config: Config) -> Iterator[Uplink]:
    """``Uplink.run`` in a thread with its own connection, stopped (gracefully) on exit."""
    database = open_database(config.database_path, config["database"]["busy_timeout_ms"])
    uplink = Uplink(database, UplinkSettings.from_config(config))
    stopping = threading.Event()
    thread = threading.Thread(target=uplink.run, args=(stopping.is_set,), daemon=True)
    thread.start()
    try:
        yield uplink
    finally:
        stopping.set()
        thread.join(timeout=DEADLINE)
        uplink.db.conn.close()


def append_events(db: sqlite_utils.Database, count: int, kind: str = "zone_enter") -> list[int]:
    db.conn.execute("BEGIN")
    ids = [events.append(db, kind, {"n": n, "member_id": 7}) for n in range(count)]
    db.conn.execute("COMMIT")
    return ids


def acked(db: sqlite_utils.Database, last_id: int) -> bool:
    return events.cursor_position(db, CONSUMER) >= last_id


# -- events to headquarters ------------------------------------------------------------------


def test_every_event_reaches_headquarters_and_the_cursor_follows_the_acks(
    tmp_path: Path, broker: Broker, hq: Subscriber
) -> None:
    config = uplink_config(tmp_path, broker)
    db = open_database(config.database_path)
    ids = append_events(db, 500) + append_events(db, 3, kind="portal/login+#")
    with running_uplink(config):
        wait_for(lambda: acked(db, ids[-1]), DEADLINE, "the uplink's cursor to reach the end")
        wait_for(lambda: len(hq.events()) >= len(ids), DEADLINE, "HQ to receive every event")
        assert backlog(db) == 0
        wait_for(lambda: hq.payloads("/status") == [b"online"], DEADLINE, "status online")
    received = hq.events()
    assert sorted(event["id"] for event in received) == ids
    first = received[0]
    assert first == {
        "store": "S001",
        "id": ids[0],
        "ts": first["ts"],
        "kind": "zone_enter",
        "payload": {"n": 0, "member_id": 7},
    }
    topics = {topic for topic, _, _ in hq.messages if "/events/" in topic}
    # A kind with topic separators or wildcards stays one topic level.
    assert topics == {"instore/S001/events/zone_enter", "instore/S001/events/portal_login__"}
    wait_for(lambda: hq.payloads("/status")[-1:] == [b"offline"], DEADLINE, "status offline")


def test_the_cursor_waits_for_the_brokers_acknowledgement(
    tmp_path: Path, broker: Broker, hq: Subscriber
) -> None:
    config = uplink_config(tmp_path, broker)
    db = open_database(config.database_path)
    first = append_events(db, 10)
    with running_uplink(config) as uplink:
        wait_for(lambda: acked(db, first[-1]), DEADLINE, "the first events to be acknowledged")
        assert broker.process is not None
        broker.process.send_signal(signal.SIGSTOP)  # the broker is there but answers nothing
        try:
            more = append_events(db, 10)
            wait_for(lambda: uplink.published >= 20, DEADLINE, "the uplink to send the rest")
            assert events.cursor_position(db, CONSUMER) == first[-1]
        finally:
            broker.process.send_signal(signal.SIGCONT)
        wait_for(lambda: acked(db, more[-1]), DEADLINE, "the acknowledgements after SIGCONT")


def test_a_box_offline_keeps_its_events_and_sends_them_when_the_broker_comes(
    tmp_path: Path,
) -> None:
    broker = Broker(tmp_path / "broker")  # not started: headquarters is unreachable
    config = uplink_config(tmp_path, broker)
    db = open_database(config.database_path)
    with running_uplink(config) as uplink:
        ids = append_events(db, 200)
        wait_for(lambda: uplink.failures >= 2, DEADLINE, "two failed connection attempts")
        assert events.cursor_position(db, CONSUMER) == 0 and backlog(db) == 200
        broker.start()
        try:
            hq = Subscriber(broker)
            wait_for(lambda: acked(db, ids[-1]), DEADLINE, "the backlog to be acknowledged")
            wait_for(lambda: len(hq.events()) >= 200, DEADLINE, "HQ to receive the backlog")
            hq.close()
        finally:
            broker.stop()


# -- headquarters to the store ---------------------------------------------------------------


def publish(broker: Broker, topic: str, payload: bytes | str) -> None:
    """Publish one QoS 1 message as headquarters and wait for the broker's acknowledgement."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hq-publisher")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(timeout=DEADLINE)
    client.disconnect()
    client.loop_stop()


def applied(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    return db.conn.execute(
        "SELECT message_id, outcome FROM uplink_applied ORDER BY rowid"
    ).fetchall()


def test_headquarters_messages_are_applied_once_and_bad_ones_skipped(
    tmp_path: Path, broker: Broker, hq: Subscriber
) -> None:
    from presence.floorplan_demo import seed_demo_floorplan

    config = uplink_config(tmp_path, broker)
    db = open_database(config.database_path)
    seed_demo_floorplan(db)
    catalogue = json.dumps({"message_id": "cat-1", "offers": [TRAIL_SHOES]})
    with running_uplink(config) as uplink:
        wait_for(lambda: uplink.connected, DEADLINE, "the uplink to connect")
        publish(broker, "instore/S001/inbox/offers", b"{ not json")
        publish(broker, "instore/S001/inbox/offers", catalogue)
        publish(broker, "instore/S001/inbox/offers", catalogue)  # a redelivery, as it were
        publish(broker, "instore/S002/inbox/offers", catalogue.replace("cat-1", "cat-2"))
        wait_for(lambda: uplink.inbox_handled >= 3, DEADLINE, "three messages handled")
        assert applied(db) == [("cat-1", "applied")]
        assert db.conn.execute("SELECT COUNT(*) FROM offers").fetchone()[0] == 1
        # The outcome goes back to headquarters through the outbox.
        wait_for(
            lambda: any(event["kind"] == "uplink_message" for event in hq.events()),
            DEADLINE,
            "the outcome event at HQ",
        )


def test_a_message_sent_while_the_store_is_offline_arrives_when_it_connects(
    tmp_path: Path, broker: Broker
) -> None:
    config = uplink_config(tmp_path, broker)
    db = open_database(config.database_path)
    with running_uplink(config) as uplink:  # the broker learns the store's session
        wait_for(lambda: uplink.connected, DEADLINE, "the uplink to connect")
    message = {"message_id": "tiers-1", "members": [{"loyalty_number": "1", "tier": "gold"}]}
    publish(broker, "instore/S001/inbox/members", json.dumps(message))
    with running_uplink(config):
        wait_for(lambda: applied(db) == [("tiers-1", "applied")], DEADLINE, "the queued message")


def test_a_message_met_by_a_locked_database_comes_again(tmp_path: Path, broker: Broker) -> None:
    config = uplink_config(tmp_path, broker, busy_ms=100)
    db = open_database(config.database_path)
    message = {"message_id": "tiers-1", "members": [{"loyalty_number": "1", "tier": "gold"}]}
    with running_uplink(config) as uplink:
        wait_for(lambda: uplink.connected, DEADLINE, "the uplink to connect")
        db.conn.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            publish(broker, "instore/S001/inbox/members", json.dumps(message))
            wait_for(lambda: uplink.failures >= 1, DEADLINE, "the uplink to drop the message")
            assert uplink.inbox_handled == 0
        finally:
            db.conn.execute("COMMIT")
        wait_for(lambda: applied(db) == [("tiers-1", "applied")], DEADLINE, "the redelivery")


# -- TLS and authentication ------------------------------------------------------------------


def test_tls_with_a_client_certificate(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs", client_name="S001")
    broker = Broker(
        tmp_path / "broker",
        extra=[
            f"cafile {certs['ca']}",
            f"certfile {certs['server_cert']}",
            f"keyfile {certs['server_key']}",
            "require_certificate true",
            "use_identity_as_username true",
        ],
    )
    broker.start()
    try:
        with_cert = uplink_config(
            tmp_path,
            broker,
            tls="true",
            ca_file=str(certs["ca"]),
            cert_file=str(certs["client_cert"]),
            key_file=str(certs["client_key"]),
        )
        db = open_database(with_cert.database_path)
        ids = append_events(db, 50)
        without_cert = uplink_config(tmp_path, broker, tls="true", ca_file=str(certs["ca"]))
        with running_uplink(without_cert) as refused:
            wait_for(lambda: refused.failures >= 2, DEADLINE, "the broker to refuse no cert")
            assert not refused.connected
            assert events.cursor_position(db, CONSUMER) == 0
        with running_uplink(with_cert):
            wait_for(lambda: acked(db, ids[-1]), DEADLINE, "events acknowledged over TLS")
    finally:
        broker.stop()


def test_username_and_password(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    passwords.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "store-s001", "s3cret"], check=True)
    os.chmod(passwords, 0o600)
    broker = Broker(
        tmp_path / "broker", extra=[f"password_file {passwords}", "allow_anonymous false"]
    )
    broker.start()
    try:
        good = uplink_config(tmp_path, broker, username="store-s001", password="s3cret")
        bad = uplink_config(tmp_path, broker, username="store-s001", password="wrong")
        db = open_database(good.database_path)
        ids = append_events(db, 20)
        with running_uplink(bad) as refused:
            wait_for(lambda: refused.failures >= 2, DEADLINE, "the broker to refuse the password")
            assert refused.last_error == "the broker refused the connection: Not authorized"
            assert events.cursor_position(db, CONSUMER) == 0
        with running_uplink(good):
            wait_for(lambda: acked(db, ids[-1]), DEADLINE, "events acknowledged with a password")
    finally:
        broker.stop()


# -- configuration and the command -----------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"INSTORE_UPLINK_ENABLED": "true"}, "uplink.host: required"),
        ({"INSTORE_UPLINK_CERT_FILE": "/x.pem"}, "cert_file and uplink.key_file go together"),
        (
            {"INSTORE_UPLINK_TLS": "false", "INSTORE_UPLINK_CA_FILE": "/ca.pem"},
            "uplink.tls = false",
        ),
        ({"INSTORE_UPLINK_STORE_ID": "a/b"}, "uplink.store_id: must be one MQTT topic level"),
        ({"INSTORE_UPLINK_TOPIC_PREFIX": "chain/#"}, "uplink.topic_prefix"),
        ({"INSTORE_UPLINK_TOPIC_PREFIX": "chain//x"}, "uplink.topic_prefix"),
        ({"INSTORE_UPLINK_BATCH_SIZE": "0"}, "uplink.batch_size: must be 1 to 65535"),
        ({"INSTORE_UPLINK_PASSWORD": "pw"}, "set uplink.username too"),
        (
            {"INSTORE_UPLINK_RECONNECT_MIN_SECONDS": "90"},
            "reconnect_min_seconds: must be at least 1 and at most",
        ),
    ],
)
def test_bad_uplink_settings_name_the_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(environ=environ)


def test_the_password_is_never_shown() -> None:
    assert shown_value("password", "s3cret") == "(hidden)"


def test_store_id_and_topics_default_from_the_store() -> None:
    settings = UplinkSettings.from_config(
        load_config(environ={"INSTORE_STORE_ID": "M042", "INSTORE_UPLINK_TOPIC_PREFIX": "acme/in"})
    )
    assert settings.store_topic == "acme/in/M042"
    assert settings.client_id == "instore-M042"
    assert settings.inbox_filter == "acme/in/M042/inbox/#"
    assert settings.event_topic("zone_enter") == "acme/in/M042/events/zone_enter"


def invoke(tmp_path: Path, *args: str, **environ: str) -> Any:
    env = {"INSTORE_CONFIG": "", "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"), **environ}
    return CliRunner().invoke(main, ["uplink", *args], env=env)


def test_run_says_what_to_set_when_the_uplink_is_off(tmp_path: Path) -> None:
    result = invoke(tmp_path, "run")
    assert result.exit_code == 2
    assert "set [uplink] enabled = true and host" in result.output
    assert "Traceback" not in result.output


def test_run_names_a_missing_certificate(tmp_path: Path) -> None:
    result = invoke(
        tmp_path,
        "run",
        INSTORE_UPLINK_ENABLED="1",
        INSTORE_UPLINK_HOST="127.0.0.1",
        INSTORE_UPLINK_CA_FILE=str(tmp_path / "missing-ca.pem"),
    )
    assert result.exit_code == 2
    assert f"uplink.ca_file: {tmp_path / 'missing-ca.pem'} does not exist" in result.output


def test_status_reports_the_backlog_and_messages(tmp_path: Path) -> None:
    from instore.uplink_apply import handle_inbox_message

    database = open_database(tmp_path / "instore.db")
    append_events(database, 3)
    handle_inbox_message(database, "members", b'{"message_id": "t1", "members": []}')
    result = invoke(tmp_path, "status")
    assert result.exit_code == 0, result.output
    assert "enabled: no" in result.output
    assert "events waiting: 4" in result.output  # three, and the message's outcome event
    assert "t1  applied: 0 changed, 0 unchanged, 0 not members here" in result.output


# -- the systemd unit ------------------------------------------------------------------------

UNIT = Path(__file__).resolve().parents[1] / "deploy" / "systemd" / "instore-uplink.service"


def test_the_unit_is_unprivileged_and_hardened() -> None:
    lines = set(UNIT.read_text().splitlines())
    for line in (
        "Type=notify",
        "User=instore",
        "CapabilityBoundingSet=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/instore",
        "ExecStart=/opt/instore/current/venv/bin/instore uplink run",
        "RestartPreventExitStatus=2",
    ):
        assert line in lines, line
    assert not any(line.startswith("AmbientCapabilities") for line in lines)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # The release's instore does not exist on this machine; verify checks the command exists.
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text().replace(
            "/opt/instore/current/venv/bin/instore", shutil.which("true") or "/bin/true"
        )
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr
