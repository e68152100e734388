"""The client side of the probe bench: what is sent, which answer counts, and the load itself.

``verify`` makes sure a target answers what we mean to measure before and after its load, so an
error page is never benchmarked. The load comes from ``wrk``; without it a keep-alive
``http.client`` thread pool stands in, far slower (GIL-bound) and only comparable with itself.
"""

from __future__ import annotations

import argparse
import http.client
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchlib import LOOPBACK, BenchError

REQUEST_TIMEOUT_S = 5.0
WRK_GRACE_S = 30.0  # wrk's own run is --duration; this bounds a wrk that hangs anyway
PYTHON_LOAD_MAX_THREADS = 32  # the fallback generator is GIL-bound; more threads only add noise


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
    """``duration`` seconds of load from wrk, or from the fallback when wrk is not used."""
    if args.wrk:
        return run_wrk(args, port, target, duration)
    return run_python_load(args, port, target, duration)
