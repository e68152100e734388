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


This script is the command line, the order of the measurements and the report; the client side
(targets, verification, wrk and its fallback) lives in ``probe_load.py``, the gunicorn servers and
the seeded session in ``probe_servers.py``.

Run from the repository root: ``.venv/bin/python bench/probe_throughput.py [--duration 5]``.
"""

from __future__ import annotations

import argparse
import http.client
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import (
    EMPTY_CONFIG,
    LOOPBACK,
    BenchError,
    free_port,
    instore_variables,
    invocation,
    machine_info,
    print_reproduce,
    run_guarded,
)
from probe_load import Result, Target, load, verify, wrk_command
from probe_servers import (
    GUNICORN_CONF,
    Server,
    gunicorn_command,
    hermetic_env,
    resolved_gunicorn_settings,
    revoke_client,
    running,
    seed_authorized_client,
)

from instore.config import DEFAULTS

PROBE_HOST = "connectivitycheck.gstatic.com"
PROBE_PATH = "/generate_204"
API_PATH = "/api/captive"
BARE_APP = "bench.bare_app:app"
PORTAL_APP = "portal.wsgi:app"
BARE_TARGET = "bare flask 204"
GOAL_RATIO = 0.8
START_TIMEOUT_S = 30.0  # gunicorn + two workers importing Flask take a second or two
SECRET_KEY_VARIABLE = "INSTORE_PORTAL_SECRET_KEY"


# What a right answer looks like beyond its status; verify() refuses to load anything else.


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
# Report


def footer_machine(args: argparse.Namespace) -> list[str]:
    """The machine and the load generator: req/s only compare within one such footer."""
    wrk_version = "absent (Python fallback load generator)"
    if args.wrk:
        done = subprocess.run(
            [args.wrk, "-v"], capture_output=True, text=True, timeout=10, check=False
        )
        wrk_version = (done.stdout or done.stderr).splitlines()[0] if done.stdout else "wrk"
    import gunicorn

    return [
        *machine_info(f"gunicorn {gunicorn.__version__}"),
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
    """Check the settings match, run the rounds, print the table and the footer."""
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
    for line in footer_machine(args):
        print(line)
    # The secret key is random per run and the ports are picked per server: shown as such.
    shown = hermetic_env(Path("$TMP"), 0, args.workers, args.threads)
    variables = [
        (name, value.replace(f"{LOOPBACK}:0", f"{LOOPBACK}:<port>"))
        for name, value in instore_variables(shown)
        if name != SECRET_KEY_VARIABLE
    ]
    print_reproduce(
        invocation(),
        "  by hand, in the repository root, with this environment for every server:",
        [*variables, (SECRET_KEY_VARIABLE, "<random>")],
        commands,
    )
    failed = [result.target for result in summary if result.errors]
    if failed:
        print(
            f"probe_throughput: error responses under load in: {', '.join(failed)}", file=sys.stderr
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Exit 0 figures printed, 1 a server failed or answered wrongly, 130 interrupted."""
    args = parse_args(argv)
    return run_guarded("probe_throughput", lambda: run(args), interrupted="servers stopped")


if __name__ == "__main__":
    sys.exit(main())
