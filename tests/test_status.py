"""``instore status``: services, queue depths, last event, last uplink, sensors and phones online,
read from a database the real gatekeeper and offers worker have worked on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from instore import events, members, sessions
from instore.cli import main
from instore.config import Config
from instore.status import collect_status, parse_systemctl_show, render_status
from presence.floorplan_demo import seed_demo_floorplan

# `systemctl show --property=LoadState,ActiveState,SubState,ActiveEnterTimestamp UNIT` as
# systemd 252 prints it (this machine has no systemd as PID 1 to ask).
SHOW_RUNNING = """LoadState=loaded
ActiveState=active
SubState=running
ActiveEnterTimestamp=Sat 2026-11-28 09:00:03 CET
"""
SHOW_NOT_INSTALLED = """LoadState=not-found
ActiveState=inactive
SubState=dead
ActiveEnterTimestamp=
"""


def instore(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``instore`` command in a subprocess, on this test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSTORE_")}
    env.update(INSTORE_DATABASE_PATH=str(config.database_path), INSTORE_CONFIG="")
    return subprocess.run(
        [sys.executable, "-m", "instore", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def store(db: sqlite_utils.Database, config: Config) -> sqlite_utils.Database:
    """A store after some activity: a phone online, zone events, the gatekeeper and the offers
    worker run once (the real commands, in this process), and the uplink behind."""
    seed_demo_floorplan(db)
    ana = members.create_member(db, display_name="Ana", password="long enough", email="a@x.es")
    sessions.authorize_client(
        db, mac="02:aa:bb:cc:dd:ee", ip="10.0.0.7", member_id=ana.id, hours=8, idle_minutes=60
    )
    db.conn.execute("UPDATE sensors SET last_seen_at = '2026-11-28T09:00:00Z'")
    events.append(db, "portal.login", {"member_id": ana.id})
    events.append(db, "zone_enter", {"member_id": ana.id, "zone": "Shoes"})
    env = {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}
    runner = CliRunner()
    gatekeeper = runner.invoke(main, ["gatekeeper", "--once"], env=env)
    assert gatekeeper.exit_code == 1, gatekeeper.output  # 1: it changed something (added Ana)
    assert runner.invoke(main, ["offers", "run", "--once"], env=env).exit_code == 0
    events.advance(db, "uplink", 1)
    events.append(db, "zone_exit", {"member_id": ana.id, "zone": "Shoes"})
    return db


def test_queue_depths_count_what_each_consumer_reads(store: sqlite_utils.Database) -> None:
    report = collect_status(store, {"offers": ("zone_enter", "portal.login")}, lambda unit: None)
    queues = {q.consumer: q for q in report.queues}
    # The worker read everything of its kinds; the zone exit after it is not its business.
    assert queues["offers"].behind == 0 and queues["offers"].over == "events"
    # The uplink reads every kind: all after event 1 (the session start) are waiting.
    waiting = store.conn.execute("SELECT COUNT(*) FROM events WHERE id > 1").fetchone()[0]
    assert waiting == 3 and queues["uplink"].behind == waiting
    assert report.last_uplink == {
        "position": 1,
        "published_at": queues["uplink"].updated_at,
        "behind": waiting,
    }
    events.append(store, "portal.login", {"member_id": 1})
    again = collect_status(store, {"offers": ("zone_enter", "portal.login")}, lambda unit: None)
    assert {q.consumer: q.behind for q in again.queues}["offers"] == 1


def test_services_last_event_sensors_and_phones(store: sqlite_utils.Database) -> None:
    report = collect_status(store, {}, lambda unit: None)
    services = {s.name: s for s in report.services}
    assert list(services) == ["portal", "gatekeeper", "presence", "offers", "uplink"]
    assert all(s.state == "no systemd" for s in services.values())
    assert "1 clients allowed" in services["gatekeeper"].activity
    assert services["portal"].activity.startswith("last sign-in 20")
    assert "sensor last heard 2026-11-28T09:00:00Z" in services["presence"].activity
    assert report.last_event is not None and report.last_event["kind"] == "zone_exit"
    assert report.phones_online == 1
    assert report.sensors and all(s["last_seen_at"] for s in report.sensors)
    assert report.schema == "current"


def test_systemd_states_when_systemd_runs(store: sqlite_utils.Database) -> None:
    shown = {
        "instore-portal.service": parse_systemctl_show(SHOW_RUNNING),
        "instore-uplink.service": parse_systemctl_show(SHOW_NOT_INSTALLED),
    }
    report = collect_status(store, {}, lambda unit: shown.get(unit, {"ActiveState": "failed"}))
    states = {s.name: s for s in report.services}
    assert states["portal"].state == "active (running)"
    assert states["portal"].since == "Sat 2026-11-28 09:00:03 CET"
    assert states["uplink"].state == "not installed"
    assert states["offers"].state == "failed"


def test_nothing_personal_in_the_status(store: sqlite_utils.Database) -> None:
    text = json.dumps(collect_status(store, {}, lambda unit: None).as_dict())
    for secret in ("Ana", "a@x.es", "02:aa:bb:cc:dd:ee", "10.0.0.7", "Shoes"):
        assert secret not in text


def test_status_command_table_and_json(store: sqlite_utils.Database, config: Config) -> None:
    table = instore(config, "status")
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("SERVICE")
    assert "phones online: 1" in table.stdout and "last event:    #" in table.stdout
    assert "zone_exit" in table.stdout and "last uplink:" in table.stdout
    answer = instore(config, "status", "--json")
    report = json.loads(answer.stdout)
    assert {q["consumer"]: q["behind"] for q in report["queues"]}["offers"] == 0
    assert report["phones_online"] == 1


def test_status_reads_without_creating_or_migrating(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "instore.db"
    env = {"INSTORE_DATABASE_PATH": str(missing), "INSTORE_CONFIG": ""}
    result = CliRunner().invoke(main, ["status"], env=env)
    assert result.exit_code == 2
    assert "cannot read the database: no database at" in result.output
    assert not missing.exists()


def test_render_without_any_activity(db: sqlite_utils.Database) -> None:
    text = render_status(collect_status(db, {}, lambda unit: None))
    assert "(no consumer has read the outbox yet)" in text
    assert "last event:    none yet" in text and "last uplink:   never" in text
