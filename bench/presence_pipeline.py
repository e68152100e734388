"""Presence zone logic: sighting → zone event latency, and memory with 5,000 devices tracked.

Two figures from issue 4, with the real estimator, tracker, SQLite outbox and sim source:

1. **Latency** (goal p95 < 200 ms): the ``sim`` source streams a shop of simulated shoppers in
   an asyncio loop, as the daemon runs sources; each observation is stamped when the source
   yields it, queued, identified, estimated and tracked; for every ``store_enter`` and
   ``zone_enter`` the time from that stamp to the committed outbox row is one sample. A tick
   task runs once a second as in the daemon, so samples include waiting behind timeouts and
   state flushes. Identity is a **stand-in** (an HMAC of the MAC under a fixed key, no database
   reads) so the figure is this part's; the real ``presence.identity`` adds its own cost.
   Also printed: how long after a shopper really walked into a zone its ``zone_enter`` came, in
   simulated seconds. That is the estimator's hysteresis working (margin and hold time), not
   processing.
2. **RSS** (goal < 80 MB): a fresh subprocess imports the pipeline, opens a fresh database, then
   feeds 5,000 phones standing around the demo shop, each heard by every sensor four times, until
   all 5,000 are tracked; it reports VmRSS / VmHWM from ``/proc/self/status`` and ``ru_maxrss``.
   Further runs first import bleak and scapy (some layers, then all), as radio sources may.

Prints figures, asserts nothing. Run from the repository root:
``.venv/bin/python bench/presence_pipeline.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import importlib.util
import json
import platform
import random
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from instore.db import open_database
from presence import track
from presence.floorplan_demo import seed_demo_floorplan
from presence.observation import Observation
from presence.sim import readings
from presence.sources.sim import SimSource, create_sim_source
from presence.track import Tracker
from presence.zones import FloorPlan

ENTER_KINDS = {track.STORE_ENTER, track.ZONE_ENTER}
# What the daemon's radio sources may import on top of the pipeline: bleak for BLE, scapy's 802.11
# layers for capture and pcap, or all of scapy (``scapy.all`` loads every layer it knows).
RSS_IMPORT_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("bleak",),
    ("scapy.layers.dot11", "bleak"),
    ("scapy.all", "bleak"),
)
STANDIN_KEY = b"bench stand-in for presence.identity"


def standin_device(mac: str) -> str:
    """Stand-in for ``presence.identity``: the same ``h:`` shape, no salts, no database."""
    return "h:" + hmac.new(STANDIN_KEY, mac.encode(), hashlib.sha256).hexdigest()[:16]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# -- 1. latency ----------------------------------------------------------------------------------


async def latency_run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db = open_database(workdir / "latency.db")
    seed_demo_floorplan(db)
    source = create_sim_source(db, shoppers=args.shoppers, speed=args.speed, seed=args.seed)
    tracker = Tracker(db, source.simulation.plan, clock=source.clock)
    queue: asyncio.Queue[tuple[Observation, float]] = asyncio.Queue()
    samples: list[float] = []
    ticks: list[float] = []
    enters: list[tuple[str, int, float]] = []  # device, zone id, simulated time
    macs: dict[str, str] = {}
    observed = 0

    async def produce() -> None:
        async for obs in source.stream():
            queue.put_nowait((obs, time.perf_counter()))

    async def consume() -> None:
        nonlocal observed
        while True:
            obs, arrived = await queue.get()
            device = standin_device(obs.address)
            ids = tracker.observe(obs, device, None)
            done = time.perf_counter()
            observed += 1
            if ids:
                macs[device] = obs.address
                # One observation's events come from one transaction: consecutive ids.
                for kind, payload in db.conn.execute(
                    "SELECT kind, payload FROM events WHERE id BETWEEN ? AND ?", (ids[0], ids[-1])
                ):
                    if kind in ENTER_KINDS:
                        samples.append(done - arrived)
                    if kind == track.ZONE_ENTER:
                        sim_t = obs.ts - source.simulation.start_wall
                        enters.append((device, json.loads(payload)["zone_id"], sim_t))

    async def tick() -> None:
        while True:
            await asyncio.sleep(1.0)
            began = time.perf_counter()
            tracker.tick()
            ticks.append(time.perf_counter() - began)

    tasks = [asyncio.create_task(job()) for job in (produce, consume, tick)]
    began = time.perf_counter()
    await asyncio.sleep(args.duration)
    elapsed = time.perf_counter() - began
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    delays, wrong = detection_delays(source, enters, macs)
    db.conn.close()
    return {
        "samples": samples,
        "ticks": ticks,
        "observations": observed,
        "elapsed": elapsed,
        "backlog": queue.qsize(),
        "tracked": tracker.tracked_count,
        "delays": delays,
        "wrong": wrong,
        "sim_seconds": source.simulation.time,
    }


def detection_delays(
    source: SimSource, enters: list[tuple[str, int, float]], macs: dict[str, str]
) -> tuple[list[float], int]:
    """For each zone_enter: simulated seconds since the shopper really entered that zone (the
    ground truth is their walk). ``wrong`` counts enters into a zone they were not in then."""
    plan = source.simulation.plan
    walks = {s.address: s.walk for s in source.simulation.shoppers}
    delays: list[float] = []
    wrong = 0

    def zone_at(walk: Any, t: float) -> int | None:
        position = walk.position(t)
        zone = plan.zone_at(*position) if position else None
        return zone.id if zone else None

    for device, zone_id, t in enters:
        walk = walks.get(macs.get(device, ""))
        if walk is None:
            continue  # that shopper has left and been replaced: no ground truth kept
        if zone_at(walk, t) != zone_id:
            wrong += 1
            continue
        since = t
        while since - 0.25 >= walk.start and zone_at(walk, since - 0.25) == zone_id:
            since -= 0.25
        delays.append(t - since)
    return delays, wrong


# -- 2. RSS in a fresh process -----------------------------------------------------------------


def vm_status() -> dict[str, float]:
    """VmRSS and VmHWM in MB from /proc/self/status."""
    figures = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0]) / 1024
    return figures


def rss_child(devices: int, seed: int, imports: list[str]) -> None:
    """Runs in the fresh subprocess; prints one JSON line."""
    for name in imports:
        __import__(name)
    workdir = Path(tempfile.mkdtemp(prefix="instore-bench-rss-"))
    db = open_database(workdir / "rss.db")
    plan: FloorPlan = seed_demo_floorplan(db)
    now = [0.0]
    tracker = Tracker(db, plan, clock=lambda: now[0])
    before = vm_status()
    rng = random.Random(seed)  # noqa: S311 - reproducible positions and noise
    positions = [(rng.uniform(0.5, 23.5), rng.uniform(0.5, 15.5)) for _ in range(devices)]
    keys = [
        standin_device(f"ac:de:48:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}")
        for i in range(devices)
    ]
    began = time.perf_counter()
    observed = 0
    for round_number in range(4):  # 4 transmissions, 1.5 s apart: tracked after the third
        for i, (position, key) in enumerate(zip(positions, keys, strict=True)):
            now[0] = round_number * 1.5 + i * (1.5 / devices)
            wall = 1_800_000_000.0 + now[0]
            for sensor_id, rssi in readings(plan, position, rng):
                tracker.observe(Observation(wall, sensor_id, "wifi_probe", "", rssi), key)
                observed += 1
    tracker.tick(now[0])
    tracker.flush(now[0])
    elapsed = time.perf_counter() - began
    del positions, keys  # the bench's own inputs, not the pipeline's state
    after = vm_status()
    print(
        json.dumps(
            {
                "devices": devices,
                "tracked": tracker.tracked_count,
                "sensor_filters": sum(len(t.estimate.sensors) for t in tracker.devices.values()),
                "observations": observed,
                "seconds": elapsed,
                "rss_before_mb": before["VmRSS"],
                "rss_mb": after["VmRSS"],
                "hwm_mb": after["VmHWM"],
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "imports": imports,
            }
        )
    )


def run_rss(args: argparse.Namespace, imports: tuple[str, ...]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--rss-child", str(args.devices), "--seed", str(args.seed)]
    if imports:
        command += ["--rss-imports", ",".join(imports)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"RSS child failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- report ------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def report_latency(args: argparse.Namespace, r: dict[str, Any]) -> None:
    samples, ticks = r["samples"], r["ticks"]
    print(
        f"\n1. sighting → zone event latency ({args.shoppers} shoppers, speed {args.speed}x, "
        f"{r['elapsed']:.0f} s wall = {r['sim_seconds']:.0f} s simulated)"
    )
    print(
        f"   observations processed  {r['observations']} ({r['observations'] / r['elapsed']:.0f}/s)"
        f", backlog at end {r['backlog']}, devices tracked at end {r['tracked']}"
    )
    if samples:
        print(f"   enter events measured   {len(samples)}")
        print(
            f"   latency p50 / p95 / p99 / max   {ms(percentile(samples, 0.5))} / "
            f"{ms(percentile(samples, 0.95))} / {ms(percentile(samples, 0.99))} / "
            f"{ms(max(samples))}   (goal p95 < 200 ms)"
        )
    else:
        print("   no enter events: run longer (--duration) or with more shoppers")
    if ticks:
        print(f"   tick() p50 / max        {ms(statistics.median(ticks))} / {ms(max(ticks))}")
    delays = r["delays"]
    if delays:
        print(
            f"   zone_enter after really entering (simulated s) p50 / p95: "
            f"{percentile(delays, 0.5):.1f} / {percentile(delays, 0.95):.1f}; "
            f"enters into a zone the shopper was not in at that moment: "
            f"{r['wrong']} of {len(delays) + r['wrong']}"
        )


def report_rss(rows: list[dict[str, Any]]) -> None:
    print("\n2. process memory with devices tracked (fresh subprocess each)")
    for row in rows:
        label = "pipeline only" if not row["imports"] else "+ import " + ", ".join(row["imports"])
        per_device = (row["rss_mb"] - row["rss_before_mb"]) * 1024 / max(1, row["tracked"])
        print(
            f"   {label:36} tracked {row['tracked']}/{row['devices']} "
            f"({row['sensor_filters']} sensor filters): VmRSS {row['rss_mb']:.1f} MB, "
            f"VmHWM {row['hwm_mb']:.1f} MB, ru_maxrss {row['maxrss_mb']:.1f} MB "
            f"(before devices {row['rss_before_mb']:.1f} MB; ~{per_device:.2f} KB/device)"
            f"   (goal < 80 MB)"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--shoppers", type=int, default=600, help="kept in the shop at once")
    parser.add_argument("--speed", type=float, default=4.0, help="simulated seconds per second")
    parser.add_argument("--duration", type=float, default=40.0, help="wall seconds of latency run")
    parser.add_argument("--devices", type=int, default=5000, help="devices for the RSS figure")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=("latency", "rss"))
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss-imports", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_child is not None:
        rss_child(args.rss_child, args.seed, [m for m in args.rss_imports.split(",") if m])
        return 0
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"presence pipeline bench: {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}, load average {load}"
    )
    if args.only in (None, "latency"):
        with tempfile.TemporaryDirectory(prefix="instore-bench-") as workdir:
            report_latency(args, asyncio.run(latency_run(args, Path(workdir))))
    if args.only in (None, "rss"):
        rows = [
            run_rss(args, imports) for imports in RSS_IMPORT_SETS if all(map(_importable, imports))
        ]
        report_rss(rows)
    print("\nreproduce: " + shlex.join([sys.executable, *sys.argv]))
    return 0


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module.split(".")[0]) is not None


if __name__ == "__main__":
    raise SystemExit(main())
