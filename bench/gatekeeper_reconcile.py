"""How fast the gatekeeper turns 10,000 live sessions into nftables set elements, and one more.

Two figures from issue 3, both measured with the real ``NftablesGateway`` and the real ``nft``
inside a throw-away network namespace, so the host's firewall is never touched:

1. Reconcile from empty to 10,000 authorized clients: ``Gatekeeper.reconcile(full=True)`` timed
   in a process running inside a fresh namespace (the script re-executes itself there with
   ``ip netns exec``), repeated over fresh namespaces; goal < 1 s. Afterwards ``nft`` itself must
   list exactly the 10,000 seeded (MAC, IP) pairs, or the run fails.
2. One more client with 10,000 present: the real ``instore gatekeeper`` loop runs in a namespace;
   the script commits sessions with ``sessions.authorize_client`` and nudges the loop with
   ``nudge.send_nudge``, exactly as the portal does, and times commit → element in the set, with
   and without the nudge; goal p99 < 100 ms with the nudge. A second loop whose periodic full
   check is pushed out of the run (``reconcile_seconds=3600``) shows the nudged pass by itself,
   apart from the time a sign-in waits when it lands during a full check.

"In the set" is observed with ``nft -j monitor new elements`` running in the namespace: the kernel
sends the event when the transaction that adds the element commits, so the event's arrival is the
moment the element is there, give or take the monitor's own delivery lag, which the script
measures and prints. Polling ``nft get element`` is no substitute: with 10,000 elements every call
loads the whole set first and takes tens of milliseconds, which is coarser than the goal. Each
sample is still confirmed afterwards with one ``nft get element``.

The script prints figures; it is not a test and asserts nothing about them. It needs root (network
namespaces, nftables). Every namespace is deleted and every process it started is stopped on exit,
on errors, Ctrl-C and SIGTERM included.

This script is the command line, the order of the parts and the footer. The parts, each with its
report, live in ``gatekeeper_from_empty.py`` and ``gatekeeper_one_more.py``, what both start from
in ``gatekeeper_setup.py``, and namespaces and ``nft`` in ``nslib.py``.

Run from the repository root: ``sudo .venv/bin/python bench/gatekeeper_reconcile.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from benchlib import instore_variables, invocation, machine_info, print_reproduce, run_guarded
from gatekeeper_from_empty import ReconcileRound, inner_reconcile, print_reconcile, reconcile_round
from gatekeeper_one_more import (
    DEFAULT_LOOP,
    ISOLATED_LOOP,
    NO_FULL_CHECK_SECONDS,
    LoopResult,
    loop_part,
    print_loop,
)
from gatekeeper_setup import hermetic_env, prepare_dir, seed_sessions
from nslib import run_command

from instore.config import DEFAULTS

PROG = "gatekeeper_reconcile"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; ``--inner-reconcile`` is part 1's re-execution inside a namespace."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000, help="sessions present (10000)")
    parser.add_argument("--rounds", type=int, default=5, help="reconcile repetitions (5)")
    parser.add_argument(
        "--samples", type=int, default=100, help="sign-ins timed, with and without nudge (100)"
    )
    parser.add_argument(
        "--pause-ms",
        type=int,
        default=200,
        help="random pause of up to this long between sign-ins (200)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for the pauses (1)")
    parser.add_argument(
        "--only", choices=("reconcile", "loop"), help="run one of the two parts only"
    )
    parser.add_argument(
        "--no-isolated",
        action="store_true",
        help=f"skip the loop run with reconcile_seconds={NO_FULL_CHECK_SECONDS}",
    )
    parser.add_argument("--inner-reconcile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 65_000:
        parser.error("--clients must be 1..65000")
    if not 1 <= args.rounds <= 50 or not 1 <= args.samples <= 10_000:
        parser.error("--rounds must be 1..50 and --samples 1..10000")
    if not 0 <= args.pause_ms <= 10_000:
        parser.error("--pause-ms must be 0..10000")
    args.pause_s = args.pause_ms / 1000
    return args


def bench(args: argparse.Namespace) -> int:
    """Part 1, then part 2 (or one of them), then the report of both and the footer."""
    full_every = DEFAULTS["gateway"]["reconcile_seconds"]
    rounds: list[ReconcileRound] = []
    loops: list[LoopResult] = []
    commands: list[str] = []
    with tempfile.TemporaryDirectory(prefix="instore-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.only in (None, "reconcile"):
            env = prepare_dir(tmp / "reconcile")
            print(f"seeding {args.clients} sessions …", flush=True)
            expected = seed_sessions(env, args.clients)
            for number in range(1, args.rounds + 1):
                print(f"reconcile round {number}/{args.rounds} …", flush=True)
                rounds.append(reconcile_round(number, env, expected, commands))
        if args.only in (None, "loop"):
            rng = random.Random(args.seed)  # noqa: S311 (pauses between sign-ins, not secrets)
            loops.append(loop_part(args, tmp / "loop", rng, full_every, DEFAULT_LOOP))
            if not args.no_isolated:
                loops.append(
                    loop_part(args, tmp / "isolated", rng, NO_FULL_CHECK_SECONDS, ISOLATED_LOOP)
                )
            commands.append(loops[0].command)
    if rounds:
        print_reconcile(rounds, args.clients)
    if loops:
        print_loop(loops, args.clients)
    print()
    nft = run_command(["nft", "--version"]).strip()
    for line in [*machine_info(f"SQLite {sqlite3.sqlite_version}"), f"         {nft}"]:
        print(line)
    print_reproduce(
        invocation(sudo=True),
        "  each command runs under `ip netns exec NS` in the repository root, environment:",
        instore_variables(hermetic_env(Path("$TMP"))),
        commands,
    )
    if loops and not args.no_isolated:
        extra = f"INSTORE_GATEWAY_RECONCILE_SECONDS={NO_FULL_CHECK_SECONDS}"
        print(f"    (the last loop run adds {extra})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Exit 0 figures printed, 1 a step failed, 2 not root or ``ip``/``nft`` missing, 130 Ctrl-C."""
    args = parse_args(argv)
    if args.inner_reconcile:
        return inner_reconcile()
    if os.geteuid() != 0:
        print(
            f"{PROG}: needs root (it creates network namespaces and nftables tables inside "
            f"them); run: {invocation(sudo=True)}",
            file=sys.stderr,
        )
        return 2
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        print(
            f"{PROG}: {' and '.join(missing)} not found: install iproute2 and nftables",
            file=sys.stderr,
        )
        return 2
    return run_guarded(
        PROG,
        lambda: bench(args),
        interrupted="namespaces deleted, processes stopped",
        # Ctrl-C must unwind even when started in the background, where SIGINT arrives ignored.
        ctrl_c_in_background=True,
    )


if __name__ == "__main__":
    sys.exit(main())
