"""The presence daemon: sources → identity → estimate → track → events, on one asyncio loop.

Each source runs as its own task. A source that fails (interface gone, BlueZ restarted) is
restarted with back-off and logged, while the others keep running. Observations meet in one
bounded queue; the consumer identifies each (members by consent, everyone else by a daily keyed
hash), feeds the tracker (which writes zone and store events to the outbox), and keeps averaged
sightings for footfall and calibration. A ticker drives timeouts, the systemd watchdog, member
refreshes and retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlite_utils

from instore.clock import to_iso
from instore.db import transaction
from instore.flags import FlagCache
from instore.systemd import notify, watchdog_interval
from presence.fingerprint import DeviceCounter
from presence.identity import Identifier
from presence.observation import WIFI_PROBE, Observation
from presence.reports import catch_up_dwell
from presence.sources import Source
from presence.track import Tracker

log = logging.getLogger(__name__)

QUEUE_LIMIT = 20_000  # ~4 s of a busy store's radios; beyond that, drop rather than grow
TICK_SECONDS = 1.0  # timeouts are whole seconds; dwell and exit need no finer clock
FIRST_RETRY_SECONDS = 1.0  # a source that failed is retried soon...
MAX_RETRY_SECONDS = 60.0  # ...then less and less often, so a missing radio does not spin
HEALTHY_RUN_SECONDS = 60.0  # a source that ran this long before failing starts back-off afresh
RETENTION_EVERY_SECONDS = 3600.0  # deleting old sightings once an hour is plenty
FOOTFALL_SECONDS = 3600  # footfall is reported per hour, as managers read it
# sensors.last_seen_at feeds the console's sensor health (ok within two minutes): stamping the
# sensors heard every 10 s is fresh enough and costs one small write, not one per frame.
SENSOR_SEEN_SECONDS = 10.0
# The analytics page's dwell rollup is kept current from here, a minute at a time, so the first
# page view on a busy box does not have to roll up weeks of events; one batch (20,000 events,
# a fraction of a second) per minute keeps the ticker and its watchdog on time.
DWELL_ROLLUP_SECONDS = 60.0
DWELL_ROLLUP_BATCHES = 1


@dataclass
class SourceState:
    """Counters for one source, for logs and `STATUS=`."""

    observations: int = 0
    failures: int = 0
    last_error: str = ""


@dataclass
class SightingBucket:
    rssi_sum: float = 0.0
    samples: int = 0


@dataclass
class Stats:
    observations: int = 0
    dropped: int = 0
    footfall_only: int = 0
    flagged_off: int = 0  # dropped because a source.<name> flag is off for them
    sources: dict[str, SourceState] = field(default_factory=dict)


class PresenceDaemon:
    """Runs sources into the tracker until ``stop`` is set."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        sources: list[Source],
        identifier: Identifier,
        tracker: Tracker,
        sighting_seconds: int,
        retention_days: int,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.sources = sources
        self.identifier = identifier
        self.tracker = tracker
        self.sighting_seconds = max(1, sighting_seconds)
        self.retention_days = retention_days
        self.wall_time = wall_time
        self.stats = Stats(sources={source.name: SourceState() for source in sources})
        self.buckets: dict[tuple[int, str, str], SightingBucket] = {}
        # Probe requests per hour, for a device count that sees through rotating MACs. Only
        # in memory: the addresses it holds never reach the disk, only the hour's counts.
        self.footfall: dict[int, DeviceCounter] = {}
        # Each observation travels with its source's name, for the source.<name> flags.
        self.queue: asyncio.Queue[tuple[Observation, str]] | None = None
        self.flags = FlagCache(db)
        self.sensors_heard: set[str] = set()  # since the last stamp of sensors.last_seen_at
        self.finished_sources = 0

    # -- sources -----------------------------------------------------------------------------
    async def _pump(self, source: Source) -> None:
        """Run one source forever, restarting it with back-off when it fails."""
        state = self.stats.sources[source.name]
        delay = FIRST_RETRY_SECONDS
        assert self.queue is not None
        while True:
            started = time.monotonic()
            try:
                async for obs in source.stream():
                    state.observations += 1
                    try:
                        self.queue.put_nowait((obs, source.name))
                    except asyncio.QueueFull:
                        self.stats.dropped += 1
                log.info("source finished", extra={"source": source.name})
                self.finished_sources += 1
                return  # a replay or a finite sim ends; radios never do
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of a radio is retried
                state.failures += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() - started > HEALTHY_RUN_SECONDS:
                    delay = FIRST_RETRY_SECONDS
                log.warning(
                    "source failed; retrying",
                    extra={"source": source.name, "error": state.last_error, "retry_in": delay},
                )
                await asyncio.sleep(delay)
                delay = min(MAX_RETRY_SECONDS, delay * 2)

    # -- the pipeline ------------------------------------------------------------------------
    def handle(self, obs: Observation, source: str = "") -> None:
        """Identify one observation, track it, and count it into its sighting bucket.

        A flag ``source.<source>``, when set, says whose observations from that source count:
        off, nobody's; a percentage, those members' only (a store trying a new radio).
        """
        identity = self.identifier.identify(obs)
        if source and not self.flags.is_enabled(
            f"source.{source}", identity.member_id, default=True
        ):
            self.stats.flagged_off += 1
            return
        self.stats.observations += 1
        self.sensors_heard.add(obs.sensor_id)
        if obs.kind == WIFI_PROBE and "fingerprint" in obs.payload and "seq" in obs.payload:
            hour = int(obs.ts // FOOTFALL_SECONDS)
            self.footfall.setdefault(hour, DeviceCounter()).add(
                obs.address, obs.ts, int(obs.payload["seq"]), str(obs.payload["fingerprint"])
            )
        bucket_key = (int(obs.ts // self.sighting_seconds), identity.device, obs.sensor_id)
        bucket = self.buckets.setdefault(bucket_key, SightingBucket())
        if obs.rssi is not None:
            bucket.rssi_sum += obs.rssi
        bucket.samples += 1
        if identity.footfall_only:
            self.stats.footfall_only += 1  # randomized MACs: footfall only, never into zones
            return
        self.tracker.observe(obs, identity.device, identity.member_id)

    def flush_sightings(self, now: float) -> int:
        """Write finished buckets as averaged rows; the current bucket keeps filling."""
        current = int(now // self.sighting_seconds)
        done = [key for key in self.buckets if key[0] < current]
        rows = []
        for key in done:
            bucket = self.buckets.pop(key)
            start = datetime.fromtimestamp(key[0] * self.sighting_seconds, UTC)
            rssi = bucket.rssi_sum / bucket.samples if bucket.samples else None
            rows.append((to_iso(start), key[1], key[2], rssi, bucket.samples))
        if rows:
            self.db.conn.executemany(
                "INSERT INTO sightings (ts, device, sensor_id, rssi, samples) VALUES (?,?,?,?,?)",
                rows,
            )
        return len(rows)

    def flush_footfall(self, now: float, include_current: bool = False) -> int:
        """Write the device estimate of each finished hour (and the current one on shutdown)."""
        current = int(now // FOOTFALL_SECONDS)
        written = 0
        for hour in sorted(self.footfall):
            if hour >= current and not include_current:
                continue
            counter = self.footfall[hour] if hour >= current else self.footfall.pop(hour)
            start = to_iso(datetime.fromtimestamp(hour * FOOTFALL_SECONDS, UTC))
            # A restart mid-hour starts a new count; keep the larger of the two, not the last.
            self.db.conn.execute(
                """INSERT INTO footfall (hour, devices, addresses, randomized_addresses)
                   VALUES (?, ?, ?, ?) ON CONFLICT(hour) DO UPDATE SET
                     devices = MAX(devices, excluded.devices),
                     addresses = MAX(addresses, excluded.addresses),
                     randomized_addresses = MAX(randomized_addresses,
                                                excluded.randomized_addresses)""",
                (start, counter.estimate(), counter.addresses, counter.randomized_addresses),
            )
            written += 1
        return written

    def flush_sensors_seen(self, now: float) -> int:
        """Stamp sensors.last_seen_at of the sensors heard since the last stamp; returns how many.

        The box's clock, not the observation's: health means "this sensor is delivering now",
        and a replayed capture's timestamps are from when it was recorded.
        """
        if not self.sensors_heard:
            return 0
        stamp = to_iso(datetime.fromtimestamp(now, UTC))
        rows = [(stamp, sensor_id) for sensor_id in sorted(self.sensors_heard)]
        with transaction(self.db):  # one commit for them all
            self.db.conn.executemany("UPDATE sensors SET last_seen_at = ? WHERE id = ?", rows)
        self.sensors_heard.clear()
        return len(rows)

    def roll_up_dwell(self) -> int:
        """Bring the dwell rollup up to date, one bounded step; a locked database waits a turn."""
        try:
            return catch_up_dwell(self.db, max_batches=DWELL_ROLLUP_BATCHES)
        except sqlite3.OperationalError as exc:
            log.warning("dwell rollup deferred", extra={"error": str(exc)})
            return 0

    def purge_old(self, now: float) -> int:
        cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=self.retention_days)
        deleted = self.db.conn.execute(
            "DELETE FROM sightings WHERE ts < ?", (to_iso(cutoff),)
        ).rowcount
        if deleted:
            log.info("old sightings deleted", extra={"rows": deleted})
        return int(deleted)

    async def _ticker(self, stop: asyncio.Event) -> None:
        watchdog = watchdog_interval()
        last_watchdog = 0.0
        last_purge = last_sensors_seen = last_rollup = float("-inf")
        while not stop.is_set():
            now = self.wall_time()
            self.tracker.tick()
            self.flush_sightings(now)
            self.flush_footfall(now)
            if time.monotonic() - last_sensors_seen >= SENSOR_SEEN_SECONDS:
                self.flush_sensors_seen(now)
                last_sensors_seen = time.monotonic()
            if time.monotonic() - last_rollup >= DWELL_ROLLUP_SECONDS:
                self.roll_up_dwell()
                last_rollup = time.monotonic()
            if time.monotonic() - last_purge > RETENTION_EVERY_SECONDS:
                self.purge_old(now)
                last_purge = time.monotonic()
            if watchdog is not None and time.monotonic() - last_watchdog >= watchdog:
                occupancy = self.tracker.occupancy()
                notify(f"WATCHDOG=1\nSTATUS=tracking {occupancy.in_store} in store")
                last_watchdog = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)

    async def run(self, stop: asyncio.Event, stop_when_sources_end: bool = False) -> Stats:
        """Run until ``stop`` is set (or, for replays, until every source has ended)."""
        self.queue = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.tracker.restore()
        self.identifier.refresh_members()
        pumps = [asyncio.create_task(self._pump(source)) for source in self.sources]
        ticker = asyncio.create_task(self._ticker(stop))
        notify("READY=1\nSTATUS=listening")
        log.info("presence running", extra={"sources": ",".join(s.name for s in self.sources)})
        try:
            while not stop.is_set():
                try:
                    obs, source = await asyncio.wait_for(self.queue.get(), TICK_SECONDS)
                except TimeoutError:
                    if stop_when_sources_end and self.finished_sources == len(self.sources):
                        break
                    continue
                self.handle(obs, source)
                # Drain what is already queued without a trip through the event loop each.
                while not self.queue.empty():
                    self.handle(*self.queue.get_nowait())
        finally:
            stop.set()
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, ticker, return_exceptions=True)
            self.tracker.tick()
            self.flush_sightings(self.wall_time() + self.sighting_seconds)
            self.flush_footfall(self.wall_time(), include_current=True)
            self.flush_sensors_seen(self.wall_time())
            notify("STOPPING=1")
        return self.stats
