"""A real PostgreSQL cluster for tests: initdb into a temp directory, a free loopback port.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to the
``postgres`` system user the Debian package creates (or ``nobody``), and its processes are
started as that user (``Popen(user=…)``, so signals reach postgres itself). The directory is
made outside pytest's tmp_path, whose root-only parents that user could not enter.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.live_portal import free_port
from tests.mosquitto import stop_process, wait_for

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
# Candidate owners of the cluster when the tests run as root, in order of preference.
UNPRIVILEGED_USERS = ("postgres", "nobody")


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian keeps them per version)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def why_unavailable() -> str | None:
    """None when a cluster can be started here, else the reason (for pytest.skip)."""
    if postgres_bin() is None:
        return "PostgreSQL is not installed (Debian package postgresql)"
    if os.geteuid() == 0 and not any(_user_exists(name) for name in UNPRIVILEGED_USERS):
        return "running as root with no unprivileged user to own the cluster"
    return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Cluster:
    """One initdb'd cluster with ``trust`` auth on 127.0.0.1; ``dsn`` connects as postgres."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        assert bin_dir is not None, why_unavailable()
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="instore-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            name = next(name for name in UNPRIVILEGED_USERS if _user_exists(name))
            self.owner = pwd.getpwnam(name)
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        self._run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ]
        )

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _user(self) -> dict[str, Any]:
        """Popen's arguments that run a command as the cluster's owner (nothing when not root)."""
        if self.owner is None:
            return {}
        return {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(
            command, capture_output=True, text=True, cwd=self.root, check=False, **self._user()
        )
        if result.returncode != 0:
            raise AssertionError(f"{command[0]} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        log = self.log_path.open("ab")
        command = [
            str(self.bin / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.root),
            "-c",
            "listen_addresses=127.0.0.1",
            # A test's database need not survive a power cut; this makes it start and write fast.
            "-c",
            "fsync=off",
        ]
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, **self._user()
        )
        wait_for(self._ready, START_TIMEOUT_SECONDS, f"PostgreSQL on port {self.port}", 0.1)

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"postgres exited at start: {self.log()}")
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return result.returncode == 0

    def stop(self) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, then exit."""
        if self.process is None:
            return
        stop_process(self.process, signal.SIGINT, STOP_TIMEOUT_SECONDS)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"
