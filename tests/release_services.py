"""Start and stop a staging root's instore units the way systemd would, without systemd.

``instore-upgrade --systemctl COMMAND`` runs ``COMMAND start|stop|is-active|daemon-reload UNIT…``;
the upgrade tests point that here, so the real portal of whichever release ``current`` names runs
from the staging root, started from the real unit file's ``ExecStart=`` and ``Environment=``
(absolute paths moved under the root). Like systemd, ``start`` of a ``Type=notify`` unit returns
once the service sent READY=1 (gunicorn does), and ``stop`` ends the whole process group.

    python tests/release_services.py --root ROOT start instore-portal.service
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

READY_TIMEOUT_SECONDS = 60.0  # the portal imports its libraries and opens the database
STOP_TIMEOUT_SECONDS = 20.0  # the portal unit's TimeoutStopSec
POLL_SECONDS = 0.05


def unit_settings(root: Path, unit: str) -> dict[str, list[str]]:
    """``Key=value`` lines of the unit's [Service] section, values kept in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in (root / "etc/systemd/system" / unit).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def under_root(root: Path, value: str) -> str:
    return str(root / value.lstrip("/")) if value.startswith("/") else value


def state_file(root: Path, unit: str) -> Path:
    return root / "run/release-services" / f"{unit}.pid"


def alive(pid: int) -> bool:
    """Running and not a zombie (an orphan's zombie may linger until PID 1 reaps it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in {"Z", "X"}


def running_pid(root: Path, unit: str) -> int | None:
    try:
        pid = int(state_file(root, unit).read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def start(root: Path, unit: str) -> int:
    if running_pid(root, unit):
        return 0
    settings = unit_settings(root, unit)
    argv = shlex.split(settings["ExecStart"][0])
    argv[0] = under_root(root, argv[0])
    env = dict(os.environ)
    for assignment in settings.get("Environment", []):
        key, value = assignment.split("=", 1)
        env[key] = under_root(root, value)
    notify = settings.get("Type", ["simple"])[0] == "notify"
    sock = None
    if notify:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        address = root / "run/release-services" / f"{unit}.notify"
        address.parent.mkdir(parents=True, exist_ok=True)
        address.unlink(missing_ok=True)
        sock.bind(str(address))
        sock.settimeout(POLL_SECONDS)
        env["NOTIFY_SOCKET"] = str(address)
    log = open(root / "run/release-services" / f"{unit}.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        argv, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    state_file(root, unit).write_text(str(process.pid))
    if sock is None:
        return 0
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with sock:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                print(f"{unit}: exited with {process.returncode} before READY=1", file=sys.stderr)
                return 1
            try:
                if b"READY=1" in sock.recv(4096).split(b"\n"):
                    return 0
            except TimeoutError:
                continue
    print(f"{unit}: no READY=1 within {READY_TIMEOUT_SECONDS:.0f} s", file=sys.stderr)
    return 1


def stop(root: Path, unit: str) -> int:
    """SIGTERM to the unit's process group, SIGKILL after the stop timeout (KillMode=mixed-ish)."""
    pid = running_pid(root, unit)
    state_file(root, unit).unlink(missing_ok=True)
    if pid is None:
        return 0
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return 0
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # whatever the main process left behind
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("verb", choices=["start", "stop", "is-active", "daemon-reload"])
    parser.add_argument("--quiet", action="store_true", help="accepted, as systemctl does")
    parser.add_argument("units", nargs="*")
    options = parser.parse_intermixed_args()
    root: Path = options.root
    units: list[str] = options.units
    (root / "run/release-services").mkdir(parents=True, exist_ok=True)
    if options.verb == "daemon-reload":
        return 0
    if options.verb == "is-active":
        return 0 if all(running_pid(root, unit) for unit in units) else 3
    action = start if options.verb == "start" else stop
    return max((action(root, unit) for unit in units), default=0)


if __name__ == "__main__":
    sys.exit(main())
