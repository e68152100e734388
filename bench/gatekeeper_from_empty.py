"""Part 1 of the gatekeeper bench: from empty to N authorized clients in one reconcile.

``Gatekeeper.reconcile(full=True)`` is timed in a process running inside a fresh namespace: the
entry script ``gatekeeper_reconcile.py`` re-executes itself there with ``--inner-reconcile``
(``inner_reconcile`` below), so the figure is the library call's alone, with the gateway and the
configuration obtained exactly as ``instore gatekeeper`` obtains them. Goal < 1 s for 10,000.
Afterwards ``nft`` itself must list exactly the seeded (MAC, IP) pairs, or the run fails; then
``instore gatekeeper --once`` does the same job as a whole process, for information.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import BenchError, goal_verdict
from gatekeeper_setup import LAN
from nslib import TABLE, check_set, in_ns, namespace, run_command

from hardware.gateway import Client, ClientKey, ClientState
from instore.config import load_config
from instore.db import open_database

REPO = Path(__file__).resolve().parents[1]
# The entry script, re-executed inside each namespace with --inner-reconcile.
SCRIPT = Path(__file__).resolve().with_name("gatekeeper_reconcile.py")
GOAL_RECONCILE_MS = 1000.0
INNER_TIMEOUT_S = 300.0  # one reconcile of 10,000 plus two more passes; seconds in practice


class TimedGateway:
    """Forwards to the real gateway and adds up the time spent in each call, for the breakdown.

    The overhead is two clock reads per call: three calls per reconcile.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds: dict[str, float] = {
            "healthy": 0.0,
            "ensure": 0.0,
            "listing": 0.0,
            "apply": 0.0,
        }

    def _timed(self, name: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.seconds[name] += time.perf_counter() - started

    def healthy(self) -> bool:
        return bool(self._timed("healthy", self.inner.healthy))

    def ensure(self, wanted: list[Client]) -> bool:
        return bool(self._timed("ensure", lambda: self.inner.ensure(wanted)))

    def listing(self) -> dict[ClientKey, ClientState]:
        result: dict[ClientKey, ClientState] = self._timed("listing", self.inner.listing)
        return result

    def apply(self, add: list[Client], remove: list[ClientKey]) -> None:
        self._timed("apply", lambda: self.inner.apply(add, remove))


def inner_reconcile() -> int:
    """Runs inside the namespace: time ``reconcile(full=True)`` from empty; print JSON.

    The gateway comes from the plug-in hook and the configuration from the environment, exactly
    as ``instore gatekeeper`` gets them. After the timed pass, two untimed-for-the-goal passes
    show the steady state the loop lives in: a full check with everything in place, and an
    incremental pass with nothing to do.
    """
    import hardware.gatekeeper as gatekeeper_module
    from instore.plugins import pm

    config = load_config(environ=os.environ)
    db = open_database(config.database_path, config["database"]["busy_timeout_ms"])
    gateway = pm.hook.gateway_backend(name="nftables", config=config)
    # "Empty" is the running box's table with no clients yet: load it first, untimed, so the
    # timed pass adds all N through the same batched call a busy morning would.
    gateway.ensure([])
    timed = TimedGateway(gateway)
    keeper = gatekeeper_module.Gatekeeper(db, timed, "nftables", config["portal"]["idle_minutes"])
    keeper.start()

    wanted_seconds = 0.0
    real_wanted = gatekeeper_module.wanted_clients

    def timed_wanted(database: Any) -> Any:
        nonlocal wanted_seconds
        started = time.perf_counter()
        try:
            return real_wanted(database)
        finally:
            wanted_seconds += time.perf_counter() - started

    gatekeeper_module.wanted_clients = timed_wanted  # type: ignore[assignment]

    started = time.perf_counter()
    result = keeper.reconcile(full=True)
    total = time.perf_counter() - started
    phases = {"wanted_clients": wanted_seconds, **timed.seconds}

    started = time.perf_counter()
    steady = keeper.reconcile(full=True)
    steady_full = time.perf_counter() - started
    started = time.perf_counter()
    keeper.reconcile(full=False)
    steady_incremental = time.perf_counter() - started

    report = {
        "total_ms": total * 1000,
        "phases_ms": {name: value * 1000 for name, value in phases.items()},
        "added": len(result.added),
        "authorized": result.authorized,
        "steady_full_ms": steady_full * 1000,
        "steady_full_changed": steady.changed,
        "steady_incremental_ms": steady_incremental * 1000,
    }
    print(json.dumps(report))
    return 0


@dataclass
class ReconcileRound:
    """One fresh namespace's figures, in milliseconds."""

    total_ms: float
    phases_ms: dict[str, float]
    steady_full_ms: float
    steady_incremental_ms: float
    cli_once_ms: float


def run_in_repo(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run an instore process to completion from the repository root, output captured."""
    return subprocess.run(
        command,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=INNER_TIMEOUT_S,
        check=False,
    )


def reconcile_round(
    number: int, env: dict[str, str], expected: set[ClientKey], commands: list[str]
) -> ReconcileRound:
    """One fresh namespace: the library call timed inside it, then ``gatekeeper --once``."""
    with namespace(f"r{number}", LAN) as ns:
        inner = in_ns(ns, sys.executable, str(SCRIPT), "--inner-reconcile")
        try:
            done = run_in_repo(inner, env)
        except subprocess.TimeoutExpired:
            raise BenchError(f"reconcile round {number}: no answer in {INNER_TIMEOUT_S}s") from None
        if done.returncode != 0:
            raise BenchError(
                f"reconcile round {number} failed ({done.returncode}):\n{done.stderr[-3000:]}"
            )
        report = json.loads(done.stdout.strip().splitlines()[-1])
        if report["added"] != len(expected) or report["authorized"] != len(expected):
            raise BenchError(f"reconcile round {number}: unexpected result {report}")
        if report["steady_full_changed"]:
            raise BenchError(f"reconcile round {number}: a second full pass still changed things")
        check_set(ns, expected, f"after reconcile round {number}")

        # The same job through the command line: process start-up, imports and config included.
        run_command(in_ns(ns, "nft", "delete", "table", *TABLE))
        once = in_ns(ns, sys.executable, "-m", "instore", "gatekeeper", "--once")
        started = time.perf_counter()
        done = run_in_repo(once, env)
        cli_ms = (time.perf_counter() - started) * 1000
        if done.returncode != 1:  # 1: it changed something, as it must on an empty table
            raise BenchError(
                f"instore gatekeeper --once exited {done.returncode}, expected 1:\n"
                f"{(done.stdout + done.stderr)[-3000:]}"
            )
        check_set(ns, expected, f"after instore gatekeeper --once, round {number}")
    if not commands:
        commands.append(shlex.join([sys.executable, str(SCRIPT), "--inner-reconcile"]))
        commands.append(shlex.join([sys.executable, "-m", "instore", "gatekeeper", "--once"]))
    return ReconcileRound(
        report["total_ms"],
        report["phases_ms"],
        report["steady_full_ms"],
        report["steady_incremental_ms"],
        cli_ms,
    )


def print_reconcile(rounds: list[ReconcileRound], clients: int) -> None:
    """Median and max over the rounds; the goal is read from the max, the worst fresh start."""
    totals = [r.total_ms for r in rounds]
    print()
    rounds_text = f"{len(rounds)} fresh namespace{'s' if len(rounds) > 1 else ''}"
    print(f"1. reconcile from empty to {clients:,} clients ({rounds_text}, a new process each)")
    print(f"   {'':<50} {'median':>8} {'max':>8}")

    def row(name: str, values: list[float], note: str = "") -> None:
        print(f"   {name:<50} {statistics.median(values):>8.0f} {max(values):>8.0f}  {note}")

    verdict = goal_verdict(max(totals), GOAL_RECONCILE_MS)
    goal = f"ms; goal < {GOAL_RECONCILE_MS:.0f} ms: {verdict}"
    row("Gatekeeper.reconcile(full=True)", totals, goal)
    for phase in rounds[0].phases_ms:
        row(f"  of which {phase}", [r.phases_ms[phase] for r in rounds], "ms")
    row(
        "  of which the rest (diff, status row)",
        [r.total_ms - sum(r.phases_ms.values()) for r in rounds],
        "ms",
    )
    row("instore gatekeeper --once, whole process", [r.cli_once_ms for r in rounds], "ms, info")
    row(
        f"full pass, {clients:,} in place, nothing to do",
        [r.steady_full_ms for r in rounds],
        "ms, info",
    )
    row(
        "incremental pass, nothing to do",
        [r.steady_incremental_ms for r in rounds],
        "ms, info",
    )
    print(f"   nft lists exactly the {clients:,} seeded elements after every round: yes")
