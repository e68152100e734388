"""Build instore release wheels from this checkout, and staging roots to install them into.

The install and upgrade tests install real wheels with the real deploy/install.sh. A release
under test is this working tree copied aside, with its version set and, for the upgrade tests, a
change appended to one module (a schema step, a broken health answer), then built with pip as
IT would build it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
INSTALL_SH = CHECKOUT / "deploy" / "install.sh"
DEV_VENV = Path(sys.prefix)  # the test run's virtualenv; releases under test share its packages
# Not part of a release: version control, virtualenvs, state, tests and build leftovers.
NOT_SHIPPED = (".git", ".venv", "var", "tests", "bench", "build", "*.egg-info", "__pycache__")
WHEEL_BUILD_TIMEOUT_SECONDS = 300


def copy_checkout(dest: Path) -> Path:
    shutil.copytree(CHECKOUT, dest, ignore=shutil.ignore_patterns(*NOT_SHIPPED), symlinks=True)
    return dest


def set_version(tree: Path, version: str) -> None:
    """The version lives in setup.cfg (the package) and instore/__init__.py (``--version``)."""
    for name, prefix in (("setup.cfg", "version = "), ("instore/__init__.py", "__version__ = ")):
        path = tree / name
        lines = [
            (f'{prefix}"{version}"' if name.endswith(".py") else f"{prefix}{version}")
            if line.startswith(prefix)
            else line
            for line in path.read_text().splitlines()
        ]
        path.write_text("\n".join(lines) + "\n")


def append_to(tree: Path, module: str, code: str) -> None:
    path = tree / module
    path.write_text(path.read_text() + "\n\n# --- added for a release under test ---\n" + code)


def build_wheel(tree: Path, out: Path) -> Path:
    """``pip wheel`` the tree (setuptools and wheel come from the package index, as usual)."""
    out.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(tree)],
        capture_output=True,
        text=True,
        timeout=WHEEL_BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout}\n{result.stderr}"
    wheels = sorted(out.glob("instore-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def release_wheel(work: Path, version: str, changes: dict[str, str] | None = None) -> Path:
    """A wheel of this checkout as ``version``, with ``changes`` (module: code) appended."""
    tree = copy_checkout(work / f"src-{version}")
    set_version(tree, version)
    for module, code in (changes or {}).items():
        append_to(tree, module, code)
    return build_wheel(tree, work / f"wheel-{version}")


def install(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the checkout's install.sh into the staging ``root``."""
    result = subprocess.run(
        ["bash", str(INSTALL_SH), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=WHEEL_BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"install.sh failed:\n{result.stdout}\n{result.stderr}"
    return result


def need_venv() -> None:
    """install.sh makes each release's virtualenv with the system python3."""
    if shutil.which("python3") is None:
        pytest.skip("python3 is not installed")
    probe = subprocess.run(
        ["python3", "-c", "import ensurepip, venv"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("python3 cannot make virtualenvs: apt-get install python3-venv")
