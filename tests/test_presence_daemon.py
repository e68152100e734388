"""The daemon end to end on the simulator: sources → identity → tracker → outbox and sightings."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import sqlite_utils

from instore import events, members
from instore.config import Config
from presence.daemon import PresenceDaemon
from presence.floorplan_demo import seed_demo_floorplan
from presence.identity import Identifier
from presence.observation import WIFI_PROBE, Observation
from presence.sources.sim import create_sim_source
from presence.track import Tracker
from presence.zones import load_floorplan

RUN_SECONDS = 4.0  # enough simulated minutes at 60x for shoppers to enter, dwell and leave
SIM_SPEED = 60.0


class Flaky:
    """A source that fails twice, then yields one observation and ends (like a replay)."""

    name = "flaky"

    def __init__(self) -> None:
        self.starts = 0

    async def stream(self) -> AsyncIterator[Observation]:
        self.starts += 1
        if self.starts <= 2:
            raise OSError("interface gone")
        yield Observation(time.time(), "wifi-1", WIFI_PROBE, "a4:5e:60:00:00:01", -50, {})


def run_daemon(db: sqlite_utils.Database, sources: list, tracker: Tracker, seconds: float):  # type: ignore[no-untyped-def]
    daemon = PresenceDaemon(db, sources, Identifier(db), tracker, 10, 30)

    async def main():  # type: ignore[no-untyped-def]
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        return await daemon.run(stop)

    return asyncio.run(main())


def test_simulated_store_produces_zone_events(db: sqlite_utils.Database) -> None:
    ana = members.create_member(db, display_name="Ana", password="long enough", email="a@x.es")
    members.record_consents(db, ana.id, {"location": True}, "v1")
    members.link_device(db, "02:00:00:00:aa:01", ana.id)
    seed_demo_floorplan(db)
    source = create_sim_source(
        db, shoppers=12, speed=SIM_SPEED, seed=3, member_macs={"02:00:00:00:aa:01": ana.id}
    )
    tracker = Tracker(db, load_floorplan(db), clock=source.clock)
    stats = run_daemon(db, [source], tracker, RUN_SECONDS)
    assert stats.observations > 100
    kinds = {row[0] for row in db.conn.execute("SELECT kind FROM events")}
    assert {"store_enter", "zone_enter", "zone_dwell"} <= kinds
    member_events = db.conn.execute(
        "SELECT COUNT(*) FROM events WHERE json_extract(payload, '$.member_id') = ?", (ana.id,)
    ).fetchone()[0]
    assert member_events > 0
    # Sightings are stored by device key; no raw MAC of anyone reaches the disk.
    devices = [row[0] for row in db.conn.execute("SELECT DISTINCT device FROM sightings")]
    assert devices and all(d.startswith(("m:", "h:")) for d in devices)
    dump = "\n".join(db.conn.iterdump())
    assert not [line for line in dump.splitlines() if "sightings" in line and ":aa:01" in line]


def test_a_failing_source_is_retried(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from presence import daemon as daemon_module

    monkeypatch.setattr(daemon_module, "FIRST_RETRY_SECONDS", 0.01)
    seed_demo_floorplan(db)
    flaky = Flaky()
    stats = run_daemon(db, [flaky], Tracker(db, load_floorplan(db)), 1.5)
    assert flaky.starts == 3
    assert stats.sources["flaky"].failures == 2
    assert "interface gone" in stats.sources["flaky"].last_error
    assert stats.observations == 1


def test_presence_run_cli_stops_cleanly(config: Config, tmp_path: Path) -> None:
    """`instore presence run --source sim` as systemd would run it, stopped with SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSTORE_")}
    env.update(
        INSTORE_DATABASE_PATH=str(config.database_path),
        INSTORE_CONFIG="",
        INSTORE_PRESENCE_SIM_SPEED="30",
    )
    from instore.db import open_database

    seed_demo_floorplan(open_database(config.database_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "instore", "presence", "run", "--source", "sim"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    db = open_database(config.database_path)
    deadline = time.monotonic() + 30
    entered = 0
    while not entered and time.monotonic() < deadline and process.poll() is None:
        entered = db.conn.execute(
            "SELECT COUNT(*) FROM events WHERE kind = 'store_enter'"
        ).fetchone()[0]
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    assert entered, output
    assert process.returncode == 0, output
    assert "presence running" in output


def test_presence_run_without_sources_is_exit_2(config: Config) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSTORE_")}
    env.update(INSTORE_DATABASE_PATH=str(config.database_path), INSTORE_CONFIG="")
    result = subprocess.run(
        [sys.executable, "-m", "instore", "presence", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no presence sources" in result.stderr


def test_calibrate_records_a_zone_fingerprint(config: Config, db: sqlite_utils.Database) -> None:
    """Staff stand in a zone with a signed-in phone; calibrate turns its sightings into samples."""
    from click.testing import CliRunner

    from instore.cli import main
    from instore.clock import to_iso, utcnow
    from presence.estimate import load_fingerprints

    ana = members.create_member(db, display_name="Ana", password="long enough", email="a@x.es")
    plan = seed_demo_floorplan(db)
    shoes = plan.zone_named("Shoes")
    assert shoes is not None
    now = to_iso(utcnow())
    sensors = list(plan.sensors)[:3]
    db.conn.executemany(
        "INSERT INTO sightings (ts, device, sensor_id, rssi, samples) VALUES (?, ?, ?, ?, 5)",
        [(now, f"m:{ana.id}", sensor, -50.0 - 5 * n) for n, sensor in enumerate(sensors)],
    )
    env = {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}
    result = CliRunner().invoke(
        main, ["presence", "calibrate", "shoes", "--member", "a@x.es"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "recorded 1 fingerprint sample(s) for Shoes" in result.output
    assert len(load_fingerprints(db)) == 1
    missing = CliRunner().invoke(
        main, ["presence", "calibrate", "Garden", "--member", "a@x.es"], env=env
    )
    assert missing.exit_code == 2 and "no zone 'Garden'" in missing.output


def test_replay_counts_devices_not_macs_and_stores_no_mac(
    config: Config, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """`instore presence replay` of a phone rotating 20 MACs: hourly footfall sees ~1 phone."""
    from click.testing import CliRunner

    from instore.cli import main
    from tests.test_presence_analyze import rotating_device_frames
    from tests.wifi_captures import write_pcap

    frames, times = rotating_device_frames()
    capture = write_pcap(tmp_path / "rotating.pcap", frames, times=times)
    seed_demo_floorplan(db)
    env = {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}
    result = CliRunner().invoke(main, ["presence", "replay", str(capture)], env=env)
    assert result.exit_code == 0, result.output
    assert "replayed 140 observations" in result.output
    [(devices, addresses, randomized)] = db.conn.execute(
        "SELECT devices, addresses, randomized_addresses FROM footfall"
    ).fetchall()
    assert addresses == 23 and randomized == 22
    assert 4 <= devices <= 5  # the rotating phone as 1-2, plus the three others
    dump = "\n".join(db.conn.iterdump()).lower()
    assert "a0:1b:7c" not in dump and "44:55" not in dump
    bad = CliRunner().invoke(main, ["presence", "replay", str(tmp_path / "nope.pcap")], env=env)
    assert bad.exit_code == 2 and "no such file" in bad.output


def test_ble_source_from_the_hook_resolves_consenting_members(
    config: Config, db: sqlite_utils.Database
) -> None:
    """The hook builds the BLE source with a token resolver that follows consent changes."""
    from instore.plugins import pm
    from presence.ble import loyalty_manufacturer_data, member_token_key
    from presence.plugins import token_key

    ana = members.create_member(db, display_name="Ana", password="long enough", email="a@x.es")
    members.record_consents(db, ana.id, {"location": True}, "v1")
    source = pm.hook.presence_source(name="ble", config=config)
    assert source is not None and source.name == "ble"
    resolver = source.token_resolver
    now = time.time()
    key = member_token_key(token_key(config), str(ana.id))
    advert = loyalty_manufacturer_data(key, str(ana.id), now)
    assert resolver.resolve(advert[1:], now) == str(ana.id)
    identifier = Identifier(db)
    identifier.token_resolvers = [resolver]
    members.record_consents(db, ana.id, {"location": False}, "v1")  # withdrawn
    identifier.refresh_members()
    assert resolver.resolve(advert[1:], now) is None


def test_daemon_keeps_the_dwell_rollup_current_one_bounded_step_at_a_time(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analytics rollup advances in the background, never in one long stall of the ticker."""
    from presence import daemon as daemon_module
    from presence import reports

    seed_demo_floorplan(db)
    shoes = db.conn.execute("SELECT id FROM zones WHERE name = 'Shoes'").fetchone()[0]
    for n in range(5):
        for kind, ts in (("zone_enter", "10:00:00"), ("zone_exit", "10:02:00")):
            payload = {"device": f"h:{n}", "zone_id": shoes, "ts": f"2026-06-10T{ts}Z"}
            events.append(db, kind, payload)
    monkeypatch.setattr(daemon_module, "catch_up_dwell", partial(reports.catch_up_dwell, batch=4))
    daemon = PresenceDaemon(db, [], Identifier(db), Tracker(db, load_floorplan(db)), 10, 30)
    assert [daemon.roll_up_dwell() for _ in range(4)] == [4, 4, 2, 0]
    assert events.cursor_position(db, reports.DWELL_CONSUMER) == 10
