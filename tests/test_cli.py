"""The ``instore`` command: help everywhere, clear exit 2 on mistakes, sessions by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
import sqlite_utils
from click.testing import CliRunner

from instore import sessions
from instore.cli import main
from instore.config import Config
from instore.migrations import KERNEL_MIGRATIONS


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.fixture
def env(config: Config) -> dict[str, str]:
    return {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}


@pytest.mark.parametrize("command", all_commands(main), ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # The docstring's first line is the summary; no command is left undocumented.
    assert len(result.output.splitlines()) > 3


def test_db_upgrade_and_status(env: dict[str, str]) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["db", "upgrade"], env=env)
    assert first.exit_code == 0 and "applied instore 1" in first.output
    again = runner.invoke(main, ["db", "upgrade"], env=env)
    assert "schema is up to date" in again.output
    status = runner.invoke(main, ["db", "status"], env=env)
    latest = max(step.version for step in KERNEL_MIGRATIONS)
    assert f"instore: schema version {latest}" in status.output


def test_clients_and_deauth(env: dict[str, str], db: sqlite_utils.Database) -> None:
    runner = CliRunner()
    assert "no live sessions" in runner.invoke(main, ["clients"], env=env).output
    sessions.authorize_client(
        db, mac="02:aa:bb:cc:dd:ee", ip="10.0.0.7", member_id=None, hours=8, idle_minutes=60
    )
    listing = runner.invoke(main, ["clients"], env=env)
    assert "02:aa:bb:cc:dd:ee" in listing.output and "10.0.0.7" in listing.output
    result = runner.invoke(main, ["deauth", "02-AA-BB-CC-DD-EE"], env=env)
    assert result.exit_code == 0
    assert "revoked 1 session(s) for 02:aa:bb:cc:dd:ee" in result.output
    assert "no live sessions" in runner.invoke(main, ["clients"], env=env).output
    assert "revoked by operator" in runner.invoke(main, ["clients", "--all"], env=env).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deauth", "not-a-mac"], "is not a MAC address"),
        (["deauth", "02:00:00:00:00:01"], "no live session for 02:00:00:00:00:01"),
    ],
)
def test_deauth_mistakes_exit_2(env: dict[str, str], args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_config_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Run the real console entry point, as IT would."""
    bad = tmp_path / "instore.toml"
    bad.write_text("[portal]\nsession_hours = 'eight'\n")
    result = subprocess.run(
        [sys.executable, "-m", "instore", "--config", str(bad), "clients"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert str(bad) in result.stderr
    assert "portal.session_hours: expected an integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_shows_settings_and_hides_secret(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["config"], env={**env, "INSTORE_PORTAL_SECRET_KEY": "s3cret"}
    )
    assert result.exit_code == 0
    assert "s3cret" not in result.output
    assert "secret_key = '(hidden)'" in result.output
    assert "[portal]" in result.output
