"""The ``sim`` presence source: simulated shoppers on the floor plan, in real or faster time.

For ``make demo`` and the benchmarks: the daemon runs it like any radio. At ``speed`` > 1 a
simulated minute passes in less than a real one, and observation timestamps run ahead of the wall
clock accordingly; give the tracker ``source.clock`` so dwell and timeouts run at the same pace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping

import sqlite_utils

from presence.observation import Observation
from presence.sim import Simulation, member_mac_list
from presence.zones import FloorPlan, load_floorplan

STEP_S = 0.05  # wall seconds between batches: well inside the 200 ms sighting → event budget


class NothingToSimulate(ValueError):
    """The floor plan has no sensors (or zones), so simulated phones would not be heard."""


class SimSource:
    """A ``Source`` producing a ``Simulation``'s observations as its time comes."""

    name = "sim"

    def __init__(self, simulation: Simulation, speed: float = 1.0, step: float = STEP_S) -> None:
        if speed <= 0:
            raise ValueError(f"the simulation speed must be above 0, not {speed}")
        self.simulation = simulation
        self.speed = speed
        self.step = step
        self._origin = time.monotonic()

    def clock(self) -> float:
        """Monotonic seconds running ``speed`` times faster: the tracker's clock for this source."""
        return self._origin + (time.monotonic() - self._origin) * self.speed

    async def stream(self) -> AsyncIterator[Observation]:
        """Observations as simulated time catches up with the (scaled) wall clock, forever.

        A restarted stream continues the same simulation where it stopped.
        """
        began, sim_began = time.monotonic(), self.simulation.time
        while True:
            until = sim_began + (time.monotonic() - began) * self.speed
            for observation in self.simulation.run_until(until):
                yield observation
            await asyncio.sleep(self.step)


def create_sim_source(
    db_or_floorplan: sqlite_utils.Database | FloorPlan,
    shoppers: int,
    speed: float = 1.0,
    seed: int = 0,
    member_macs: Mapping[str, int] | None = None,
) -> SimSource:
    """The sim source over the stored floor plan (or a given one).

    ``shoppers`` is how many are kept in the shop at once; ``member_macs`` (identity's
    ``{mac: member_id}`` of consenting members) gives that many of them a member's linked MAC.
    """
    if isinstance(db_or_floorplan, FloorPlan):
        plan = db_or_floorplan
    else:
        plan = load_floorplan(db_or_floorplan)
    if not plan.sensors or not plan.zones:
        raise NothingToSimulate(
            "the floor plan has no zones or sensors to simulate; add them, or seed the demo plan "
            "(presence.floorplan_demo.seed_demo_floorplan)"
        )
    if shoppers < 0:
        raise ValueError(f"the number of shoppers cannot be negative ({shoppers})")
    simulation = Simulation(
        plan,
        seed=seed,
        population=shoppers,
        member_macs=member_mac_list(member_macs),
        start_wall=time.time(),
    )
    return SimSource(simulation, speed=speed)
