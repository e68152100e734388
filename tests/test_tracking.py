"""Zone logic end to end: simulated phones → real identity → estimate → track → the outbox.

The simulator is the only stand-in (for radios this machine does not have); the database, the
identity step and the outbox are the real ones. Time moves through ``presence.track``'s
``MONOTONIC_TIME`` seam: nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest
import sqlite_utils

from instore import members
from instore.clock import from_iso
from instore.config import Config
from instore.db import connect
from presence import track
from presence.estimate import (
    DeviceEstimate,
    Estimator,
    EstimatorSettings,
    KnnLocator,
    SensorEstimate,
    load_fingerprints,
    record_calibration,
)
from presence.floorplan_demo import DOOR, seed_demo_floorplan
from presence.identity import Identifier
from presence.observation import WIFI_PROBE, Observation
from presence.sim import SimShopper, Simulation, Walk, readings
from presence.sources.sim import NothingToSimulate, create_sim_source
from presence.track import Tracker, read_occupancy
from presence.zones import FloorPlan, InvalidZone, create_sensor, create_zone, load_floorplan

ENTRANCE, SHOES, DENIM = (4.0, 4.0), (12.0, 4.0), (20.0, 4.0)  # the demo sensors' spots
# In at the door, 5 s at the entrance, a minute at the shoes, 15 s at the denim, back out briskly.
SCRIPTED_WALK = Walk.through(
    [
        (0, DOOR),
        (5, ENTRANCE),
        (10, ENTRANCE),
        (18, SHOES),
        (78, SHOES),
        (86, DENIM),
        (101, DENIM),
        (112, ENTRANCE),  # straight back through Shoes in ~6 s: passing, not visiting
        (122, ENTRANCE),
        (127, DOOR),  # last heard here; then the phone is gone
    ]
)
EXPECTED_VISIT = [
    ("store_enter", None),
    ("zone_enter", "Entrance"),
    ("zone_exit", "Entrance"),
    ("zone_enter", "Shoes"),
    ("zone_dwell", "Shoes"),  # 60 s > the 30 s dwell threshold
    ("zone_exit", "Shoes"),
    ("zone_enter", "Denim"),  # 15 s: no dwell
    ("zone_exit", "Denim"),
    ("zone_enter", "Entrance"),
    ("zone_exit", "Entrance"),  # unseen for ZONE_EXIT_TIMEOUT_S
    ("store_exit", None),  # unseen for STORE_EXIT_TIMEOUT_S
]
MEMBER_MAC = "3c:22:fb:12:34:56"  # a phone's real (globally administered) MAC, linked at sign-in


class Store:
    """Runs a simulation through identity and the tracker, one simulated second at a time."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        monkeypatch: pytest.MonkeyPatch,
        shoppers: list[SimShopper],
        seed: int = 0,
        plan: FloorPlan | None = None,
    ) -> None:
        self.db = db
        self.plan = plan or seed_demo_floorplan(db)
        self.now = 0.0
        monkeypatch.setattr(track, "MONOTONIC_TIME", lambda: self.now)
        self.tracker = Tracker(db, self.plan)
        self.identifier = Identifier(db)
        self.sim = Simulation(self.plan, shoppers, seed=seed)

    def run(self, until: float) -> None:
        for obs in self.sim.run_until(until):
            self.advance_to(obs.ts - self.sim.start_wall)
            identity = self.identifier.identify(obs)
            if not identity.footfall_only:
                self.tracker.observe(obs, identity.device, identity.member_id)
        self.advance_to(until)

    def advance_to(self, t: float) -> None:
        """Tick every whole second on the way, as the daemon does, then stand at ``t``."""
        while int(self.now) + 1 <= t:
            self.now = float(int(self.now) + 1)
            self.tracker.tick()
        self.now = t

    def events(self) -> list[tuple[str, dict[str, object]]]:
        rows = self.db.conn.execute("SELECT kind, payload FROM events ORDER BY id").fetchall()
        return [(kind, json.loads(payload)) for kind, payload in rows if kind in track.EVENT_KINDS]

    def visits(self) -> list[tuple[str, object]]:
        return [(kind, payload["zone"]) for kind, payload in self.events()]


def test_scripted_walk_produces_exactly_the_expected_events(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = members.create_member(db, display_name="Ana", password="correct horse battery")
    members.record_consents(db, member.id, {"wifi_terms": True, "location": True}, "2026-11")
    members.link_device(db, MEMBER_MAC, member.id)
    store = Store(db, monkeypatch, [SimShopper(MEMBER_MAC, SCRIPTED_WALK)], seed=7)

    store.run(SCRIPTED_WALK.end + track.STORE_EXIT_TIMEOUT_S + 5)

    assert store.visits() == EXPECTED_VISIT
    zone_ids = {zone.name: zone.id for zone in store.plan.zones.values()}
    for kind, payload in store.events():
        assert set(payload) == {"device", "member_id", "zone", "zone_id", "ts"}, kind
        assert (payload["device"], payload["member_id"]) == (f"m:{member.id}", member.id)
        assert payload["zone_id"] == zone_ids.get(str(payload["zone"]))
    stamps = [str(payload["ts"]) for _, payload in store.events()]
    assert stamps == sorted(stamps)  # ISO UTC seconds, so text order is time order
    enter_shoes, dwell_shoes = stamps[3], stamps[4]
    assert (_seconds(dwell_shoes) - _seconds(enter_shoes)) >= track.DWELL_SECONDS
    # Exits are stamped with when the phone was last heard, not when the timeout noticed.
    assert stamps[-1] == stamps[-2]
    last_heard = _seconds(stamps[-1]) - store.sim.start_wall
    assert SCRIPTED_WALK.end - 3 <= last_heard <= SCRIPTED_WALK.end  # phones send every ~2 s
    assert db.conn.execute("SELECT COUNT(*) FROM presence_state").fetchone()[0] == 0
    assert store.tracker.occupancy().in_store == 0


def test_anonymous_shopper_is_a_keyed_hash_without_member(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(db, monkeypatch, [SimShopper("ac:de:48:00:00:01", SCRIPTED_WALK)], seed=7)
    store.run(60)
    devices = {(p["device"], p["member_id"]) for _, p in store.events()}
    assert len(devices) == 1
    device, member_id = devices.pop()
    assert str(device).startswith("h:") and "ac:de:48" not in str(device)
    assert member_id is None


@pytest.mark.parametrize("seed", range(5))
def test_a_phone_standing_on_a_zone_border_does_not_flap(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    border = ((ENTRANCE[0] + SHOES[0]) / 2, ENTRANCE[1])  # equally far from both sensors
    walk = Walk.through([(0, DOOR), (5, border), (600, border)])
    store = Store(db, monkeypatch, [SimShopper("ac:de:48:00:00:02", walk)], seed=seed)

    store.run(600)

    kinds = [kind for kind, _ in store.visits()]
    assert kinds[:2] == ["store_enter", "zone_enter"]
    assert kinds.count("zone_exit") <= 1, store.visits()  # at most one change in ten minutes
    assert {zone for _, zone in store.visits()} <= {None, "Entrance", "Shoes"}


def test_a_phone_heard_once_is_not_tracked(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A passer-by: one probe burst, heard by every sensor at once, then never again.
    walk = Walk.through([(0, ENTRANCE), (0.5, ENTRANCE)])
    store = Store(db, monkeypatch, [SimShopper("ac:de:48:00:00:03", walk)], seed=1)
    store.run(1)
    assert store.tracker.devices  # remembered as a candidate...
    store.run(track.CANDIDATE_FORGET_S + track.STORE_EXIT_TIMEOUT_S)
    assert store.events() == []  # ...but never entered, never exited
    assert store.tracker.devices == {}  # and forgotten
    assert store.tracker.occupancy().in_store == 0


def test_a_phone_heard_only_from_the_street_is_not_kept(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(db, monkeypatch, [])
    for second in range(10):
        store.advance_to(float(second * 2))
        faint = Observation(1.8e9 + second * 2, "sim-entrance", WIFI_PROBE, "ac:de:48:0:0:9", -95)
        assert store.tracker.observe(faint, "h:street") == []
    assert store.tracker.devices == {}


def test_occupancy_counts_in_memory_and_in_the_database(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    stays = [
        SimShopper("ac:de:48:00:01:01", Walk.through([(0, DOOR), (12, (11, 3)), (900, (11, 3))])),
        SimShopper("ac:de:48:00:01:02", Walk.through([(0, DOOR), (12, (13, 5)), (900, (13, 5))])),
        SimShopper("ac:de:48:00:01:03", Walk.through([(0, DOOR), (20, (20, 5)), (120, (20, 5))])),
    ]
    store = Store(db, monkeypatch, stays, seed=3)
    store.run(90)
    expected = {"Entrance": 0, "Shoes": 2, "Denim": 1, "Checkout": 0, "Women": 0, "Men": 0}
    assert store.tracker.occupancy().zones == expected
    assert store.tracker.occupancy().in_store == 3
    assert read_occupancy(db) == store.tracker.occupancy()

    store.run(120 + track.ZONE_EXIT_TIMEOUT_S + 2)  # the Denim shopper went quiet at 120 s
    assert store.tracker.occupancy().zones["Denim"] == 0
    assert store.tracker.occupancy().in_store == 3  # not yet out of the store
    store.run(120 + track.STORE_EXIT_TIMEOUT_S + 2)
    assert store.tracker.occupancy().in_store == 2
    assert read_occupancy(db) == store.tracker.occupancy()


def test_timeouts_fire_exactly_when_due(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    walk = Walk.through([(0, DOOR), (8, DENIM), (60, DENIM)])
    store = Store(db, monkeypatch, [SimShopper("ac:de:48:00:00:04", walk)], seed=2)
    store.run(60)
    last_heard = store.tracker.devices[next(iter(store.tracker.devices))].last_seen
    store.run(last_heard + track.ZONE_EXIT_TIMEOUT_S - 0.5)
    assert store.visits()[-1] == ("zone_dwell", "Denim")
    store.run(last_heard + track.ZONE_EXIT_TIMEOUT_S + 1)
    assert store.visits()[-1] == ("zone_exit", "Denim")
    store.run(last_heard + track.STORE_EXIT_TIMEOUT_S - 0.5)
    assert store.visits()[-1] == ("zone_exit", "Denim")
    store.run(last_heard + track.STORE_EXIT_TIMEOUT_S + 1)
    assert store.visits()[-1] == ("store_exit", None)
    assert [kind for kind, _ in store.visits()].count("zone_dwell") == 1


def test_a_restart_picks_up_who_is_present(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    walk = Walk.through([(0, DOOR), (8, SHOES), (300, SHOES)])
    store = Store(db, monkeypatch, [SimShopper("ac:de:48:00:00:05", walk)], seed=4)
    store.run(100)
    before = store.visits()
    assert before[0] == ("store_enter", None)
    assert before[-2:] == [("zone_enter", "Shoes"), ("zone_dwell", "Shoes")]

    store.tracker = Tracker(db, store.plan)  # the daemon restarted (same clock, same file)
    monkeypatch.setattr(track, "WALL_TIME", lambda: store.sim.start_wall + store.now)
    assert store.tracker.restore() == 1
    assert store.tracker.occupancy().zones["Shoes"] == 1
    store.run(300 + track.STORE_EXIT_TIMEOUT_S + 2)
    assert store.visits() == [*before, ("zone_exit", "Shoes"), ("store_exit", None)]


def test_single_sensor_store_uses_rssi_bands(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = create_zone(db, "Till", [(0, 0), (3, 0), (3, 3), (0, 3)])
    create_sensor(db, "wlan0", "wifi", 1.5, 1.5)
    store = Store(db, monkeypatch, [], plan=load_floorplan(db))
    assert store.tracker.estimator.single_sensor

    def hear(rssi: int, seconds: range) -> None:
        for second in seconds:
            store.advance_to(float(second))
            obs = Observation(1.8e9 + second, "wlan0", WIFI_PROBE, "ac:de:48:0:0:6", rssi)
            store.tracker.observe(obs, "h:till")

    hear(-52, range(0, 20, 2))  # close to the till
    assert store.visits() == [("store_enter", None), ("zone_enter", "Till")]
    hear(-62, range(20, 60, 2))  # just below the near band: within its hysteresis, stays
    assert store.visits()[-1] == ("zone_dwell", "Till")
    hear(-75, range(60, 120, 2))  # far band: in the shop, in no zone
    assert store.visits()[-1] == ("zone_exit", "Till")
    assert store.tracker.occupancy().zones == {"Till": 0}
    assert store.tracker.occupancy().in_store == 1
    assert [kind for kind, _ in store.visits()] == [
        "store_enter",
        "zone_enter",
        "zone_dwell",
        "zone_exit",
    ]
    assert {p["zone_id"] for _, p in store.events()} == {None, till.id}


def test_kalman_filter_smooths_phone_rssi() -> None:
    rng = random.Random(5)  # noqa: S311 - reproducible noise
    settings = EstimatorSettings()
    raw = [-60 + rng.gauss(0, 5) for _ in range(200)]  # a phone standing still, 5 dB scatter
    estimate = SensorEstimate(raw[0], settings.measurement_noise, 0.0)
    smoothed = []
    for step, reading in enumerate(raw[1:], start=1):
        estimate.update(reading, step * 2.0, settings)
        smoothed.append(estimate.rssi)
    assert estimate.variance < settings.measurement_noise / 2

    def rms(values: list[float]) -> float:
        return (sum((v + 60) ** 2 for v in values) / len(values)) ** 0.5

    assert rms(smoothed[10:]) < 0.7 * rms(raw[11:])


def test_knn_calibration_round_trip_and_locate(db: sqlite_utils.Database) -> None:
    plan = seed_demo_floorplan(db)
    rng = random.Random(11)  # noqa: S311 - reproducible noise
    for zone in plan.zones.values():
        x = sum(px for px, _ in zone.polygon) / 4
        y = sum(py for _, py in zone.polygon) / 4
        samples = [dict(readings(plan, (x, y), rng, frame_loss=0)) for _ in range(5)]
        assert record_calibration(db, zone.id, samples) == 5
    fingerprints = load_fingerprints(db)
    assert len(fingerprints) == 5 * len(plan.zones)
    locator = KnnLocator(fingerprints)
    shoes = plan.zone_named("Shoes")
    assert shoes is not None
    assert locator.locate(dict(readings(plan, (12.5, 3.5), rng, frame_loss=0))) == shoes.id

    estimator = Estimator(plan, locator=locator)
    state = DeviceEstimate()
    for step in range(6):
        for sensor_id, rssi in readings(plan, (11.5, 4.5), rng):
            estimator.update(state, sensor_id, rssi, step * 2.0)
    assert (state.placed, state.zone_id) == (True, shoes.id)

    with pytest.raises(InvalidZone, match="zone 'Shoes': no calibration samples were recorded"):
        record_calibration(db, shoes.id, [])
    with pytest.raises(InvalidZone, match="RSSI 20 from sensor 'sim-shoes' is not a dBm"):
        record_calibration(db, shoes.id, [{"sim-shoes": 20}])
    with pytest.raises(InvalidZone, match="there is no zone with id 999"):
        record_calibration(db, 999, [{"sim-shoes": -50}])
    assert KnnLocator([]).locate({"sim-shoes": -50}) is None


def test_simulation_is_reproducible_from_its_seed(db: sqlite_utils.Database) -> None:
    plan = seed_demo_floorplan(db)
    first = list(Simulation(plan, seed=42, population=20).run_until(120))
    again = list(Simulation(plan, seed=42, population=20).run_until(120))
    other = list(Simulation(plan, seed=43, population=20).run_until(120))
    assert first == again and first != other
    assert {obs.sensor_id for obs in first} == set(plan.sensors)
    assert len({obs.address for obs in first}) >= 20  # and replacements for those who left


def test_sim_source_streams_observations(db: sqlite_utils.Database) -> None:
    with pytest.raises(NothingToSimulate, match="no zones or sensors"):
        create_sim_source(db, shoppers=3)
    seed_demo_floorplan(db)
    member_macs = {MEMBER_MAC: 1}
    source = create_sim_source(db, shoppers=4, speed=500.0, seed=1, member_macs=member_macs)
    assert source.name == "sim"

    async def first(count: int) -> list[Observation]:
        seen: list[Observation] = []
        async for obs in source.stream():
            seen.append(obs)
            if len(seen) == count:
                break
        return seen

    observations = asyncio.run(asyncio.wait_for(first(200), timeout=30))
    assert {obs.address for obs in observations} >= {MEMBER_MAC}
    assert all(obs.sensor_id.startswith("sim-") and obs.rssi is not None for obs in observations)


def _seconds(iso: str) -> float:
    return from_iso(iso).timestamp()


def test_events_wait_in_memory_while_the_database_is_locked(
    db: sqlite_utils.Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_demo_floorplan(db)
    impatient = connect(config.database_path, busy_timeout_ms=20)  # the daemon's own connection
    walk = Walk.through([(0, DOOR), (8, SHOES), (90, SHOES)])
    store = Store(impatient, monkeypatch, [SimShopper("ac:de:48:00:00:07", walk)], seed=5)
    store.identifier.salt_for(store.sim.start_wall)  # today's salt exists before the lock
    db.conn.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    store.run(track.STATE_FLUSH_S + 5)  # through a state flush, too
    assert store.tracker.occupancy().in_store == 1  # tracking went on...
    db.conn.execute("ROLLBACK")
    assert db.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0  # ...unwritten
    store.run(60)
    kinds = [kind for kind, _ in store.visits()]
    assert kinds[0] == "store_enter" and ("zone_dwell", "Shoes") in store.visits()
    assert read_occupancy(db) == store.tracker.occupancy()
    impatient.conn.close()
