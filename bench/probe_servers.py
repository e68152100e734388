"""The server side of the probe bench: gunicorn servers, their environment, the seeded session.

Both the bare Flask baseline and the portal run under ``deploy/gunicorn.conf.py`` with identical
flags and an environment nothing inherited can change, so the only difference between them is the
application; each runs in its own process group and is always stopped, workers included.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    EMPTY_CONFIG,
    LOOPBACK,
    BenchError,
    environ_without_instore,
    group_stats,
    log_tail,
    stop_process,
)
from probe_load import Target, fetch

from hardware.clients import DemoLookup
from instore import members, sessions
from instore.config import load_config
from instore.db import open_database

REPO = Path(__file__).resolve().parents[1]
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"
STOP_TIMEOUT_S = 15.0  # deploy/gunicorn.conf.py's graceful_timeout is 10 s; then SIGKILL


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

    def log_tail(self) -> str:
        return log_tail(self.log_path, what="server log")

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
        stop_process(process, STOP_TIMEOUT_S, whole_group=True)
        # Workers normally exit with the master; make sure none is left holding the port.
        if group_stats(process.pid):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


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


def hermetic_env(tmp: Path, port: int, workers: int, threads: int) -> dict[str, str]:
    """The environment both servers run with: same gunicorn settings, nothing inherited.

    deploy/gunicorn.conf.py reads workers and threads from the instore config, so both servers
    get them the same way, through INSTORE_PORTAL_WORKERS/THREADS. INSTORE_CONFIG points at an
    empty file (the caller creates it) so neither a developer's INSTORE_* variables nor
    /etc/instore/instore.toml leak in.
    """
    env = environ_without_instore()
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
