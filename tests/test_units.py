"""The systemd units: `systemd-analyze verify` clean, each with only the capability it needs,
hardened (exposure score from `systemd-analyze security`), and the portal's Type=notify real.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_portal import free_port

CHECKOUT = Path(__file__).resolve().parents[1]
UNIT_DIR = CHECKOUT / "deploy" / "systemd"
INSTORE = "/opt/instore/current/venv/bin/instore"
# The only capability each unit may hold; any unit not named here (the uplink...) holds none.
CAPABILITIES = {
    "instore-gatekeeper.service": {"CAP_NET_ADMIN"},
    "instore-presence.service": {"CAP_NET_RAW"},
    "instore-portal.service": {"CAP_NET_BIND_SERVICE"},
}
# systemd-analyze security's 0-10 exposure scale: 5.6-6.3 before these units were hardened
# (issue 8), 3.1-3.4 after. A unit above this lost some of its sandbox.
MAX_EXPOSURE = 4.0
READY_TIMEOUT_SECONDS = 60.0

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package systemd)",
)


def unit_files() -> list[Path]:
    return sorted(UNIT_DIR.glob("instore-*.service"))


def service_settings(unit: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of [Service]; a key given twice keeps both values."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def verify_root(root: Path) -> None:
    """Make ``root`` something `systemd-analyze --root` can load units in: the system's unit
    library (targets the units reference) and every program an Exec line names."""
    library = root / "usr/lib/systemd/system"
    if not library.exists():
        shutil.copytree("/usr/lib/systemd/system", library, symlinks=True)
    for unit in (root / "etc/systemd/system").glob("instore-*.service"):
        for key, values in service_settings(unit).items():
            if not key.startswith("Exec"):
                continue
            program = values[0].split()[0].lstrip("-@:+!")
            inside = root / program.lstrip("/")
            if inside.exists() or inside.is_symlink():
                continue
            inside.parent.mkdir(parents=True, exist_ok=True)
            host = Path(program) if program != INSTORE else None
            if host is not None and host.exists():
                shutil.copy2(host, inside)
            else:
                inside.write_text("#!/bin/sh\n")
                inside.chmod(0o755)


def verify_unit(root: Path, name: str) -> None:
    """`systemd-analyze verify` must pass and say nothing (unknown keys are only warnings)."""
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", f"/etc/systemd/system/{name}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), f"{name}: {result.stderr}"


@pytest.fixture
def analyze_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in unit_files():
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    verify_root(root)
    return root


def test_there_is_a_unit_for_each_service() -> None:
    names = {unit.name for unit in unit_files()}
    assert {
        "instore-portal.service",
        "instore-gatekeeper.service",
        "instore-presence.service",
        "instore-offers.service",
    } <= names


@needs_analyze
@pytest.mark.parametrize("unit", unit_files(), ids=lambda unit: unit.name)
def test_the_unit_passes_systemd_analyze_verify(analyze_root: Path, unit: Path) -> None:
    verify_unit(analyze_root, unit.name)


@needs_analyze
def test_verify_catches_a_misspelt_setting(analyze_root: Path) -> None:
    """The check above is only worth something if a broken unit fails it."""
    unit = analyze_root / "etc/systemd/system/instore-offers.service"
    unit.write_text(unit.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    with pytest.raises(AssertionError, match="Unknown key"):
        verify_unit(analyze_root, unit.name)


@pytest.mark.parametrize("unit", unit_files(), ids=lambda unit: unit.name)
def test_each_unit_is_sandboxed_with_only_its_capability(unit: Path) -> None:
    settings = service_settings(unit)
    assert settings["User"] == ["instore"]
    assert settings["ExecStart"][0].startswith(INSTORE + " ")
    assert "INSTORE_CONFIG=/etc/instore/instore.toml" in settings["Environment"]
    assert settings["NoNewPrivileges"] == ["yes"]
    assert settings["ProtectSystem"] == ["strict"]
    writable = " ".join(settings["ReadWritePaths"]).split()
    assert "/var/lib/instore" in writable
    if "/run/instore" in writable:  # systemd refuses to start a unit whose path is missing
        assert settings["RuntimeDirectory"] == ["instore"]
    wanted = CAPABILITIES.get(unit.name, set())
    assert set(" ".join(settings["CapabilityBoundingSet"]).split()) == wanted
    assert set(" ".join(settings.get("AmbientCapabilities", [])).split()) == wanted


def test_the_portal_notifies_and_presence_has_a_watchdog() -> None:
    portal = service_settings(UNIT_DIR / "instore-portal.service")
    assert portal["Type"] == ["notify"] and portal["ExecStart"] == [f"{INSTORE} portal"]
    presence = service_settings(UNIT_DIR / "instore-presence.service")
    assert presence["Type"] == ["notify"] and int(presence["WatchdogSec"][0]) > 0


@needs_analyze
@pytest.mark.parametrize("unit", unit_files(), ids=lambda unit: unit.name)
def test_the_exposure_score_stays_low(analyze_root: Path, unit: Path) -> None:
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            f"--root={analyze_root}",
            f"/etc/systemd/system/{unit.name}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def test_the_portal_command_tells_systemd_it_is_ready(tmp_path: Path) -> None:
    """Type=notify works only if `instore portal` (gunicorn) sends READY=1 itself: run it with a
    NOTIFY_SOCKET as systemd would and wait for the datagram."""
    port = free_port()
    address = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(address))
        sock.settimeout(READY_TIMEOUT_SECONDS)
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(address),
            "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
            "INSTORE_PORTAL_BIND": f"127.0.0.1:{port}",
            "INSTORE_PORTAL_SECRET_KEY": "notify-test",
            "INSTORE_PORTAL_WORKERS": "1",
        }
        env.pop("INSTORE_CONFIG", None)
        portal = subprocess.Popen(
            [sys.executable, "-m", "instore", "portal"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            message = sock.recv(4096)
        finally:
            portal.terminate()
            portal.wait(timeout=30)
    assert b"READY=1" in message.split(b"\n")
