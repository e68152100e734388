"""What both parts of the gatekeeper bench start from: clients, environment, seeded sessions.

Part 1 (``gatekeeper_from_empty.py``) and part 2 (``gatekeeper_one_more.py``) each seed a fresh
database with N live sessions and run instore processes in a namespace; they must do it the same
way, or their figures would not describe the same box.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

from benchlib import EMPTY_CONFIG, environ_without_instore

from hardware.gateway import ClientKey
from instore import sessions
from instore.clock import to_iso, utcnow
from instore.config import DEFAULTS, load_config
from instore.db import open_database, transaction

LAN = "br-guest"  # a bridge created in each namespace, so the rules name an interface that exists
PORTAL_BIND = "192.0.2.1:8080"  # TEST-NET-1: only rendered into the rules, never contacted
# Shared address space (RFC 6598); the addresses are only set keys, no packet is ever sent.
SEED_FIRST_IP = ipaddress.IPv4Address("100.64.0.1")
# Second octet of the locally administered MACs (first octet 02), one per group of clients.
SEED_MAC = 0x00
SESSION_HOURS = DEFAULTS["portal"]["session_hours"]
IDLE_MINUTES = DEFAULTS["portal"]["idle_minutes"]


def client_key(mac_group: int, first_ip: ipaddress.IPv4Address, index: int) -> ClientKey:
    """The index-th (MAC, IP) pair of a group: locally administered MAC, address from first_ip."""
    mac = f"02:{mac_group:02x}:00:{index >> 16 & 255:02x}:{index >> 8 & 255:02x}:{index & 255:02x}"
    return mac, str(first_ip + index)


def hermetic_env(tmp: Path) -> dict[str, str]:
    """The environment of every instore process here: nothing inherited, the nftables backend.

    Inherited ``INSTORE_*`` variables are dropped and ``INSTORE_CONFIG`` points at an empty file
    (the caller creates it), so neither a developer's settings nor /etc/instore/instore.toml
    change the run.
    """
    env = environ_without_instore()
    env.update(
        INSTORE_CONFIG=str(tmp / EMPTY_CONFIG),
        INSTORE_DATABASE_PATH=str(tmp / "instore.db"),
        INSTORE_GATEWAY_BACKEND="nftables",
        INSTORE_GATEWAY_NUDGE_SOCKET=str(tmp / "gatekeeper.sock"),
        INSTORE_PORTAL_BIND=PORTAL_BIND,
        INSTORE_HARDWARE_LAN_INTERFACE=LAN,
        INSTORE_LOGGING_LEVEL="INFO",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def prepare_dir(tmp: Path) -> dict[str, str]:
    """A fresh directory with the empty config file; the hermetic environment pointing at it."""
    tmp.mkdir(parents=True)
    (tmp / EMPTY_CONFIG).touch()
    return hermetic_env(tmp)


def seed_sessions(env: dict[str, str], count: int) -> set[ClientKey]:
    """``count`` live sessions in a fresh database, in one transaction; returns their keys.

    The rows are the ones ``sessions.authorize_client`` writes (normalized MAC and IP, start,
    expiry, idle deadline). Going through it 10,000 times would take a quarter of a minute of
    setup (a transaction and a scan for sessions to replace per call) and the gatekeeper reads
    nothing else; the samples of part 2 do go through it.
    """
    config = load_config(environ=env)
    db = open_database(config.database_path, config["database"]["busy_timeout_ms"])  # migrates
    now = utcnow()
    rows = []
    keys = set()
    for index in range(count):
        mac, ip = client_key(SEED_MAC, SEED_FIRST_IP, index)
        mac, ip = sessions.normalize_mac(mac), sessions.normalize_ip(ip)
        keys.add((mac, ip))
        rows.append(
            (
                mac,
                ip,
                to_iso(now),
                to_iso(now + timedelta(hours=SESSION_HOURS)),
                to_iso(now + timedelta(minutes=IDLE_MINUTES)),
            )
        )
    try:
        with transaction(db):
            db.conn.executemany(
                """INSERT INTO sessions (mac, ip, member_id, started_at, expires_at, idle_deadline)
                   VALUES (?, ?, NULL, ?, ?, ?)""",
                rows,
            )
    finally:
        db.conn.close()
    return keys
