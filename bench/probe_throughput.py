"""How fast the portal answers connectivity probes, as a ratio of a bare Flask app.

Every phone in the store repeats its OS connectivity check every few seconds, so the probe path
(``portal/captive.py``) is the portal's hot path. Absolute requests per second depend on the
machine; what we track is the probe's throughput relative to a bare Flask ``return "", 204``
served by gunicorn with *identical* settings, measured beside it on the same machine. The goal is
a probe at 0.8x of bare Flask or better.

The script prints figures; it is not a test and asserts nothing about them. It starts one server
at a time on a free loopback port, checks with one request that the answer is the expected one
(so an error page is never benchmarked), loads it with ``wrk`` and stops it. Every step is
bounded in time and every server is stopped on exit, Ctrl-C or SIGTERM included.

Run from the repository root: ``.venv/bin/python bench/probe_throughput.py [--duration 5]``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from hardware.clients import DemoLookup
from instore import members, sessions
from instore.config import DEFAULTS, load_config
from instore.db import open_database

REPO = Path(__file__).resolve().parents[1]
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"

LOOPBACK = "127.0.0.1"
PROBE_HOST = "connectivitycheck.gstatic.com"
PROBE_PATH = "/generate_204"
API_PATH = "/api/captive"
BARE_APP = "bench.bare_app:app"
PORTAL_APP = "portal.wsgi:app"
BARE_TARGET = "bare flask 204"
EMPTY_CONFIG = "instore.toml"
GOAL_RATIO = 0.8

START_TIMEOUT_S = 30.0  # gunicorn + two workers importing Flask take a second or two
STOP_TIMEOUT_S = 15.0  # deploy/gunicorn.conf.py's graceful_timeout is 10 s; then SIGKILL
REQUEST_TIMEOUT_S = 5.0
WRK_GRACE_S = 30.0  # wrk's own run is --duration; this bounds a wrk that hangs anyway
PYTHON_LOAD_MAX_THREADS = 32  # the fallback generator is GIL-bound; more threads only add noise

# Environment variables the portal's config reads; inherited ones would make the run unhermetic.
INSTORE_ENV_PREFIX = "INSTORE_"


class BenchError(Exception):
    """A run that cannot produce trustworthy figures; the message says what went wrong."""


@dataclass(frozen=True)
class Target:
    """One measured URL: what to send and what answer proves we are not measuring an error."""

    name: str
    path: str
    host: str  # the Host header; the portal routes on it
    expected_status: int
    check: Callable[[http.client.HTTPResponse, bytes], str | None] | None = None


@dataclass
class Result:
    target: str
    requests_per_s: float
    p99_ms: float
    requests: int
    errors: str = ""  # unexpected statuses: the figures are not the probe's; the run fails
    warnings: str = ""  # socket errors (timeouts under overload): shown, figures still stand
    informational: bool = False  # shown, but not part of the 0.8x goal
    # Server CPU (master + workers, user + system) per request. It moves much less than req/s
    # when other processes compete for the cores, so it tells a slow path from a busy machine.
    cpu_us_per_request: float | None = None


@dataclass
class Server:
    """A gunicorn master started in its own process group, so all its workers stop with it."""

    label: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, not gunicorn; we stop it in order
            )

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"

    def wait_ready(self, probe: Target, timeout_s: float) -> None:
        """Return once the server answers at all; raise BenchError if it exits or times out."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.label}: gunicorn exited with status {self.process.returncode} "
                    f"before serving.\n--- server log ---\n{self.log_tail()}"
                )
            try:
                fetch(self.port, probe.host, probe.path, timeout_s=1.0)
                return
            except OSError as exc:
                last_error = str(exc)
                time.sleep(0.1)
        raise BenchError(
            f"{self.label}: not answering on {LOOPBACK}:{self.port} after {timeout_s:.0f}s "
            f"(last error: {last_error}).\n--- server log ---\n{self.log_tail()}"
        )

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by every process in the server's group; None off Linux."""
        if self.process is None or not Path("/proc/self/stat").exists():
            return None
        ticks = sum(int(fields[11]) + int(fields[12]) for fields in group_stats(self.process.pid))
        return ticks / os.sysconf("SC_CLK_TCK")  # fields 14 and 15 of stat: utime, stime

    def stop(self) -> None:
        """SIGTERM the master (graceful), then SIGKILL the group if it lingers.

        The group id is the master's pid (``start_new_session``), so only processes this script
        started are signalled, and only while some of them are still alive.
        """
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT_S)
        # Workers normally exit with the master; make sure none is left holding the port.
        if group_stats(process.pid):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def group_stats(pgid: int) -> list[list[str]]:
    """``/proc/PID/stat`` fields after the command name, for each live process in group pgid."""
    found = []
    try:
        entries = [entry for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # state, ppid, pgrp, …
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(fields)
    return found


@contextmanager
def running(server: Server, ready_probe: Target, timeout_s: float) -> Iterator[Server]:
    """Start ``server``, wait until it answers, and always stop it afterwards."""
    print(f"starting {server.label} on {LOOPBACK}:{server.port} …", flush=True)
    try:
        server.start()
        server.wait_ready(ready_probe, timeout_s)
        yield server
    finally:
        server.stop()


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(
    port: int, host: str, path: str, timeout_s: float = REQUEST_TIMEOUT_S
) -> tuple[http.client.HTTPResponse, bytes]:
    """One GET with the given Host header on a fresh connection."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def verify(port: int, target: Target) -> None:
    """One request before the load: the status (and shape) must be the one we mean to measure."""
    try:
        response, body = fetch(port, target.host, target.path)
    except OSError as exc:
        raise BenchError(f"{target.name}: verification request failed: {exc}") from None
    problem = None
    if response.status != target.expected_status:
        problem = f"status {response.status}, expected {target.expected_status}"
    elif target.check is not None:
        problem = target.check(response, body)
    if problem:
        raise BenchError(
            f"{target.name}: refusing to benchmark an unexpected answer: {problem}\n"
            f"  GET http://{target.host}{target.path} via {LOOPBACK}:{port}\n"
            f"  body: {body[:300]!r}"
        )


def _check_empty(response: http.client.HTTPResponse, body: bytes) -> str | None:
    return f"204 with a body of {len(body)} bytes" if body else None


def _check_signin_redirect(response: http.client.HTTPResponse, body: bytes) -> str | None:
    location = response.getheader("Location") or ""
    return None if "/signin" in location else f"redirect to {location!r}, not to /signin"


def _check_captive_json(response: http.client.HTTPResponse, body: bytes) -> str | None:
    content_type = response.getheader("Content-Type") or ""
    if not content_type.startswith("application/captive+json"):
        return f"Content-Type {content_type!r}"
    return None


# ---------------------------------------------------------------------------------------------
# Load generation


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> tuple[float, float, int, str, str]:
    """Requests/s, p99 in ms, request count, then wrk's status-error and socket-error lines.

    wrk prints "Non-2xx or 3xx responses: N" only when some answer was 4xx/5xx, and
    "Socket errors: …" only when a connection failed or timed out.
    """
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    count = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    if not (rps and p99 and count):
        raise BenchError(f"cannot read wrk's output:\n{output}")
    lines = [line.strip() for line in output.splitlines()]
    return (
        float(rps.group(1)),
        float(p99.group(1)) * _UNIT_MS[p99.group(2)],
        int(count.group(1)),
        "; ".join(line for line in lines if line.startswith("Non-2xx or 3xx responses")),
        "; ".join(line for line in lines if line.startswith("Socket errors")),
    )


def wrk_command(
    args: argparse.Namespace, port: int, target: Target, duration: int | None = None
) -> list[str]:
    return [
        args.wrk,
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{duration or args.duration}s",
        "--latency",
        "--timeout",
        f"{REQUEST_TIMEOUT_S:.0f}s",
        "-H",
        f"Host: {target.host}",
        f"http://{LOOPBACK}:{port}{target.path}",
    ]


def run_wrk(args: argparse.Namespace, port: int, target: Target, duration: int) -> Result:
    command = wrk_command(args, port, target, duration)
    if args.verbose:
        print("  $ " + shlex.join(command), flush=True)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration + WRK_GRACE_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{target.name}: wrk did not finish within its time bound") from None
    if done.returncode != 0:
        raise BenchError(f"{target.name}: wrk failed ({done.returncode}):\n{done.stderr}")
    rps, p99, count, errors, warnings = parse_wrk(done.stdout)
    if args.verbose:
        print(done.stdout, flush=True)
    return Result(target.name, rps, p99, count, errors, warnings)


def run_python_load(args: argparse.Namespace, port: int, target: Target, duration: int) -> Result:
    """Fallback when wrk is absent: keep-alive http.client threads for --duration seconds.

    The GIL caps it well below wrk, so its figures are only comparable with each other.
    """
    workers = min(args.connections, PYTHON_LOAD_MAX_THREADS)
    deadline = time.monotonic() + duration
    lock = threading.Lock()
    latencies: list[float] = []
    unexpected: list[int] = []
    socket_errors: list[int] = []

    def hammer() -> None:
        mine: list[float] = []
        bad = failed = 0
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", target.path, headers={"Host": target.host})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)
                continue
            mine.append(time.perf_counter() - started)
            bad += response.status != target.expected_status
            if response.will_close:
                conn.close()
        conn.close()
        with lock:
            latencies.extend(mine)
            unexpected.append(bad)
            socket_errors.append(failed)

    started = time.monotonic()
    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + REQUEST_TIMEOUT_S + 5)
    elapsed = time.monotonic() - started
    if not latencies:
        raise BenchError(f"{target.name}: the Python load generator completed no request")
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    errors = f"unexpected status: {sum(unexpected)}" if sum(unexpected) else ""
    warnings = f"socket errors: {sum(socket_errors)}" if sum(socket_errors) else ""
    return Result(target.name, len(latencies) / elapsed, p99, len(latencies), errors, warnings)


def load(args: argparse.Namespace, port: int, target: Target, duration: int) -> Result:
    if args.wrk:
        return run_wrk(args, port, target, duration)
    return run_python_load(args, port, target, duration)


def measure(args: argparse.Namespace, server: Server, target: Target) -> Result:
    """Verify the answer, warm up (discarded), measure, and verify again."""
    port = server.port
    verify(port, target)
    if args.warmup:
        # Fresh workers still import lazily and open their per-thread SQLite connections; the
        # first target measured on a server would otherwise pay for it.
        load(args, port, target, args.warmup)
    print(f"  measuring {target.name} for {args.duration}s …", flush=True)
    cpu_before = server.cpu_seconds()
    result = load(args, port, target, args.duration)
    cpu_after = server.cpu_seconds()
    if cpu_before is not None and cpu_after is not None and result.requests:
        result.cpu_us_per_request = (cpu_after - cpu_before) / result.requests * 1e6
    verify(port, target)  # still the same answer afterwards (e.g. session not expired mid-run)
    return result


# ---------------------------------------------------------------------------------------------
# Setup


def hermetic_env(tmp: Path, port: int, workers: int, threads: int) -> dict[str, str]:
    """The environment both servers run with: same gunicorn settings, nothing inherited.

    deploy/gunicorn.conf.py reads workers and threads from the instore config, so both servers
    get them the same way, through INSTORE_PORTAL_WORKERS/THREADS. INSTORE_CONFIG points at an
    empty file (the caller creates it) so neither a developer's INSTORE_* variables nor
    /etc/instore/instore.toml leak in.
    """
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(INSTORE_ENV_PREFIX)
    }
    env.update(
        INSTORE_CONFIG=str(tmp / EMPTY_CONFIG),
        INSTORE_DATABASE_PATH=str(tmp / "instore.db"),
        INSTORE_PORTAL_BIND=f"{LOOPBACK}:{port}",
        INSTORE_PORTAL_PUBLIC_URL=f"http://{LOOPBACK}:{port}",
        INSTORE_PORTAL_SECRET_KEY=secrets.token_urlsafe(32),
        INSTORE_PORTAL_WORKERS=str(workers),
        INSTORE_PORTAL_THREADS=str(threads),
        INSTORE_HARDWARE_CLIENT_LOOKUP="demo",
        INSTORE_LOGGING_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def gunicorn_command(bind: str, app_uri: str) -> list[str]:
    """Identical flags for every server; only the application differs.

    Settings come from deploy/gunicorn.conf.py (worker class, workers, threads, keep-alive, no
    access log); --bind overrides its bind and the positional app overrides its wsgi_app. Apps
    are imported relative to the repository root, which gunicorn puts on sys.path (its chdir).
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "--bind",
        bind,
        app_uri,
    ]


def resolved_gunicorn_settings(env: dict[str, str], app_uri: str) -> dict[str, str]:
    """What gunicorn itself resolves from the config file, to print and to compare servers."""
    command = [*gunicorn_command(env["INSTORE_PORTAL_BIND"], app_uri), "--print-config"]
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-25:])
        raise BenchError(f"gunicorn cannot load {app_uri} with {GUNICORN_CONF}:\n{tail}")
    wanted = ("worker_class", "workers", "threads", "keepalive", "accesslog", "timeout")
    settings = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition("=")
        if name.strip() in wanted:
            settings[name.strip()] = value.strip()
    return settings


def seed_authorized_client(env: dict[str, str]) -> str:
    """A member with a live session for 127.0.0.1 and the MAC the demo lookup derives for it.

    Written before the portal starts, to the file the portal will open; returns the MAC.
    """
    mac = DemoLookup().mac_for(LOOPBACK)
    assert mac is not None
    config = load_config(environ=env)  # exactly the configuration the portal will read
    db = open_database(config.database_path, config["database"]["busy_timeout_ms"])  # migrates
    try:
        member = members.create_member(
            db, display_name="Bench Shopper", password=secrets.token_urlsafe(16)
        )
        sessions.authorize_client(
            db,
            mac=mac,
            ip=LOOPBACK,
            member_id=member.id,
            hours=config["portal"]["session_hours"],
            idle_minutes=config["portal"]["idle_minutes"],
        )
    finally:
        db.conn.close()
    return mac


def revoke_client(db_path: Path, mac: str) -> None:
    """End the bench client's session while the portal runs (WAL: the workers see it at once)."""
    db = open_database(db_path)
    try:
        if not sessions.revoke_mac(db, mac, "benchmark: unauthorized state"):
            raise BenchError("no live session to revoke for the unauthorized measurement")
    finally:
        db.conn.close()


# ---------------------------------------------------------------------------------------------
# Report


def machine_info(args: argparse.Namespace) -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    wrk_version = "absent (Python fallback load generator)"
    if args.wrk:
        done = subprocess.run(
            [args.wrk, "-v"], capture_output=True, text=True, timeout=10, check=False
        )
        wrk_version = (done.stdout or done.stderr).splitlines()[0] if done.stdout else "wrk"
    import gunicorn

    return [
        f"machine: nproc={usable} (cpu_count={os.cpu_count()}), load average {load}",
        f"         {platform.platform()}, Python {platform.python_version()}, "
        f"gunicorn {gunicorn.__version__}",
        f"load:    {wrk_version}; {args.wrk_threads} threads, {args.connections} connections, "
        f"{args.duration}s per target, on the same machine as the server",
    ]


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def summarize(rounds: list[list[Result]]) -> list[Result]:
    """Per target, the medians over the rounds (one round: as measured)."""
    summary = []
    for index, first in enumerate(rounds[0]):
        runs = [results[index] for results in rounds]
        summary.append(
            Result(
                first.target,
                statistics.median(r.requests_per_s for r in runs),
                statistics.median(r.p99_ms for r in runs),
                sum(r.requests for r in runs),
                "; ".join(r.errors for r in runs if r.errors),
                "; ".join(r.warnings for r in runs if r.warnings),
                first.informational,
                _median([r.cpu_us_per_request for r in runs]),
            )
        )
    return summary


def print_table(summary: list[Result], rounds: list[list[Result]]) -> None:
    """Target, req/s, p99 and ratio to bare Flask; then server CPU per request and its ratio.

    "cpu vs bare" is bare Flask's CPU per request over the target's, so like "vs bare" it reads
    "higher is better" and is what the req/s ratio would be on an otherwise idle machine.
    """
    bare = summary[0]
    print()
    if len(rounds) > 1:
        print(f"medians over {len(rounds)} rounds; 'per round' is each round's own req/s ratio")
    print(
        f"{'target':<32} {'req/s':>7} {'p99 ms':>7} {'vs bare':>7} "
        f"{'cpu µs/req':>10} {'cpu vs bare':>11}  notes"
    )
    print(f"{'-' * 32} {'-' * 7} {'-' * 7} {'-' * 7} {'-' * 10} {'-' * 11}  {'-' * 5}")
    for index, result in enumerate(summary):
        ratio = result.requests_per_s / bare.requests_per_s if bare.requests_per_s else 0.0
        cpu, cpu_ratio = "-", "-"
        if result.cpu_us_per_request:
            cpu = f"{result.cpu_us_per_request:.0f}"
            if bare.cpu_us_per_request:
                cpu_ratio = f"{bare.cpu_us_per_request / result.cpu_us_per_request:.2f}x"
        notes = []
        if index == 0:
            notes.append("baseline")
        elif result.informational:
            notes.append("information only")
        else:
            notes.append("meets goal" if ratio >= GOAL_RATIO else f"BELOW {GOAL_RATIO}x GOAL")
        if len(rounds) > 1 and index > 0:
            per_round = [r[index].requests_per_s / r[0].requests_per_s for r in rounds]
            notes.append("per round " + " ".join(f"{value:.2f}x" for value in per_round))
        if result.errors:
            notes.append(f"ERRORS: {result.errors}")
        if result.warnings:
            notes.append(result.warnings)
        print(
            f"{result.target:<32} {result.requests_per_s:>7.0f} {result.p99_ms:>7.1f} "
            f"{ratio:>6.2f}x {cpu:>10} {cpu_ratio:>11}  {', '.join(notes)}"
        )


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    # deploy/gunicorn.conf.py reads workers and threads from [portal]; a bench run uses the
    # shipped defaults rather than whatever /etc/instore/instore.toml this machine may have.
    defaults = DEFAULTS["portal"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per target (default 5)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults["workers"],
        help=f"gunicorn workers for every server (default portal.workers={defaults['workers']})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=defaults["threads"],
        help=f"gunicorn threads for every server (default portal.threads={defaults['threads']})",
    )
    parser.add_argument(
        "--load-generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk if installed (auto), or force one",
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of discarded load before each (default 1)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat everything, report medians (default 1)"
    )
    parser.add_argument("--verbose", action="store_true", help="show wrk commands and output")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.duration > 600:
        parser.error("--duration must be between 1 and 600 seconds")
    if args.warmup < 0 or args.warmup > 60 or args.rounds < 1 or args.rounds > 20:
        parser.error("--warmup must be 0..60 seconds and --rounds 1..20")
    if args.connections < 1 or args.wrk_threads < 1 or args.connections < args.wrk_threads:
        parser.error("--connections must be at least --wrk-threads, both positive")
    wrk = shutil.which("wrk")
    if args.load_generator == "wrk" and not wrk:
        parser.error("wrk is not installed (apt-get install wrk), or use --load-generator python")
    args.wrk = wrk if args.load_generator != "python" else None
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so the ``finally`` blocks stop the servers."""
    raise KeyboardInterrupt


def check_same_settings(tmp: Path, args: argparse.Namespace) -> dict[str, str]:
    """Both apps must get identical gunicorn settings; gunicorn itself says what it resolved."""
    (tmp / EMPTY_CONFIG).touch()
    env = hermetic_env(tmp, free_port(), args.workers, args.threads)
    bare = resolved_gunicorn_settings(env, BARE_APP)
    portal = resolved_gunicorn_settings(env, PORTAL_APP)
    if bare != portal:
        raise BenchError(f"gunicorn settings differ: bare {bare} vs portal {portal}")
    if bare.get("worker_class") != "gthread" or bare.get("accesslog") != "None":
        raise BenchError(f"unexpected gunicorn settings from {GUNICORN_CONF}: {bare}")
    return bare


def one_round(args: argparse.Namespace, tmp: Path, commands: list[str]) -> list[Result]:
    """Bare Flask, then the portal: probe authorized, /api/captive, probe unauthorized."""
    tmp.mkdir()
    (tmp / EMPTY_CONFIG).touch()
    results: list[Result] = []
    commands.clear()

    # (a) bare Flask
    bare_probe = Target(BARE_TARGET, PROBE_PATH, PROBE_HOST, 204, _check_empty)
    port = free_port()
    env = hermetic_env(tmp, port, args.workers, args.threads)
    bare = Server(
        "bare Flask", gunicorn_command(f"{LOOPBACK}:{port}", BARE_APP), env, tmp / "bare.log", port
    )
    with running(bare, bare_probe, START_TIMEOUT_S):
        results.append(measure(args, bare, bare_probe))
    commands.append(shlex.join(bare.command))
    if args.wrk:
        commands.append(shlex.join(wrk_command(args, port, bare_probe)))

    # (b) the portal: session seeded before it starts; revoked for the unauthorized state
    port = free_port()
    env = hermetic_env(tmp, port, args.workers, args.threads)
    db_path = Path(env["INSTORE_DATABASE_PATH"])
    mac = seed_authorized_client(env)
    portal_host = f"{LOOPBACK}:{port}"
    authorized = Target("portal probe authorized (204)", PROBE_PATH, PROBE_HOST, 204, _check_empty)
    unauthorized = Target(
        "portal probe unauthorized (302)", PROBE_PATH, PROBE_HOST, 302, _check_signin_redirect
    )
    api = Target("portal /api/captive (200)", API_PATH, portal_host, 200, _check_captive_json)
    portal = Server(
        "portal", gunicorn_command(portal_host, PORTAL_APP), env, tmp / "portal.log", port
    )
    with running(portal, authorized, START_TIMEOUT_S):
        results.append(measure(args, portal, authorized))
        api_result = measure(args, portal, api)
        api_result.informational = True
        revoke_client(db_path, mac)
        results.append(measure(args, portal, unauthorized))
        results.append(api_result)
    commands.append(shlex.join(portal.command))
    if args.wrk:
        for target in (authorized, api):
            commands.append(shlex.join(wrk_command(args, port, target)))
    return results


def run(args: argparse.Namespace) -> int:
    rounds: list[list[Result]] = []
    commands: list[str] = []
    with tempfile.TemporaryDirectory(prefix="instore-bench-") as tmp_name:
        tmp = Path(tmp_name)
        settings = check_same_settings(tmp, args)
        print("gunicorn (both servers): " + ", ".join(f"{k}={v}" for k, v in settings.items()))
        for number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"round {number}/{args.rounds}")
            rounds.append(one_round(args, tmp / f"round{number}", commands))

    summary = summarize(rounds)
    print_table(summary, rounds)
    print()
    for line in machine_info(args):
        print(line)
    print("reproduce: " + shlex.join([sys.executable, *sys.argv]))
    print("  by hand, in the repository root, with this environment for every server:")
    shown = hermetic_env(Path("$TMP"), 0, args.workers, args.threads)
    for name in sorted(shown):
        if name.startswith(INSTORE_ENV_PREFIX) and name != "INSTORE_PORTAL_SECRET_KEY":
            value = shown[name].replace(f"{LOOPBACK}:0", f"{LOOPBACK}:<port>")
            print(f"    {name}={value}")
    print("    INSTORE_PORTAL_SECRET_KEY=<random>")
    for command in commands:
        print("    " + command)
    failed = [result.target for result in summary if result.errors]
    if failed:
        print(
            f"probe_throughput: error responses under load in: {', '.join(failed)}", file=sys.stderr
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return run(args)
    except BenchError as exc:
        print(f"probe_throughput: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("probe_throughput: interrupted; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
