"""Part 2 of the gatekeeper bench: one more client, with N present, through the running loop.

The real ``instore gatekeeper`` loop runs in a namespace against N seeded sessions; sign-ins are
committed with ``sessions.authorize_client`` and the loop nudged with ``nudge.send_nudge``,
exactly as the portal does, and each is timed from the commit to its element's add event in
``nft monitor``. Goal p99 < 100 ms with the nudge. Without the nudge (the loop's poll) is shown for
information, and a second loop whose periodic full check is pushed out of the run
(``reconcile_seconds=3600``) shows the nudged pass by itself, apart from the time a sign-in waits
when it lands during a full check.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import shlex
import sqlite3
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import BenchError, goal_verdict, log_tail, percentile, stop_process
from gatekeeper_setup import LAN, client_key, prepare_dir, seed_sessions
from nslib import Monitor, check_set, element_present, in_ns, namespace, run_command

from hardware.gateway import ClientKey
from instore import sessions
from instore.config import load_config
from instore.db import open_database
from instore.nudge import send_nudge

REPO = Path(__file__).resolve().parents[1]
CALIBRATION_FIRST_IP = ipaddress.IPv4Address("100.120.0.1")
CALIBRATION_MAC = 0x03  # second octet of the calibration elements' MACs
CALIBRATION_TABLE = ("inet", "instore_bench_calibration")  # the gatekeeper never looks at it
CALIBRATION_SAMPLES = 20

# The loop's periodic full check for the run that isolates the nudge path: not within the run.
NO_FULL_CHECK_SECONDS = 3600
GOAL_P99_MS = 100.0

LOAD_TIMEOUT_S = 120.0  # the loop's first full pass with 10,000 sessions
NUDGED_WAIT_S = 5.0  # a nudged change later than this counts as lost: the run fails
PERIODIC_WAIT_S = 15.0  # without a nudge the loop looks every 0.25 s and fully every few seconds
MONITOR_READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def calibrate(ns: str, monitor: Monitor) -> list[float]:
    """The monitor's delivery lag: event arrival minus the return of the ``nft`` that added it.

    The kernel has committed before that ``nft`` returns, so this bounds how late the monitor
    reports a commit (negative values: the event arrived before ``nft`` exited). A table of its
    own, so the gatekeeper neither sees nor removes these elements.
    """
    family, table = CALIBRATION_TABLE
    run_command(
        in_ns(ns, "nft", "-f", "-"),
        stdin=f"table {family} {table} {{\n    set s {{ type ether_addr . ipv4_addr; }}\n}}\n",
    )
    # The monitor subscribes only after loading nft's cache (every element of the allowed set);
    # until an element added now is reported, it is not listening yet.
    deadline = time.monotonic() + MONITOR_READY_TIMEOUT_S
    ready_index = CALIBRATION_SAMPLES
    while True:
        mac, ip = client_key(CALIBRATION_MAC, CALIBRATION_FIRST_IP, ready_index)
        run_command(in_ns(ns, "nft", "add", "element", family, table, "s", f"{{ {mac} . {ip} }}"))
        if monitor.wait_for((mac, ip), 0.5) is not None:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"nft monitor reported nothing in {MONITOR_READY_TIMEOUT_S:.0f}s")
        ready_index += 1
    lags = []
    for index in range(CALIBRATION_SAMPLES):
        mac, ip = client_key(CALIBRATION_MAC, CALIBRATION_FIRST_IP, index)
        run_command(in_ns(ns, "nft", "add", "element", family, table, "s", f"{{ {mac} . {ip} }}"))
        returned = time.perf_counter()
        arrived = monitor.wait_for((mac, ip), NUDGED_WAIT_S)
        if arrived is None:
            raise BenchError("nft monitor reported no event for a calibration element")
        lags.append((arrived - returned) * 1000)
    run_command(in_ns(ns, "nft", "delete", "table", family, table))
    return lags


@dataclass
class Samples:
    """One series' timings, in milliseconds, one entry per sign-in."""

    label: str
    latency_ms: list[float] = field(default_factory=list)  # commit returned → element event
    commit_ms: list[float] = field(default_factory=list)  # the authorize_client call itself
    get_element_ms: list[float] = field(default_factory=list)  # one confirming nft get element


def sample(
    label: str,
    ns: str,
    env: dict[str, str],
    monitor: Monitor,
    keeper: subprocess.Popen[bytes],
    clients: list[ClientKey],
    nudge: bool,
    pause_s: float,
    rng: random.Random,
) -> Samples:
    """Sign in each client as the portal does, and time its arrival in the set.

    Latency runs from the return of ``authorize_client`` (its COMMIT has happened, the moment
    the portal would send the nudge) to the element's add event. Random pauses between clients
    spread the commits over the loop's periodic full check instead of locking onto its phase.
    """
    config = load_config(environ=env)
    db = open_database(config.database_path, config["database"]["busy_timeout_ms"])
    nudge_path = config["gateway"]["nudge_socket"]
    result = Samples(label)
    try:
        for mac, ip in clients:
            if keeper.poll() is not None:
                raise BenchError(f"the gatekeeper exited with {keeper.returncode} mid-run")
            started = time.perf_counter()
            sessions.authorize_client(
                db,
                mac=mac,
                ip=ip,
                member_id=None,
                hours=config["portal"]["session_hours"],
                idle_minutes=config["portal"]["idle_minutes"],
            )
            committed = time.perf_counter()
            if nudge and not send_nudge(nudge_path):
                raise BenchError(f"nobody listens on the nudge socket {nudge_path}")
            arrived = monitor.wait_for((mac, ip), NUDGED_WAIT_S if nudge else PERIODIC_WAIT_S)
            if arrived is None:
                raise BenchError(f"{label}: {mac} . {ip} never reached the set")
            checked = time.perf_counter()
            if not element_present(ns, (mac, ip)):
                raise BenchError(f"{label}: monitor reported {mac} . {ip} but nft cannot get it")
            result.get_element_ms.append((time.perf_counter() - checked) * 1000)
            result.commit_ms.append((committed - started) * 1000)
            result.latency_ms.append((arrived - committed) * 1000)
            time.sleep(rng.uniform(0, pause_s))
    finally:
        db.conn.close()
    return result


def wait_loaded(
    env: dict[str, str], keeper: subprocess.Popen[bytes], count: int, log: Path
) -> float:
    """Seconds until the loop's first full pass has authorized all ``count`` clients."""
    db_path = env["INSTORE_DATABASE_PATH"]
    started = time.monotonic()
    while time.monotonic() - started < LOAD_TIMEOUT_S:
        if keeper.poll() is not None:
            raise BenchError(
                f"the gatekeeper exited with {keeper.returncode} before loading.\n"
                f"--- its log ---\n{log_tail(log)}"
            )
        with suppress(sqlite3.OperationalError):  # the table appears with its first migration
            conn = sqlite3.connect(db_path, timeout=5)
            try:
                row = conn.execute(
                    "SELECT authorized, last_full_check_at, pid FROM gatekeeper_status"
                ).fetchone()
            finally:
                conn.close()
            if row and row[0] >= count and row[1] and row[2] == keeper.pid:
                return time.monotonic() - started
        time.sleep(0.05)
    raise BenchError(f"the gatekeeper did not load {count} clients in {LOAD_TIMEOUT_S:.0f}s")


@dataclass(frozen=True)
class Series:
    """One set of sign-ins: how they reach the gatekeeper, and whose (MAC, IP) they use."""

    label: str
    nudge: bool
    mac_group: int
    first_ip: ipaddress.IPv4Address
    goal: bool = False  # the row the p99 goal is about; the others are for information


@dataclass
class LoopResult:
    """One gatekeeper loop's run: its series, and what else the report prints about it."""

    reconcile_seconds: int
    load_s: float
    lag_ms: list[float]
    runs: list[tuple[Series, Samples]]
    log_problems: list[str]
    command: str


# The loop as shipped: nudged (the goal) and not nudged; then the same loop with its periodic
# full check pushed out of the run, which isolates what a nudged change costs by itself.
DEFAULT_LOOP = [
    Series("with nudge", True, 0x01, ipaddress.IPv4Address("100.100.0.1"), goal=True),
    Series("without nudge (data_version poll)", False, 0x02, ipaddress.IPv4Address("100.110.0.1")),
]
ISOLATED_LOOP = [
    Series("with nudge, no full check meanwhile", True, 0x04, ipaddress.IPv4Address("100.90.0.1")),
]
EXPECTED_START_WARNING = "nftables table missing; loaded it"  # every start in a fresh namespace


def loop_part(
    args: argparse.Namespace,
    tmp: Path,
    rng: random.Random,
    reconcile_seconds: int,
    series: list[Series],
) -> LoopResult:
    """Start ``instore gatekeeper`` in a namespace with N sessions, then sample sign-ins."""
    env = prepare_dir(tmp)
    env["INSTORE_GATEWAY_RECONCILE_SECONDS"] = str(reconcile_seconds)
    print(f"seeding {args.clients} sessions for the loop …", flush=True)
    expected = seed_sessions(env, args.clients)
    log = tmp / "gatekeeper.log"
    command = [sys.executable, "-m", "instore", "gatekeeper"]
    keeper: subprocess.Popen[bytes] | None = None
    monitor: Monitor | None = None
    with namespace(f"loop{reconcile_seconds}", LAN) as ns:
        try:
            with log.open("wb") as log_file:
                keeper = subprocess.Popen(
                    in_ns(ns, *command),
                    env=env,
                    cwd=REPO,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches us; we stop it in order
                )
            print(
                f"starting instore gatekeeper (full check every {reconcile_seconds}s) …",
                flush=True,
            )
            load_s = wait_loaded(env, keeper, args.clients, log)
            check_set(ns, expected, "after the loop's first full pass")
            monitor = Monitor(ns)
            monitor.start()
            lag = calibrate(ns, monitor)
            runs = []
            for one in series:
                clients = [client_key(one.mac_group, one.first_ip, i) for i in range(args.samples)]
                print(f"  {len(clients)} sign-ins {one.label} …", flush=True)
                samples = sample(
                    one.label, ns, env, monitor, keeper, clients, one.nudge, args.pause_s, rng
                )
                runs.append((one, samples))
                expected |= set(clients)
            check_set(ns, expected, "after the sign-ins")
        finally:
            if monitor is not None:
                monitor.stop()
            stop_process(keeper, STOP_TIMEOUT_S)
    problems = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if ("level=error" in line or "level=warning" in line or "Traceback" in line)
        and EXPECTED_START_WARNING not in line
    ]
    return LoopResult(reconcile_seconds, load_s, lag, runs, problems, shlex.join(command))


def print_loop(results: list[LoopResult], clients: int) -> None:
    """Per series p50/p99/max; then the side figures that say how far the timer can be trusted."""
    print()
    print(
        f"2. one more client with {clients:,} present: the instore gatekeeper loop in a namespace"
    )
    header = "commit → element in the set, ms"
    print(f"   {header:<48} {'n':>4} {'p50':>7} {'p99':>7} {'max':>7}")
    for result in results:
        print(
            f"   full check every {result.reconcile_seconds}s "
            f"(loaded the {clients:,} in {result.load_s:.1f}s):"
        )
        for series, samples in result.runs:
            values = samples.latency_ms
            p99 = percentile(values, 0.99)
            note = f"goal p99 < {GOAL_P99_MS:.0f} ms: {goal_verdict(p99, GOAL_P99_MS)}"
            over = sum(value >= GOAL_P99_MS for value in values)
            print(
                f"     {series.label:<46} {len(values):>4} {percentile(values, 0.5):>7.1f} "
                f"{p99:>7.1f} {max(values):>7.1f}  {note if series.goal else 'info'}; "
                f"{over} ≥ {GOAL_P99_MS:.0f} ms"
            )
    everything = [samples for result in results for _, samples in result.runs]
    commit = [v for samples in everything for v in samples.commit_ms]
    get = [v for samples in everything for v in samples.get_element_ms]
    lag = [v for result in results for v in result.lag_ms]
    print(
        f"   authorize_client call (the portal's commit, not counted above): median "
        f"{statistics.median(commit):.1f} ms, max {max(commit):.1f} ms"
    )
    print(
        f"   nft monitor delivery lag (event after the adding nft returned): median "
        f"{statistics.median(lag):.2f} ms, max {max(lag):.2f} ms over {len(lag)}"
    )
    print(
        f"   one `nft get element` with {clients:,} present (why it is not the timer): median "
        f"{statistics.median(get):.1f} ms"
    )
    problems = [line for result in results for line in result.log_problems]
    if problems:
        print(f"   gatekeeper log: {len(problems)} warning/error line(s), first:")
        for line in problems[:3]:
            print(f"     {line[:200]}")
    else:
        print("   gatekeeper logs: no warnings or errors beyond the table load at start")
