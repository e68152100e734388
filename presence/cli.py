"""``instore presence …``: the daemon, pcap replay and analysis, and zone calibration."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import timedelta
from typing import Any

import click

from instore import hookimpl
from instore.cli_support import Context, fail, pass_ctx
from instore.plugins import pm


def _tracker_for(ctx: Context, db: Any, clock: Any = None) -> Any:
    from presence.estimate import Estimator, KnnLocator, load_fingerprints
    from presence.track import Tracker, TrackerSettings
    from presence.zones import load_floorplan

    presence = ctx.config["presence"]
    plan = load_floorplan(db)
    fingerprints = load_fingerprints(db)
    estimator = Estimator(plan, locator=KnnLocator(fingerprints) if fingerprints else None)
    settings = TrackerSettings(
        dwell_seconds=presence["dwell_seconds"],
        zone_exit_timeout=presence["zone_exit_seconds"],
        store_exit_timeout=presence["store_exit_seconds"],
    )
    return Tracker(db, plan, estimator=estimator, settings=settings, clock=clock)


def _run_daemon(ctx: Context, sources: list[Any], until_sources_end: bool = False) -> Any:
    from presence.daemon import PresenceDaemon
    from presence.identity import Identifier

    db = ctx.db()
    # A simulation running faster than real time brings its own clock, so dwell and exit
    # timeouts pass at the simulation's pace.
    sped_up = [s for s in sources if s.name == "sim" and getattr(s, "speed", 1.0) != 1.0]
    tracker = _tracker_for(ctx, db, sped_up[0].clock if sped_up else None)
    identifier = Identifier(db)
    identifier.token_resolvers = [
        source.token_resolver for source in sources if getattr(source, "token_resolver", None)
    ]
    presence = ctx.config["presence"]
    daemon = PresenceDaemon(
        db,
        sources,
        identifier,
        tracker,
        presence["sighting_seconds"],
        presence["retention_days"],
    )

    async def main() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        return await daemon.run(stop, stop_when_sources_end=until_sources_end)

    return asyncio.run(main())


@click.group()
def presence() -> None:
    """Presence: WiFi and BLE sightings → zones → enter / dwell / exit events."""


@presence.command("run")
@click.option(
    "--source",
    "source_names",
    multiple=True,
    help="Source to run (wifi, ble, sim, replay); repeatable. Default: [presence] sources.",
)
@pass_ctx
def presence_run(ctx: Context, source_names: tuple[str, ...]) -> None:
    """Run the presence daemon (CAP_NET_RAW for wifi; BlueZ on D-Bus for ble).

    A source that fails is retried with back-off while the others keep running. Under systemd
    it reports READY=1 and feeds the watchdog.
    """
    names = list(source_names) or list(ctx.config["presence"]["sources"])
    if not names:
        fail('no presence sources: set [presence] sources = ["wifi", "ble"] or pass --source sim')
    sources = []
    for name in names:
        try:
            source = pm.hook.presence_source(name=name, config=ctx.config)
        except (ValueError, RuntimeError) as exc:
            fail(f"presence source {name!r}: {exc}")
        if source is None:
            fail(f"unknown presence source {name!r} (built in: wifi, ble, sim, replay)")
        sources.append(source)
    _run_daemon(ctx, sources)


@presence.command("replay")
@click.argument("pcap", type=click.Path(dir_okay=False))
@click.option(
    "--speed",
    default="max",
    show_default=True,
    help="'max' for as fast as possible, or a multiple of the recorded pace (1 = real time).",
)
@click.option("--sensor", "sensor_id", help="Sensor that made the capture ([presence] sensor_id).")
@pass_ctx
def presence_replay(ctx: Context, pcap: str, speed: str, sensor_id: str | None) -> None:
    """Feed a recorded capture through the whole pipeline, writing zone events as live would."""
    from presence.pcap import CaptureReader, PcapError
    from presence.sources.builtin import replay_speed
    from presence.sources.replay import PcapReplaySource

    try:
        pace = replay_speed(speed)
        with CaptureReader(pcap):
            pass  # a missing or non-pcap file is refused here, with its reason
    except (ValueError, PcapError) as exc:
        fail(str(exc))
    source = PcapReplaySource(
        pcap, sensor_id=sensor_id or ctx.config["presence"]["sensor_id"], speed=pace
    )
    started = time.monotonic()
    stats = _run_daemon(ctx, [source], until_sources_end=True)
    click.echo(
        f"replayed {stats.observations} observations in {time.monotonic() - started:.1f} s "
        f"({stats.footfall_only} footfall-only)"
    )


@presence.command("analyze")
@click.argument("pcap", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
def presence_analyze(pcap: str, as_json: bool) -> None:
    """Count frames, probe requests, addresses and estimated devices in a capture."""
    from presence.analyze import analyze_pcap
    from presence.pcap import PcapError

    try:
        report = analyze_pcap(pcap)
    except PcapError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(report))
        return
    for key, value in report.items():
        click.echo(f"{key:<22} {value}")


@presence.command("calibrate")
@click.argument("zone")
@click.option("--member", required=True, help="Email or loyalty number of the phone's owner.")
@click.option("--seconds", default=60, show_default=True, help="How far back to take sightings.")
@pass_ctx
def presence_calibrate(ctx: Context, zone: str, member: str, seconds: int) -> None:
    """Record where ZONE's radio fingerprint is, from a member's phone standing in it.

    Sign in to the WiFi with the phone (location consent on), stand in the zone for a minute
    while the daemon runs, then run this. Repeat per zone; the daemon then locates phones by
    their nearest recorded fingerprints (kNN) instead of by the nearest sensor alone.
    """
    from instore import members
    from instore.clock import to_iso, utcnow
    from presence.estimate import record_calibration
    from presence.zones import load_floorplan

    db = ctx.db()
    owner = members.find_by_identifier(db, member)
    if owner is None:
        fail(f"no member {member!r}")
    plan = load_floorplan(db)
    found = plan.zone_named(zone)
    if found is None:
        names = ", ".join(sorted(z.name for z in plan.zones.values())) or "none yet"
        fail(f"no zone {zone!r} (zones: {names})")
    since = to_iso(utcnow() - timedelta(seconds=seconds))
    vectors: dict[str, dict[str, float]] = {}
    for ts, sensor_id, rssi in db.conn.execute(
        "SELECT ts, sensor_id, rssi FROM sightings"
        " WHERE device = ? AND ts >= ? AND rssi IS NOT NULL",
        (f"m:{owner.id}", since),
    ):
        vectors.setdefault(ts, {})[sensor_id] = rssi
    if not vectors:
        fail(
            f"no sightings of {member}'s phone in the last {seconds} s: is the daemon running, "
            "is the phone signed in to the WiFi, and is location consent on?"
        )
    count = record_calibration(db, found.id, list(vectors.values()))
    click.echo(f"recorded {count} fingerprint sample(s) for {found.name}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``instore presence …``"""
    cli.add_command(presence)
