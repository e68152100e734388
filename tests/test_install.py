"""deploy/install.sh into a staging root: the layout, the user, the config, and a second run that
changes nothing. Needs root (it creates a system user in the root's own /etc/passwd and sets
owners); CI runs as root.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.release_build import (
    CHECKOUT,
    DEV_VENV,
    copy_checkout,
    install,
    need_venv,
    release_wheel,
)
from tests.test_units import unit_files, verify_root, verify_unit

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="install.sh creates a system user and sets owners: run as root"
)
VERSION = "0.9.0"
FULL_INSTALL_TIMEOUT_SECONDS = 900


def seed_user_database(root: Path) -> None:
    """A staging root's /etc as a fresh Debian has it: root, and BlueZ's bluetooth group."""
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\nbluetooth:x:112:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nbluetooth:!::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o640)


def passwd_entry(root: Path, user: str) -> list[str]:
    for line in (root / "etc/passwd").read_text().splitlines():
        if line.startswith(f"{user}:"):
            return line.split(":")
    raise AssertionError(f"no {user} in {root}/etc/passwd")


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path's type, mode, owner, size, modification time and link target."""
    seen: dict[str, tuple[object, ...]] = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        target = os.readlink(path) if path.is_symlink() else None
        seen[str(path.relative_to(root))] = (
            stat.S_IFMT(info.st_mode),
            stat.S_IMODE(info.st_mode),
            info.st_uid,
            info.st_gid,
            info.st_size,
            info.st_mtime_ns,
            target,
        )
    return seen


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_venv()
    return release_wheel(tmp_path_factory.mktemp("release"), VERSION)


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("root")
    seed_user_database(root)
    result = install(root, "--from", str(wheel), "--deps-from", str(DEV_VENV))
    return root, result.stdout


def test_install_lays_out_a_versioned_release_and_makes_it_current(
    staged: tuple[Path, str],
) -> None:
    root, output = staged
    release = root / "opt/instore/releases" / VERSION
    assert (release / ".complete").is_file()
    assert os.readlink(root / "opt/instore/current") == f"releases/{VERSION}"
    version = subprocess.run(
        [str(root / "opt/instore/current/venv/bin/instore"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == f"instore, version {VERSION}"
    # The release carries its own deploy files, and the box's helpers come from them.
    assert (release / "deploy/gunicorn.conf.py").is_file()
    for name in ("install.sh", "instore-upgrade"):
        assert os.access(root / "opt/instore/bin" / name, os.X_OK)
    assert (
        os.readlink(root / "usr/local/sbin/instore-upgrade") == "/opt/instore/bin/instore-upgrade"
    )
    assert os.readlink(root / "usr/local/bin/instore") == "/opt/instore/current/venv/bin/instore"
    assert "next: edit" in output


def test_every_unit_in_the_checkout_is_installed(staged: tuple[Path, str]) -> None:
    root, _ = staged
    for unit in unit_files():
        installed = root / "etc/systemd/system" / unit.name
        assert installed.read_text() == unit.read_text()
        assert stat.S_IMODE(installed.stat().st_mode) == 0o644


def test_the_user_and_the_state_directory(staged: tuple[Path, str]) -> None:
    root, _ = staged
    _, _, uid, gid, _, home, shell = passwd_entry(root, "instore")
    assert (home, shell) == ("/var/lib/instore", "/usr/sbin/nologin")
    assert int(uid) < 1000  # a system user
    assert "bluetooth:x:112:instore" in (root / "etc/group").read_text().splitlines()
    state = (root / "var/lib/instore").stat()
    assert (state.st_uid, state.st_gid, stat.S_IMODE(state.st_mode)) == (int(uid), int(gid), 0o750)


def test_the_config_is_the_commented_template_with_box_paths(staged: tuple[Path, str]) -> None:
    root, _ = staged
    config = root / "etc/instore/instore.toml"
    info = config.stat()
    _, _, _, gid, *_ = passwd_entry(root, "instore")
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, int(gid), 0o640)
    text = config.read_text()
    assert 'path = "/var/lib/instore/instore.db"' in text
    assert '# bind = "127.0.0.1:8080"' in text  # everything else stays a commented default
    shown = subprocess.run(
        [str(root / "opt/instore/current/venv/bin/instore"), "--config", str(config), "config"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "path = '/var/lib/instore/instore.db'" in shown.stdout
    assert "backend = 'nftables'" in shown.stdout


def test_a_second_run_changes_nothing(staged: tuple[Path, str], wheel: Path) -> None:
    root, _ = staged
    before = snapshot(root)
    result = install(root, "--from", str(wheel), "--deps-from", str(DEV_VENV))
    assert "nothing to change" in result.stdout
    assert snapshot(root) == before


def test_the_config_is_never_overwritten(staged: tuple[Path, str], wheel: Path) -> None:
    root, _ = staged
    config = root / "etc/instore/instore.toml"
    original = config.read_text()
    try:
        config.write_text('[store]\nname = "Edited by IT"\n')
        install(root, "--from", str(wheel), "--deps-from", str(DEV_VENV))
        assert config.read_text() == '[store]\nname = "Edited by IT"\n'
    finally:
        config.write_text(original)


def test_a_unit_edited_by_hand_is_put_back(staged: tuple[Path, str], wheel: Path) -> None:
    root, _ = staged
    unit = root / "etc/systemd/system/instore-gatekeeper.service"
    unit.write_text(unit.read_text().replace("CAP_NET_ADMIN", "CAP_SYS_ADMIN"))
    result = install(root, "--from", str(wheel), "--deps-from", str(DEV_VENV))
    assert f"installed {unit}" in result.stdout
    assert unit.read_text() == (CHECKOUT / "deploy/systemd" / unit.name).read_text()


def test_the_installed_units_verify_in_the_staging_root(
    staged: tuple[Path, str], tmp_path: Path
) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    root, _ = staged
    checked = tmp_path / "root"
    shutil.copytree(root, checked, symlinks=True)
    verify_root(checked)
    for unit in sorted((checked / "etc/systemd/system").glob("instore-*.service")):
        verify_unit(checked, unit.name)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "9.9.9"], f"is instore {VERSION}, not 9.9.9"),
        (["--wheelhouse", "/nonexistent"], "--wheelhouse /nonexistent is not a directory"),
        (["--bogus"], "unknown option --bogus"),
    ],
)
def test_mistakes_are_refused_with_a_sentence_and_change_nothing(
    tmp_path: Path, wheel: Path, args: list[str], message: str
) -> None:
    result = install(tmp_path, "--from", str(wheel), *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "opt/instore/releases").exists()


def test_a_missing_source_is_refused(tmp_path: Path) -> None:
    result = install(tmp_path, "--from", str(tmp_path / "nothing.whl"), check=False)
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_a_full_install_from_a_checkout_resolves_every_dependency(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The path a box takes: a clean virtualenv, every dependency from the package index."""
    need_venv()
    work = tmp_path_factory.mktemp("full")
    source = copy_checkout(work / "src")
    root = work / "root"
    root.mkdir()
    seed_user_database(root)
    result = subprocess.run(
        ["bash", str(CHECKOUT / "deploy/install.sh"), "--root", str(root), "--from", str(source)],
        capture_output=True,
        text=True,
        timeout=FULL_INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    venv = root / "opt/instore/current/venv"
    check = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    assert not list((venv / "lib").glob("python3*/site-packages/instore-shared-deps.pth"))
