"""Where a phone is: smoothed RSSI per (device, sensor), then a zone with hysteresis.

Phone RSSI jumps by ±5-10 dB from one frame to the next (the body between phone and antenna,
multipath off shelving, the phone turning), so a raw reading says little. Each sensor's readings of
a device go through a 1-D Kalman filter; the smoothed values pick a zone three ways:

- **nearest sensor** (the default): path-loss distance from each sensor's ``rssi_at_1m``; the zone
  of the nearest one wins, but a challenger must be nearer *by a margin* and stay so *for a while*
  before the device moves, so a shopper standing on a border does not flap between two zones;
- **RSSI bands** when the store has a single sensor: near means its zone, far means "in the shop";
- **kNN fingerprints** when the store has been calibrated (``instore presence calibrate``).

Times are seconds on the tracker's monotonic clock; nothing here reads a clock itself.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlite_utils

from instore.clock import now_iso
from instore.db import transaction
from presence.zones import FloorPlan, InvalidZone, get_zone

log = logging.getLogger(__name__)

# -- constants, each with its reason -----------------------------------------------------------
# Kalman process noise, dB² per second: a walking shopper's RSSI at a sensor drifts by a couple
# of dB a second; lower would lag behind real movement, higher would let jitter through.
PROCESS_NOISE_DB2_PER_S = 3.0
# Kalman measurement noise, dB² (5 dB std dev): how much a phone's RSSI typically scatters from
# frame to frame (body shadowing, multipath, antenna orientation).
MEASUREMENT_NOISE_DB2 = 25.0
# Log-distance path-loss exponent: 2 in free space; racks, shelving and people make a shop
# floor 2.5-3. Only ratios of distances matter for picking the nearest sensor.
PATH_LOSS_EXPONENT = 2.5
MIN_DISTANCE_M = 0.5  # closer than this the near field makes RSSI meaningless as a distance
# A sensor that has not heard a device for this long no longer says where it is. Awake phones
# probe or advertise every few seconds; 45 s survives a missed burst or two.
ESTIMATE_STALE_S = 45.0
# A challenger zone must be this much nearer (distance ratio; 0.6 is 5.5 dB at exponent 2.5),
# well above the smoothed scatter (~3 dB each) between two sensors a phone stands halfway between.
ZONE_SWITCH_RATIO = 0.6
# ...and keep winning for this long: a shopper walking through a zone is not "in" it, and a
# noise excursion rarely lasts this long after smoothing. Tuned with the simulator: no flap in
# 40 ten-minute runs on a border, a 6 s walk through a zone ignored in 39 of 40; the price is a
# zone_enter ~10-20 s after really entering (bench/presence_pipeline.py prints it).
ZONE_SWITCH_HOLD_S = 8.0
# A fresh device's first zone is decided once the best sensor's zone has stayed the same this
# long (two transmissions or more); until then it follows the best sensor freely. Otherwise the
# first frames, or a burst's first reading from a far sensor, would pin it to a wrong zone.
SETTLE_S = 3.0
# Weaker than this at a sensor: the pavement or the shop next door, not our floor.
IGNORE_BELOW_DBM = -90
# Single-sensor stores: at or above this the phone is within ~3-4 m of a sensor reading -45 dBm
# at 1 m, i.e. in the sensor's zone (the till, the fitting rooms).
NEAR_BAND_DBM = -60
# ...and it leaves the near band only this far below it, so standing at the edge does not flap.
BAND_HYSTERESIS_DB = 4.0
# One sensor cannot tell the shop floor from the street by position, so its far band ends sooner.
SINGLE_SENSOR_FLOOR_DBM = -85
KNN_K = 3  # neighbours voting; 3 outvotes one odd calibration sample without blurring zones
KNN_MISSING_DBM = -100.0  # a sensor that does not hear the phone counts as this, below any floor


@dataclass(frozen=True)
class EstimatorSettings:
    """The tunables above, overridable from configuration."""

    process_noise: float = PROCESS_NOISE_DB2_PER_S
    measurement_noise: float = MEASUREMENT_NOISE_DB2
    path_loss_exponent: float = PATH_LOSS_EXPONENT
    stale_after: float = ESTIMATE_STALE_S
    switch_ratio: float = ZONE_SWITCH_RATIO
    switch_hold: float = ZONE_SWITCH_HOLD_S
    settle: float = SETTLE_S
    ignore_below: float = IGNORE_BELOW_DBM
    near_band: float = NEAR_BAND_DBM
    band_hysteresis: float = BAND_HYSTERESIS_DB
    single_sensor_floor: float = SINGLE_SENSOR_FLOOR_DBM


def distance_from_rssi(
    rssi: float, rssi_at_1m: float, exponent: float = PATH_LOSS_EXPONENT
) -> float:
    """Log-distance path loss: metres at which a phone would read ``rssi``."""
    return max(MIN_DISTANCE_M, 10 ** ((rssi_at_1m - rssi) / (10 * exponent)))


def rssi_at_distance(
    distance: float, rssi_at_1m: float, exponent: float = PATH_LOSS_EXPONENT
) -> float:
    """The inverse: the RSSI a phone ``distance`` metres away reads, before noise."""
    return rssi_at_1m - 10 * exponent * math.log10(max(MIN_DISTANCE_M, distance))


@dataclass(slots=True)
class SensorEstimate:
    """A 1-D Kalman filter on one sensor's RSSI of one device (random-walk model)."""

    rssi: float
    variance: float
    updated: float

    def update(self, measured: float, now: float, settings: EstimatorSettings) -> None:
        # Predict: uncertainty grows with the time since the last reading (the phone may move).
        variance = self.variance + settings.process_noise * max(0.0, now - self.updated)
        gain = variance / (variance + settings.measurement_noise)
        self.rssi += gain * (measured - self.rssi)
        self.variance = (1 - gain) * variance
        self.updated = now


@dataclass(slots=True)
class DeviceEstimate:
    """One device's filters (by sensor id) and its current zone with any pending challenger."""

    sensors: dict[str, SensorEstimate] = field(default_factory=dict)
    zone_id: int | None = None  # None: in the shop, zone unknown
    placed: bool = False  # settled: zone_id is a decision, changed only with hysteresis
    challenger: int | None = None
    challenging: bool = False
    challenger_since: float = 0.0


class Estimator:
    """Turns one device's readings into its zone; one instance serves every device."""

    def __init__(
        self,
        plan: FloorPlan,
        *,
        locator: KnnLocator | None = None,
        settings: EstimatorSettings | None = None,
    ) -> None:
        self.plan = plan
        self.locator = locator
        self.settings = settings or EstimatorSettings()
        self.single_sensor = len(plan.sensors) == 1
        self._unknown_sensors: set[str] = set()
        # Distance ratio as a path-loss margin in dB: comparing losses needs no pow() per reading.
        self._margin_db = (
            -10 * self.settings.path_loss_exponent * math.log10(self.settings.switch_ratio)
        )

    def update(self, state: DeviceEstimate, sensor_id: str, rssi: float | None, now: float) -> bool:
        """Take one reading; return False when it is ignored as not being in the shop.

        A reading from an unknown sensor or without RSSI still counts as a sighting (the device is
        around) but cannot move it.
        """
        sensor = self.plan.sensors.get(sensor_id)
        if sensor is None:
            if sensor_id not in self._unknown_sensors:
                self._unknown_sensors.add(sensor_id)
                log.warning(
                    "sightings from a sensor not on the floor plan", extra={"sensor": sensor_id}
                )
            return True
        if rssi is None:
            return True
        floor = (
            self.settings.single_sensor_floor if self.single_sensor else self.settings.ignore_below
        )
        if rssi < floor:
            return False
        estimates = state.sensors
        stale = [sid for sid, e in estimates.items() if now - e.updated > self.settings.stale_after]
        for sid in stale:
            del estimates[sid]
        if not estimates:
            # Nothing recent says where it was, so the old zone no longer holds: decide afresh.
            state.placed = state.challenging = False
        current = estimates.get(sensor_id)
        if current is None:
            estimates[sensor_id] = SensorEstimate(float(rssi), self.settings.measurement_noise, now)
        else:
            current.update(float(rssi), now, self.settings)
        self._decide(state, now)
        return True

    # -- deciding ------------------------------------------------------------------------------

    def _decide(self, state: DeviceEstimate, now: float) -> None:
        if self.locator is not None:
            candidate = self.locator.locate({s: e.rssi for s, e in state.sensors.items()})
            wins = True
        elif self.single_sensor:
            candidate, wins = self._band(state)
        else:
            candidate, wins = self._nearest(state)
        if not state.placed:
            if not state.challenging or state.challenger != candidate:
                state.challenger, state.challenging, state.challenger_since = candidate, True, now
            state.zone_id = candidate
            if now - state.challenger_since >= self.settings.settle:
                state.placed, state.challenging = True, False
        elif candidate == state.zone_id or not wins:
            state.challenging = False
        elif not state.challenging or state.challenger != candidate:
            state.challenger, state.challenging, state.challenger_since = candidate, True, now
        elif now - state.challenger_since >= self.settings.switch_hold:
            state.zone_id, state.challenging = candidate, False

    def _nearest(self, state: DeviceEstimate) -> tuple[int | None, bool]:
        """The zone with the smallest path loss, and whether it beats the current zone's by the
        margin. Loss (rssi_at_1m - rssi) orders sensors like distance does."""
        best_zone: int | None = None
        best_loss = math.inf
        current_loss = math.inf
        sensors = self.plan.sensors
        for sensor_id, estimate in state.sensors.items():
            sensor = sensors[sensor_id]
            loss = sensor.rssi_at_1m - estimate.rssi
            if loss < best_loss:
                best_zone, best_loss = sensor.zone_id, loss
            if sensor.zone_id == state.zone_id and loss < current_loss:
                current_loss = loss
        return best_zone, best_loss + self._margin_db <= current_loss

    def _band(self, state: DeviceEstimate) -> tuple[int | None, bool]:
        """Single-sensor store: near band = the sensor's zone, otherwise somewhere in the shop."""
        sensor = next(iter(self.plan.sensors.values()))
        estimate = state.sensors.get(sensor.id)
        if estimate is None:
            return state.zone_id, False
        near = self.settings.near_band
        if state.placed and state.zone_id == sensor.zone_id:
            near -= self.settings.band_hysteresis
        return (sensor.zone_id if estimate.rssi >= near else None), True


# -- kNN fingerprints --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One calibration sample: what each sensor read while a phone stood in ``zone_id``."""

    zone_id: int
    vector: Mapping[str, float]


def _clean_sample(zone_name: str, sample: Mapping[str, float]) -> dict[str, float]:
    if not sample:
        raise InvalidZone(f"zone {zone_name!r}: a calibration sample heard no sensor")
    clean: dict[str, float] = {}
    for sensor_id, rssi in sample.items():
        value = float(rssi)
        if not -120 <= value <= 0:
            raise InvalidZone(
                f"zone {zone_name!r}: RSSI {rssi} from sensor {sensor_id!r} is not a dBm reading"
            )
        clean[str(sensor_id)] = value
    return clean


def record_calibration(
    db: sqlite_utils.Database, zone_id: int, samples: Iterable[Mapping[str, float]]
) -> int:
    """Store calibration samples for a zone (sensor id → RSSI each); return how many."""
    with transaction(db):
        zone = get_zone(db, zone_id)
        rows = [
            (zone_id, json.dumps(_clean_sample(zone.name, s), sort_keys=True), now_iso())
            for s in samples
        ]
        if not rows:
            raise InvalidZone(f"zone {zone.name!r}: no calibration samples were recorded")
        db.conn.executemany(
            "INSERT INTO zone_fingerprints (zone_id, vector, created_at) VALUES (?, ?, ?)", rows
        )
    return len(rows)


def clear_calibration(db: sqlite_utils.Database, zone_id: int | None = None) -> int:
    """Forget one zone's samples (or all), before recalibrating after moving sensors."""
    with transaction(db):
        if zone_id is None:
            return db.conn.execute("DELETE FROM zone_fingerprints").rowcount
        return db.conn.execute(
            "DELETE FROM zone_fingerprints WHERE zone_id = ?", (zone_id,)
        ).rowcount


def load_fingerprints(db: sqlite_utils.Database) -> list[Fingerprint]:
    rows = db.conn.execute("SELECT zone_id, vector FROM zone_fingerprints ORDER BY id").fetchall()
    return [Fingerprint(zone_id, json.loads(vector)) for zone_id, vector in rows]


class KnnLocator:
    """k-nearest-neighbour zone classifier over calibration fingerprints (Euclidean, dB)."""

    def __init__(self, fingerprints: Sequence[Fingerprint], k: int = KNN_K) -> None:
        self.k = max(1, k)
        self.sensor_ids: tuple[str, ...] = tuple(
            sorted({sensor_id for fp in fingerprints for sensor_id in fp.vector})
        )
        self._samples = [
            (fp.zone_id, [fp.vector.get(s, KNN_MISSING_DBM) for s in self.sensor_ids])
            for fp in fingerprints
        ]

    def __bool__(self) -> bool:
        return bool(self._samples)

    def locate(self, vector: Mapping[str, float]) -> int | None:
        """The zone most of the k nearest samples belong to (ties: the nearer); None if no
        samples. Sensors the calibration never heard are ignored."""
        if not self._samples:
            return None
        point = [vector.get(s, KNN_MISSING_DBM) for s in self.sensor_ids]
        ranked = sorted(
            (sum((a - b) ** 2 for a, b in zip(point, sample, strict=True)), zone_id)
            for zone_id, sample in self._samples
        )[: self.k]
        votes: dict[int, float] = {}
        for squared, zone_id in ranked:
            votes[zone_id] = votes.get(zone_id, 0.0) + 1.0 / (1.0 + math.sqrt(squared))
        return max(votes, key=lambda zone_id: votes[zone_id])
