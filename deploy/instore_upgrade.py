#!/usr/bin/env python3
"""instore-upgrade VERSION: switch a box to another instore release, or leave it as it was.

Installed by install.sh as /opt/instore/bin/instore-upgrade (and /usr/local/sbin/instore-upgrade).
Standard library only, run by the system's python3: it must work when the new release is broken,
so it never imports instore.

The steps, and why each is where it is:
1. install the release beside the current one (install.sh --no-switch); nothing stops.
2. load the config with the new release and migrate a *trial* copy of the database while the
   services run: a release whose migrations fail is refused with no downtime at all.
3. stop the services that were running and wait until no process holds the database.
4. copy the now quiet database, migrate the copy with the new release, set the original aside
   (renamed, so it stays byte for byte what the old release left) and put the copy in its place.
   Copying only after the stop means no write made while we worked is lost.
5. switch ``current`` (install.sh --activate: units, scripts, then the link, renamed atomically),
   start the services again and wait for the portal's /healthz and every unit to stay active.
6. on any failure after the stop: stop, switch back, put the original database back, start the
   old release and check its health. Exit 1; exit 3 only if even that failed.

Exit status: 0 upgraded (or already on VERSION), 1 upgrade refused or rolled back, 2 bad usage,
3 rollback failed (a person must look: the messages say what is where).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

HEALTH_TIMEOUT_SECONDS = 90.0  # a Raspberry Pi's cold start of the portal is 10-20 s
HEALTH_POLL_SECONDS = 0.5
HEALTH_REQUEST_SECONDS = 3.0  # one /healthz answer; it is a single indexed read
SETTLE_SECONDS = 5.0  # units must still be active this long after /healthz answered
RELEASE_TIMEOUT_SECONDS = 60.0  # processes letting go of the database after `systemctl stop`
COMMAND_TIMEOUT_SECONDS = 1800.0  # install.sh or a migration; a big database migrates slowly
SIDE_FILES = ("-wal", "-shm")
PORTAL_UNIT = "instore-portal.service"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ROLLBACK_FAILED = 0, 1, 2, 3


class UpgradeFailed(Exception):
    """A step failed; the message is one sentence for the person at the box."""


LOG: list[Path] = []  # the box's upgrade log, once the root is known


def say(message: str) -> None:
    """To the terminal and the box's log (/var/log/instore-upgrade.log).

    A dropped SSH session must not stop an upgrade half way, so a terminal that went away is
    ignored (and SIGHUP too, in ``main``); the log keeps the story.
    """
    line = f"instore-upgrade: {message}"
    with suppress(OSError):
        print(line, flush=True)
    for path in LOG:
        with suppress(OSError), open(path, "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {line}\n")


@dataclass(frozen=True)
class Box:
    """Where things are on the box, or under a staging root."""

    root: Path

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def opt(self) -> Path:
        return self.path("/opt/instore")

    @property
    def config(self) -> Path:
        return self.path("/etc/instore/instore.toml")

    def release(self, version: str) -> Path:
        return self.opt / "releases" / version

    def current_version(self) -> str | None:
        link = self.opt / "current"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def units(self) -> list[str]:
        return sorted(p.name for p in self.path("/etc/systemd/system").glob("instore-*.service"))

    def install_command(self) -> list[str]:
        return [
            str(self.opt / "bin" / "install.sh"),
            *(["--root", str(self.root)] if self.root != Path("/") else []),
        ]


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a step's command; its output is kept to explain a failure in one line."""
    return subprocess.run(
        command,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


class Services:
    """Start and stop units with systemctl, or a stand-in given by --systemctl (staging roots)."""

    def __init__(self, command: list[str]) -> None:
        self.command = command

    def _call(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run([*self.command, *args])

    def active(self, units: list[str]) -> list[str]:
        return [u for u in units if self._call("is-active", "--quiet", u).returncode == 0]

    def stop(self, units: list[str]) -> None:
        if units:
            result = self._call("stop", *units)
            if result.returncode != 0:
                raise UpgradeFailed(f"could not stop {', '.join(units)}: {last_line(result)}")

    def start(self, units: list[str]) -> None:
        if units:
            result = self._call("start", *units)
            if result.returncode != 0:
                raise UpgradeFailed(f"could not start {', '.join(units)}: {last_line(result)}")

    def reload(self) -> None:
        self._call("daemon-reload")


# --- the database --------------------------------------------------------------------------------
def holders(database: Path) -> list[int]:
    """Processes with the database or its WAL files open (from /proc; no systemd needed)."""
    wanted = {str(database) + suffix for suffix in ("", *SIDE_FILES)}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if {os.readlink(fd) for fd in (entry / "fd").iterdir()} & wanted:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_released(database: Path, timeout: float = RELEASE_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while pids := holders(database):
        if time.monotonic() > deadline:
            raise UpgradeFailed(
                f"processes {', '.join(map(str, pids))} still have {database} open after the "
                "services stopped"
            )
        time.sleep(0.1)


def copy_database(source: Path, dest: Path) -> None:
    """One consistent snapshot of ``source`` into the new file ``dest`` (online backup API)."""
    for suffix in ("", *SIDE_FILES):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(dest)) as dst:
        src.backup(dst)
    stat = source.stat()
    os.chmod(dest, stat.st_mode & 0o777)
    if os.geteuid() == 0:
        os.chown(dest, stat.st_uid, stat.st_gid)


def fold_wal(database: Path) -> None:
    """Checkpoint a WAL left by a crash into the file, so the file alone is the whole database."""
    with closing(sqlite3.connect(database, timeout=30)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def move_database(source: Path, dest: Path) -> None:
    """Rename a database with its WAL files (a missing one stays missing at the destination)."""
    for suffix in ("", *SIDE_FILES):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
        if Path(f"{source}{suffix}").exists():
            os.replace(f"{source}{suffix}", f"{dest}{suffix}")


def remove_database(database: Path) -> None:
    for suffix in ("", *SIDE_FILES):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


# --- the release -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    database: Path
    health_url: str


SETTINGS_SCRIPT = """
import json, sys
from instore.config import load_config
config = load_config(sys.argv[1])
print(json.dumps({"database": str(config.database_path), "bind": config["portal"]["bind"]}))
"""


def read_settings(release: Path, config: Path, health_url: str | None) -> Settings:
    """The config as the new release reads it: a config it refuses stops the upgrade here."""
    # -P: the new release's own code, never a checkout in the working directory.
    python = str(release / "venv" / "bin" / "python")
    result = run([python, "-P", "-c", SETTINGS_SCRIPT, str(config)])
    if result.returncode != 0:
        raise UpgradeFailed(f"the new release cannot load {config}: {last_line(result)}")
    values = json.loads(result.stdout)
    database = Path(values["database"])
    if not database.is_absolute():
        raise UpgradeFailed(
            f"database.path in {config} is relative ({database}); a box needs an absolute path"
        )
    host, _, port = values["bind"].rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return Settings(database, health_url or f"http://{host}:{port}/healthz")


def migrate(release: Path, config: Path, database: Path) -> None:
    command = [str(release / "venv" / "bin" / "instore"), "db", "upgrade"]
    result = run(command, {"INSTORE_CONFIG": str(config), "INSTORE_DATABASE_PATH": str(database)})
    if result.returncode != 0:
        raise UpgradeFailed(f"the new release's migrations failed: {last_line(result)}")


def health(url: str) -> str | None:
    """None when /healthz says the portal is fine, else what it said."""
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_REQUEST_SECONDS) as response:  # noqa: S310
            body = json.loads(response.read() or b"{}")
            return None if body.get("ok") else f"answered {json.dumps(body)}"
    except urllib.error.HTTPError as exc:
        return f"answered {exc.code} {exc.read()[:200].decode(errors='replace').strip()}"
    except (OSError, ValueError) as exc:
        return f"did not answer ({exc})"


def wait_healthy(
    url: str | None,
    units: list[str],
    services: Services,
    timeout: float,
    settle: float,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Seconds until healthy; raises UpgradeFailed with the last answer at the deadline."""
    began = clock()
    if url is not None:
        while (problem := health(url)) is not None:
            if clock() - began > timeout:
                raise UpgradeFailed(f"{url} {problem} for {timeout:.0f} s")
            time.sleep(HEALTH_POLL_SECONDS)
    healthy_after = clock() - began
    settled = clock() + settle
    while True:
        down = sorted(set(units) - set(services.active(units)))
        if down:
            raise UpgradeFailed(f"{', '.join(down)} did not stay active")
        if clock() >= settled:
            return healthy_after
        time.sleep(HEALTH_POLL_SECONDS)


@contextmanager
def upgrade_lock(box: Box) -> Iterator[None]:
    box.opt.mkdir(parents=True, exist_ok=True)
    with open(box.opt / ".upgrade.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpgradeFailed("another instore-upgrade is running") from None
        yield


# --- the upgrade -------------------------------------------------------------------------------
@dataclass
class Upgrade:
    box: Box
    services: Services
    version: str
    old: str
    settings: Settings
    units: list[str]
    timeout: float
    settle: float
    stopped: bool = False  # the services are down and the database is quiet: undo from here

    @property
    def saved(self) -> Path:
        db = self.settings.database
        return db.with_name(f"{db.name}.before-{self.version}")

    def activate(self, version: str) -> None:
        result = run([*self.box.install_command(), "--activate", version])
        if result.returncode != 0:
            raise UpgradeFailed(f"could not make {version} current: {last_line(result)}")
        self.services.reload()

    def check(self, version: str) -> float:
        url = self.settings.health_url if PORTAL_UNIT in self.units else None
        if url:
            say(f"waiting for {url} (up to {self.timeout:.0f} s)")
        else:
            say(f"{PORTAL_UNIT} was not running before, so {version} gets no /healthz check")
        return wait_healthy(url, self.units, self.services, self.timeout, self.settle)

    def switch(self) -> None:
        """Steps 3-5; the caller rolls back on any exception."""
        db = self.settings.database
        release = self.box.release(self.version)
        stopped = time.monotonic()
        say(f"stopping {', '.join(self.units) or 'no running services'}")
        self.services.stop(self.units)
        wait_released(db)
        self.stopped = True
        fold_wal(db)
        staged = db.with_name(f"{db.name}.upgrade-{self.version}")
        copy_database(db, staged)
        migrate(release, self.box.config, staged)
        move_database(db, self.saved)
        move_database(staged, db)
        self.activate(self.version)
        say(f"current is now {self.version}; starting {', '.join(self.units) or 'nothing'}")
        started = time.monotonic()
        self.services.start(self.units)
        healthy = self.check(self.version)
        say(
            f"upgraded {self.old} -> {self.version}: healthy {healthy:.1f} s after the start, "
            f"services were down {started + healthy - stopped:.1f} s"
        )
        say(f"the database from before the upgrade is kept as {self.saved}; remove it when happy")

    def roll_back(self, reason: str) -> int:
        """Step 6: the old release with the database exactly as it stopped."""
        say(f"upgrade to {self.version} failed: {reason}; rolling back to {self.old}")
        db = self.settings.database
        if not self.stopped:  # nothing was switched: bring back whatever did stop
            try:
                self.services.start(self.units)
            except UpgradeFailed as exc:
                say(f"ROLLBACK FAILED: {exc}; {self.old} is still current, its database untouched")
                return EXIT_ROLLBACK_FAILED
            say(f"{self.old} is still current and running; nothing was switched")
            return EXIT_FAILED
        try:
            self.services.stop(self.units)
            wait_released(db)
            self.activate(self.old)
            remove_database(db.with_name(f"{db.name}.upgrade-{self.version}"))
            if self.saved.exists():
                remove_database(db)
                move_database(self.saved, db)
            self.services.start(self.units)
            self.check(self.old)
        except (UpgradeFailed, OSError, sqlite3.Error, subprocess.SubprocessError) as exc:
            say(
                f"ROLLBACK FAILED: {exc}. current -> {self.box.current_version()}; the database "
                f"from before the upgrade is {self.saved if self.saved.exists() else db}"
            )
            return EXIT_ROLLBACK_FAILED
        say(f"rolled back: {self.old} is running on the database as it was before the upgrade")
        return EXIT_FAILED


def prepare(args: argparse.Namespace, box: Box, services: Services) -> Upgrade | int:
    """Steps 1-2: everything that can fail before anything stops."""
    old = box.current_version()
    if old is None:
        raise UpgradeFailed(f"no current release in {box.opt}: install one first with install.sh")
    if old == args.version:
        say(f"{old} is already the current release; nothing to do")
        return EXIT_OK
    install = [*box.install_command(), "--no-switch", "--version", args.version]
    for option in ("from_", "wheelhouse", "deps_from"):
        if getattr(args, option):
            install += [f"--{option.rstrip('_').replace('_', '-')}", getattr(args, option)]
    release = box.release(args.version)
    if not (release / ".complete").exists():
        if not args.from_:
            raise UpgradeFailed(f"release {args.version} is not installed: give --from WHEEL|DIR")
        say(f"installing {args.version} beside {old}")
        result = run(install)
        if result.returncode != 0:
            raise UpgradeFailed(f"install.sh failed: {last_line(result)}")
    settings = read_settings(release, box.config, args.health_url)
    if not settings.database.exists():
        raise UpgradeFailed(f"there is no database at {settings.database} to upgrade")
    trial = settings.database.with_name(f"{settings.database.name}.trial-{args.version}")
    began = time.monotonic()
    try:
        copy_database(settings.database, trial)
        migrate(release, box.config, trial)
    finally:
        remove_database(trial)
    say(
        f"the new release migrated a trial copy of the database in {time.monotonic() - began:.1f} s"
    )
    units = services.active(box.units())
    return Upgrade(
        box, services, args.version, old, settings, units, args.health_timeout, args.settle
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (a shutdown, `kill`) rolls back like Ctrl-C rather than leaving a half upgrade."""
    raise KeyboardInterrupt


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="instore-upgrade",
        description="Switch to another instore release: install it beside the current one, "
        "migrate a copy of the database, restart, wait for health; roll back on failure.",
    )
    parser.add_argument("version", help="the release to switch to, e.g. 0.2.0")
    parser.add_argument("--from", dest="from_", help="wheel, sdist or checkout to install it from")
    parser.add_argument("--wheelhouse", help="install offline from the wheels in this directory")
    parser.add_argument("--deps-from", help="share the dependencies of this virtualenv (tests)")
    parser.add_argument("--root", default="/", help="a staging root instead of / (tests)")
    parser.add_argument("--health-url", help="default: http://<portal.bind>/healthz")
    parser.add_argument(
        "--health-timeout", type=float, default=HEALTH_TIMEOUT_SECONDS, help="seconds (default 90)"
    )
    parser.add_argument(
        "--settle", type=float, default=SETTLE_SECONDS, help="seconds units must stay up (5)"
    )
    parser.add_argument(
        "--systemctl",
        help="command run as COMMAND start|stop|is-active|daemon-reload UNIT… instead of "
        "systemctl (required with --root)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    box = Box(Path(args.root).resolve())
    command = args.systemctl
    if box.root == Path("/") and os.geteuid() != 0:
        say("run as root (sudo instore-upgrade …)")
        return EXIT_USAGE
    if box.root != Path("/") and not command:
        say("with --root, give --systemctl COMMAND that starts and stops that root's services")
        return EXIT_USAGE
    services = Services(shlex.split(command) if command else ["systemctl"])
    LOG.append(box.path("/var/log/instore-upgrade.log"))
    LOG[0].parent.mkdir(parents=True, exist_ok=True)
    # Finish, or roll back, even when the SSH session that started the upgrade drops.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with upgrade_lock(box):
            prepared = prepare(args, box, services)
            if isinstance(prepared, int):
                return prepared
            try:
                prepared.switch()
            except (UpgradeFailed, OSError, sqlite3.Error, subprocess.SubprocessError) as exc:
                return prepared.roll_back(str(exc))
            except KeyboardInterrupt:
                return prepared.roll_back("interrupted")
    except UpgradeFailed as exc:
        say(f"{exc}; nothing was changed")
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
