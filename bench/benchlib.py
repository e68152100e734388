"""What every bench script needs besides its own measurement: processes, ports, figures, footer.

The benches start servers and helpers, must stop them whatever happens (errors, Ctrl-C, SIGTERM),
run with an environment nothing inherited can change, and end with the same kind of footer (the
machine, and the commands to reproduce the run). Keeping those pieces here means a fix to, say,
how a lingering process group is killed reaches every bench at once.

Imported as ``benchlib`` by scripts run as ``.venv/bin/python bench/NAME.py``: Python puts the
script's own directory, ``bench/``, first on ``sys.path``.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import Any

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
# Environment variables the instore config reads; inherited ones would make a run unhermetic.
INSTORE_ENV_PREFIX = "INSTORE_"
# INSTORE_CONFIG points at this empty file in the run's directory, so /etc/instore/instore.toml
# on a box does not change the figures.
EMPTY_CONFIG = "instore.toml"


class BenchError(Exception):
    """A run that cannot produce trustworthy figures; the message says what went wrong."""


# ---------------------------------------------------------------------------------------------
# Environment, ports


def environ_without_instore() -> dict[str, str]:
    """This process's environment minus every ``INSTORE_*`` variable, for a hermetic child."""
    return {
        key: value for key, value in os.environ.items() if not key.startswith(INSTORE_ENV_PREFIX)
    }


def tests_importable() -> None:
    """Put the repository on ``sys.path``, so a bench can use the tests' harness and helpers
    (``tests.…``): run as a script, only ``bench/`` is there, and ``tests`` is not installed."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on right now on ``host`` (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------------
# Processes


def stop_process(
    process: subprocess.Popen[Any] | None, timeout_s: float, *, whole_group: bool = False
) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it lingers past ``timeout_s``.

    Processes are started with ``start_new_session``, so Ctrl-C reaches the bench, not them, and
    the bench stops them in order. With ``whole_group`` the SIGKILL goes to the process group
    (a gunicorn master's workers); the group id is the pid, so only processes the bench started
    are signalled.
    """
    if process is None or process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            if whole_group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait(timeout=timeout_s)


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


def log_tail(path: Path, lines: int = 25, what: str = "log") -> str:
    """The end of a child's log, for an error message that says why it failed."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {what})"
    return "\n".join(text.splitlines()[-lines:]) or f"({what} is empty)"


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so the ``finally`` blocks stop what the bench started."""
    raise KeyboardInterrupt


def run_guarded(
    prog: str,
    body: Callable[[], int],
    *,
    interrupted: str,
    errors: tuple[type[Exception], ...] = (BenchError,),
    ctrl_c_in_background: bool = False,
) -> int:
    """Run a bench's body with the exit statuses every bench documents.

    0 or what the body returns; 1 after one of ``errors`` (its message on stderr); 130 after
    Ctrl-C, SIGTERM or SIGHUP, once the body's ``finally`` blocks have cleaned up (``interrupted``
    says what they did). ``ctrl_c_in_background`` re-arms SIGINT, which a shell starting a job in
    the background sets to ignored.
    """
    if ctrl_c_in_background:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return body()
    except errors as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {interrupted}", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------------
# Figures and footer


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile, a value that was measured: with 100 samples p99 is the
    second-largest, with 50 or fewer it is the largest. ``fraction`` is 0.99 for p99."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def goal_verdict(value: float, goal: float) -> str:
    """For goals where lower is better (milliseconds)."""
    return "meets goal" if value < goal else "MISSES GOAL"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other jobs on the machine move every figure."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine_info(versions: str) -> list[str]:
    """Two footer lines: usable CPUs and load, then the platform, Python and ``versions``."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return [
        f"machine: nproc={usable} (cpu_count={os.cpu_count()}), load average {load_average()}",
        f"         {platform.platform()}, Python {platform.python_version()}, {versions}",
    ]


def invocation(sudo: bool = False) -> str:
    """This very run as a shell command line; benches that need root say ``sudo``."""
    return ("sudo " if sudo else "") + shlex.join([sys.executable, *sys.argv])


def instore_variables(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """The ``INSTORE_*`` variables of ``env``, sorted: the whole configuration of a hermetic run."""
    return [(name, env[name]) for name in sorted(env) if name.startswith(INSTORE_ENV_PREFIX)]


def print_reproduce(
    invoked: str, how: str, variables: list[tuple[str, str]], commands: list[str]
) -> None:
    """The footer's last lines: the run itself, then the environment and commands by hand."""
    print("reproduce: " + invoked)
    print(how)
    for name, value in variables:
        print(f"    {name}={value}")
    for command in commands:
        print("    " + command)
