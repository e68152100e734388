"""The ``sim`` presence source: simulated shoppers on the floor plan, in real or faster time.

For ``make demo`` and the benchmarks: the daemon runs it like any radio. At ``speed`` > 1 a
simulated minute passes in less than a real one, and observation timestamps run ahead of the wall
clock accordingly; give the tracker ``source.clock`` so dwell and timeouts run at the same pace.

Built over the database, it also follows the demo's "walk my phone to zone…" requests
(``presence.walks``), looking for new ones about once a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping

import sqlite_utils

from presence.observation import Observation
from presence.sim import Simulation, member_mac_list
from presence.walks import WalkPoller
from presence.zones import FloorPlan, load_floorplan

log = logging.getLogger(__name__)

STEP_S = 0.05  # wall seconds between batches: well inside the 200 ms sighting → event budget


class NothingToSimulate(ValueError):
    """The floor plan has no sensors (or zones), so simulated phones would not be heard."""


class SimSource:
    """A ``Source`` producing a ``Simulation``'s observations as its time comes."""

    name = "sim"

    def __init__(
        self,
        simulation: Simulation,
        speed: float = 1.0,
        step: float = STEP_S,
        walks: WalkPoller | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"the simulation speed must be above 0, not {speed}")
        self.simulation = simulation
        self.speed = speed
        self.step = step
        self.walks = walks
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
            self.follow_walk_requests()
            until = sim_began + (time.monotonic() - began) * self.speed
            for observation in self.simulation.run_until(until):
                yield observation
            await asyncio.sleep(self.step)

    def follow_walk_requests(self) -> list[str]:
        """Walk the phones of members who asked since the last look (the poller allows one look
        a second); returns the addresses sent walking."""
        if self.walks is None:
            return []
        walked: list[str] = []
        for request in self.walks.poll():
            addresses = self.simulation.walk_to(request.macs, request.zone_id)
            if addresses:
                log.info(
                    "demo walk",
                    extra={
                        "member_id": request.member_id,
                        "zone_id": request.zone_id,
                        "phones": len(addresses),
                    },
                )
            else:
                # No linked phone, or a zone added after the simulation loaded the floor plan.
                log.warning(
                    "demo walk not possible",
                    extra={
                        "member_id": request.member_id,
                        "zone_id": request.zone_id,
                        "linked_phones": len(request.macs),
                    },
                )
            walked += addresses
        return walked


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
    Over a database, the source follows the demo's walk requests too.
    """
    walks = None
    if isinstance(db_or_floorplan, FloorPlan):
        plan = db_or_floorplan
    else:
        plan = load_floorplan(db_or_floorplan)
        walks = WalkPoller(db_or_floorplan)
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
    return SimSource(simulation, speed=speed, walks=walks)
