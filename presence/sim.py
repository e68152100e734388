"""Synthetic shoppers walking a floor plan, heard by its sensors: the demo's and benches' radio.

Each shopper carries a phone that transmits every couple of seconds; every sensor that decodes the
frame reports an RSSI from log-distance path loss plus Gaussian scatter, so the estimator faces
the same noise it meets on a real floor. Shoppers follow a ``Walk`` (timed waypoints): scripted
ones for tests, generated ones (door → a few zones with a dwell in each → door) for the demo.
``walk_to`` reroutes a phone on request: the demo's "walk my phone to zone…" (presence.walks).

Everything random comes from one seeded ``random.Random``, so a seed reproduces a run exactly.
Time here is simulation seconds from 0; observations carry ``start_wall + t`` as their timestamp.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from presence.estimate import rssi_at_distance
from presence.floorplan_demo import DOOR
from presence.observation import WIFI_DATA, WIFI_PROBE, Observation
from presence.zones import FloorPlan, Point, Zone

# -- constants, each with its reason -----------------------------------------------------------
SIM_NOISE_DB = 4.0  # std dev of per-frame RSSI scatter of a phone (body shadowing, multipath)
# An awake phone with the loyalty app advertises, or a browsing phone probes, about this often.
TX_INTERVAL_S = 2.0
TX_JITTER = 0.25  # ± fraction of the interval, so phones do not transmit in lockstep
SENSOR_SENSITIVITY_DBM = -92  # weaker frames are not decoded by a typical WiFi/BLE radio
FRAME_LOSS = 0.1  # a sensor misses a frame now and then (collisions, channel hopping)
WALK_SPEED_MPS = (0.7, 1.3)  # browsing pace, slower than a commuter's 1.4 m/s
DWELL_S = (20.0, 180.0)  # time spent looking at one department
ZONES_PER_VISIT = (1, 4)
ARRIVAL_WINDOW_S = 60.0  # the first population arrives spread over this, not all at once
RETURN_GAP_S = 20.0  # mean gap before a departed shopper is replaced (exponential)
# A phone walked on request heads for the zone on purpose: the brisk end of browsing pace.
REQUESTED_WALK_SPEED_MPS = 1.3
# ...and stays there this long: past the dwell threshold (60 s in the shipped config) plus the
# estimator's ~10-20 s to settle, with time left to read the offer that arrives.
REQUESTED_HOLD_S = 180.0
# Where in the zone it stands: this far in from the zone's edges, so the nearest sensor is
# clearly the zone's own and the estimator does not hesitate between two zones.
REQUESTED_MARGIN_M = 2.0
ZONES_AFTER_REQUESTED_WALK = (0, 2)  # then it browses a little more (or not) and leaves
SIM_OUI = "ac:de:48"  # IEEE "private" OUI, globally administered so identity tracks it by hash
# Information elements of a typical probe request, for sources of WIFI_PROBE payloads.
_PROBE_IES: tuple[int, ...] = (0, 1, 50, 3, 45, 127, 191, 221)


@dataclass(frozen=True)
class Walk:
    """Timed waypoints ``[(t, (x, y)), …]``; the phone exists only between the first and last.

    Between waypoints the shopper moves in a straight line; two waypoints at the same place are a
    pause (a dwell).
    """

    waypoints: tuple[tuple[float, Point], ...]

    def __post_init__(self) -> None:
        times = [t for t, _ in self.waypoints]
        if not times or times != sorted(times):
            raise ValueError("a walk needs waypoints in time order")

    @classmethod
    def through(cls, waypoints: Sequence[tuple[float, Point]]) -> Walk:
        return cls(tuple((float(t), (float(p[0]), float(p[1]))) for t, p in waypoints))

    @classmethod
    def route(cls, start: float, stops: Sequence[tuple[Point, float]], speed: float = 1.0) -> Walk:
        """From timing-free stops ``[(position, pause_s), …]`` walked at ``speed`` m/s."""
        t = start
        points: list[tuple[float, Point]] = []
        for position, pause in stops:
            if points:
                t += math.dist(points[-1][1], position) / speed
            points.append((t, position))
            if pause > 0:
                t += pause
                points.append((t, position))
        return cls.through(points)

    @property
    def start(self) -> float:
        return self.waypoints[0][0]

    @property
    def end(self) -> float:
        return self.waypoints[-1][0]

    def position(self, t: float) -> Point | None:
        """Where the shopper is at ``t``, or None before they arrive and after they leave."""
        if t < self.start or t > self.end:
            return None
        for (t0, p0), (t1, p1) in zip(self.waypoints, self.waypoints[1:], strict=False):
            if t0 <= t <= t1:
                share = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return (p0[0] + (p1[0] - p0[0]) * share, p0[1] + (p1[1] - p0[1]) * share)
        return self.waypoints[-1][1]


@dataclass(slots=True)
class SimShopper:
    """A phone on a walk. ``member`` shoppers send data frames from a linked MAC, others probe.

    ``returns``: with a population, comes back after leaving (a phone added by a walk request
    does not, so requests do not grow the crowd). ``generation`` changes when the walk is
    replaced, which voids transmissions queued for the old one.
    """

    address: str
    walk: Walk
    member: bool = False
    seq: int = 0
    returns: bool = True
    generation: int = 0


def sim_mac(number: int) -> str:
    """The ``number``-th synthetic phone's MAC (globally administered, never randomized)."""
    return f"{SIM_OUI}:{(number >> 16) & 0xFF:02x}:{(number >> 8) & 0xFF:02x}:{number & 0xFF:02x}"


def random_point_in(zone: Zone, rng: random.Random, margin: float = 1.0) -> Point:
    """A uniformly random spot in the zone, ``margin`` metres in from its bounding box (less in a
    narrow zone, so the spot is still inside it)."""
    xs = [x for x, _ in zone.polygon]
    ys = [y for _, y in zone.polygon]
    margin = min(margin, (max(xs) - min(xs)) / 4, (max(ys) - min(ys)) / 4)
    for _ in range(1000):
        x = rng.uniform(min(xs) + margin, max(xs) - margin)
        y = rng.uniform(min(ys) + margin, max(ys) - margin)
        if zone.contains(x, y):
            return (x, y)
    return zone.polygon[0]  # a sliver of a zone: its first corner will do


def browsing_stops(
    plan: FloorPlan, rng: random.Random, zones_per_visit: tuple[int, int] = ZONES_PER_VISIT
) -> list[tuple[Point, float]]:
    """A dwell somewhere in each of a few random zones: ``[(position, pause_s), …]``."""
    zones = sorted(plan.zones.values(), key=lambda z: z.id)
    count = rng.randint(*zones_per_visit)
    return [
        (random_point_in(zone, rng), rng.uniform(*DWELL_S))
        for zone in rng.sample(zones, min(count, len(zones)))
    ]


def random_walk(plan: FloorPlan, rng: random.Random, start: float, door: Point = DOOR) -> Walk:
    """A visit: in through the door, a dwell in 1-4 random zones, out through the door."""
    stops = [(door, 0.0), *browsing_stops(plan, rng), (door, 0.0)]
    return Walk.route(start, stops, speed=rng.uniform(*WALK_SPEED_MPS))


def readings(
    plan: FloorPlan,
    position: Point,
    rng: random.Random,
    noise_db: float = SIM_NOISE_DB,
    frame_loss: float = FRAME_LOSS,
) -> list[tuple[str, int]]:
    """(sensor id, RSSI) for each sensor that decodes one frame sent at ``position``."""
    heard = []
    for sensor in plan.sensors.values():
        distance = math.hypot(sensor.x - position[0], sensor.y - position[1])
        rssi = rssi_at_distance(distance, sensor.rssi_at_1m) + rng.gauss(0.0, noise_db)
        if rssi >= SENSOR_SENSITIVITY_DBM and rng.random() >= frame_loss:
            heard.append((sensor.id, round(rssi)))
    return heard


@dataclass
class Simulation:
    """Shoppers and their phones' transmissions, produced in time order by ``run_until``.

    With ``population`` > 0 the shop is kept at about that many shoppers: each who leaves is
    replaced after a short gap (a member comes back with the same phone, others are new phones).
    """

    plan: FloorPlan
    shoppers: list[SimShopper] = field(default_factory=list)
    seed: int = 0
    population: int = 0
    member_macs: Sequence[str] = ()
    start_wall: float = 1_800_000_000.0  # 2027-01-15; live sources pass time.time()
    tx_interval: float = TX_INTERVAL_S
    noise_db: float = SIM_NOISE_DB
    frame_loss: float = FRAME_LOSS
    arrival_window: float = ARRIVAL_WINDOW_S
    time: float = 0.0

    def __post_init__(self) -> None:
        # Reproducible noise and walks, not secrets.
        self.rng = random.Random(self.seed)  # noqa: S311
        self._made = 0
        self._queue: list[tuple[float, int, SimShopper, int]] = []
        self._order = 0
        for shopper in self.shoppers:
            self._schedule(shopper, shopper.walk.start)
        members = list(self.member_macs)
        for number in range(self.population):
            arrival = self.rng.uniform(0.0, self.arrival_window)
            self._spawn(arrival, members[number] if number < len(members) else None)

    def _schedule(self, shopper: SimShopper, at: float) -> None:
        self._order += 1
        heapq.heappush(self._queue, (at, self._order, shopper, shopper.generation))

    def _spawn(self, arrival: float, member_mac: str | None) -> None:
        if member_mac is None:
            self._made += 1
            address = sim_mac(self._made)
        else:
            address = member_mac
        walk = random_walk(self.plan, self.rng, arrival)
        shopper = SimShopper(address, walk, member=member_mac is not None)
        self.shoppers.append(shopper)
        self._schedule(shopper, arrival + self.rng.uniform(0.0, self.tx_interval))

    def _observations(self, shopper: SimShopper, t: float) -> list[Observation]:
        position = shopper.walk.position(t)
        if position is None:
            return []
        shopper.seq = (shopper.seq + 1) % 4096  # the 802.11 sequence number is 12 bits
        payload: dict[str, Any]
        if shopper.member:
            kind, payload = WIFI_DATA, {"seq": shopper.seq}
        else:
            kind = WIFI_PROBE
            payload = {"ssids": [], "seq": shopper.seq, "ie_ids": _PROBE_IES, "fingerprint": "sim"}
        ts = self.start_wall + t
        return [
            Observation(ts, sensor_id, kind, shopper.address, rssi, payload)
            for sensor_id, rssi in readings(
                self.plan, position, self.rng, self.noise_db, self.frame_loss
            )
        ]

    def run_until(self, until: float) -> Iterator[Observation]:
        """Every observation from now up to ``until`` (simulation seconds), oldest first."""
        while self._queue and self._queue[0][0] <= until:
            t, _, shopper, generation = heapq.heappop(self._queue)
            if generation != shopper.generation:
                continue  # queued for a walk that was replaced since
            self.time = t
            yield from self._observations(shopper, t)
            if t + self.tx_interval * (1 - TX_JITTER) <= shopper.walk.end:
                jitter = self.rng.uniform(-TX_JITTER, TX_JITTER) * self.tx_interval
                self._schedule(shopper, t + self.tx_interval + jitter)
            elif self.population:
                self.shoppers.remove(shopper)
                if shopper.returns:
                    gap = self.rng.expovariate(1.0 / RETURN_GAP_S)
                    self._spawn(shopper.walk.end + gap, shopper.address if shopper.member else None)
        self.time = max(self.time, until)

    def walk_to(
        self, addresses: Sequence[str], zone_id: int, hold: float = REQUESTED_HOLD_S
    ) -> list[str]:
        """Send these phones, from where they are now (or from the door), to a random spot in the
        zone; they stay ``hold`` seconds, browse a little more and leave. Returns the addresses
        walked: those the simulation has, else a new member phone with the first address. None
        when the zone is not on this plan or there is no address.
        """
        zone = self.plan.zones.get(zone_id)
        if zone is None or not addresses:
            return []
        wanted = {address.lower() for address in addresses}
        phones = [s for s in self.shoppers if s.address.lower() in wanted]
        if not phones:
            # A phone the simulation never had (a member who signed up during the demo): it
            # comes in through the door for this walk only.
            arrival = Walk.through([(self.time, DOOR)])
            phones = [SimShopper(addresses[0], arrival, member=True, returns=False)]
            self.shoppers.extend(phones)
        for shopper in phones:
            here = shopper.walk.position(self.time) or DOOR
            target = random_point_in(zone, self.rng, margin=REQUESTED_MARGIN_M)
            stops = [
                (here, 0.0),
                (target, hold),
                *browsing_stops(self.plan, self.rng, ZONES_AFTER_REQUESTED_WALK),
                (DOOR, 0.0),
            ]
            shopper.walk = Walk.route(self.time, stops, speed=REQUESTED_WALK_SPEED_MPS)
            shopper.generation += 1
            self._schedule(shopper, self.time)  # the phone is heard at once, on its new walk
        return [shopper.address for shopper in phones]

    def position_of(self, address: str) -> Point | None:
        shopper = next((s for s in self.shoppers if s.address == address), None)
        return shopper.walk.position(self.time) if shopper else None


def member_mac_list(member_macs: Mapping[str, int] | None) -> list[str]:
    """MACs of ``{mac: member_id}`` (identity's linked MACs), in a stable order."""
    return sorted(member_macs or {})
