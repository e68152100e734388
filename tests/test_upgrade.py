"""instore-upgrade against real releases in a staging root, with their real portals running.

Four wheels of this checkout: 1.0.0 as it is, 1.1.0 with one more schema step, 1.1.1 with that
step and a /healthz that always answers 503, 1.2.0 with a schema step that fails. The box's
services are started and stopped by tests/release_services.py from the installed unit files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_portal import free_port
from tests.release_build import DEV_VENV, install, need_venv, release_wheel

SERVICES_SCRIPT = Path(__file__).with_name("release_services.py")
UPGRADE_TIMEOUT_SECONDS = 300
BROKEN_HEALTH_TIMEOUT = 8  # seconds the broken release gets before it is rolled back

PROBE_STEP = """\
KERNEL_MIGRATIONS.append(
    Migration("instore", 1000, "upgrade test probe", ("CREATE TABLE upgrade_probe (id INTEGER)",))
)
"""
FAILING_STEP = """\
KERNEL_MIGRATIONS.append(
    Migration("instore", 1001, "a step that fails", ("CREATE TABLE events (id INTEGER)",))
)
"""
BROKEN_HEALTH = """\
from flask import request as _request


@app.before_request
def _broken_on_purpose():  # the rollback test's release: starts, but never healthy
    if _request.path == "/healthz":
        return {"ok": False, "problem": "broken on purpose"}, 503
    return None
"""


@dataclass
class StagedBox:
    root: Path
    port: int
    wheels: dict[str, Path]

    @property
    def database(self) -> Path:
        return self.root / "var/lib/instore/instore.db"

    @property
    def systemctl(self) -> list[str]:
        return [sys.executable, str(SERVICES_SCRIPT), "--root", str(self.root)]

    def services(self, verb: str, *units: str) -> int:
        return subprocess.run([*self.systemctl, verb, *units], check=False, timeout=120).returncode

    def current(self) -> str:
        return os.readlink(self.root / "opt/instore/current")

    def upgrade(self, version: str, *extra: str) -> subprocess.CompletedProcess[str]:
        command = [
            str(self.root / "opt/instore/bin/instore-upgrade"),
            version,
            "--root",
            str(self.root),
            "--deps-from",
            str(DEV_VENV),
            "--settle",
            "1",
            "--systemctl",
            shlex.join(self.systemctl),
            *extra,
        ]
        if version in self.wheels:
            command += ["--from", str(self.wheels[version])]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=UPGRADE_TIMEOUT_SECONDS
        )

    def health(self) -> dict[str, object]:
        url = f"http://127.0.0.1:{self.port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.loads(response.read()))

    def portal_release(self) -> str:
        """Which release the running portal's main process was started from."""
        pid = int((self.root / "run/release-services/instore-portal.service.pid").read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        return command.split("/releases/")[1].split("/")[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tables(database: Path) -> set[str]:
    with closing(sqlite3.connect(database)) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need_venv()
    work = tmp_path_factory.mktemp("releases")
    return {
        "1.0.0": release_wheel(work, "1.0.0"),
        "1.1.0": release_wheel(work, "1.1.0", {"instore/migrations.py": PROBE_STEP}),
        "1.1.1": release_wheel(
            work,
            "1.1.1",
            {"instore/migrations.py": PROBE_STEP, "portal/wsgi.py": BROKEN_HEALTH},
        ),
        "1.2.0": release_wheel(work, "1.2.0", {"instore/migrations.py": FAILING_STEP}),
    }


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Iterator[StagedBox]:
    """1.0.0 installed, configured for loopback, the portal running with some data written."""
    root = tmp_path_factory.mktemp("box")
    install(root, "--from", str(wheels["1.0.0"]), "--deps-from", str(DEV_VENV))
    staged = StagedBox(root, free_port(), wheels)
    # What IT does after install.sh: point the config at this box (here: the staging root).
    (root / "etc/instore/instore.toml").write_text(
        f'[database]\npath = "{staged.database}"\n'
        f'[portal]\nbind = "127.0.0.1:{staged.port}"\n'
        f'public_url = "http://127.0.0.1:{staged.port}"\nsecret_key = "upgrade-test"\n'
        f'[gateway]\nnudge_socket = "{root}/run/instore/gatekeeper.sock"\n'
    )
    assert staged.services("start", "instore-portal.service") == 0
    with closing(sqlite3.connect(staged.database)) as conn:
        conn.executemany(
            "INSERT INTO events (ts, kind, payload) VALUES ('2026-01-01T00:00:00Z', ?, '{}')",
            [(f"test_event_{n}",) for n in range(500)],
        )
        conn.commit()
    try:
        yield staged
    finally:
        for unit in ("instore-portal.service", "instore-offers.service"):
            staged.services("stop", unit)


def at_rest(box: StagedBox) -> str:
    """Stop the services so the database file is all there is, hash it, start them again."""
    box.services("stop", "instore-portal.service")
    digest = sha256(box.database)
    assert box.services("start", "instore-portal.service") == 0
    return digest


def test_a_release_whose_migrations_fail_is_refused_without_stopping_anything(
    box: StagedBox,
) -> None:
    before = at_rest(box)
    pid = (box.root / "run/release-services/instore-portal.service.pid").read_text()
    result = box.upgrade("1.2.0")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "migrations failed" in result.stdout and "nothing was changed" in result.stdout
    assert box.current() == "releases/1.0.0"
    # The same portal process served throughout: no downtime for a refused release.
    assert (box.root / "run/release-services/instore-portal.service.pid").read_text() == pid
    assert box.health()["ok"] is True
    box.services("stop", "instore-portal.service")
    assert sha256(box.database) == before
    assert box.services("start", "instore-portal.service") == 0


def test_an_unhealthy_release_is_rolled_back_and_the_database_restored(box: StagedBox) -> None:
    before = at_rest(box)
    result = box.upgrade("1.1.1", "--health-timeout", str(BROKEN_HEALTH_TIMEOUT))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "answered 503" in output and "broken on purpose" in output
    assert "rolled back" in output
    assert "rolled back" in (box.root / "var/log/instore-upgrade.log").read_text()
    assert box.current() == "releases/1.0.0"
    assert box.portal_release() == "1.0.0"
    assert box.health()["ok"] is True
    # The migrated copy is gone; the database is the file the old release left, byte for byte.
    assert not list(box.database.parent.glob("instore.db.*"))
    box.services("stop", "instore-portal.service")
    assert sha256(box.database) == before
    assert "upgrade_probe" not in tables(box.database)
    assert box.services("start", "instore-portal.service") == 0


def test_a_healthy_release_is_migrated_switched_and_restarted(box: StagedBox) -> None:
    assert box.services("start", "instore-offers.service") == 0
    result = box.upgrade("1.1.0")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "upgraded 1.0.0 -> 1.1.0" in output
    assert box.current() == "releases/1.1.0"
    assert box.portal_release() == "1.1.0"
    assert box.services("is-active", "instore-offers.service") == 0
    assert box.health()["ok"] is True
    assert "upgrade_probe" in tables(box.database)
    with closing(sqlite3.connect(box.database)) as conn:
        kept = conn.execute("SELECT COUNT(*) FROM events WHERE kind LIKE 'test_event_%'")
        assert kept.fetchone()[0] == 500
    # The database from before is kept beside, without the new step.
    saved = box.database.with_name("instore.db.before-1.1.0")
    assert saved.exists() and "upgrade_probe" not in tables(saved)
    # Both releases stay installed: the old one is what a manual rollback goes back to.
    assert (box.root / "opt/instore/releases/1.0.0/.complete").exists()


def test_going_back_to_a_release_older_than_the_schema_is_refused(box: StagedBox) -> None:
    assert box.current() == "releases/1.1.0"
    result = box.upgrade("1.0.0")
    assert result.returncode == 1
    assert "newer than this instore knows" in result.stdout
    assert box.current() == "releases/1.1.0"
    assert box.health()["ok"] is True


def test_upgrading_to_the_current_release_does_nothing(box: StagedBox) -> None:
    result = box.upgrade(box.current().split("/")[1])
    assert result.returncode == 0
    assert "already the current release" in result.stdout
