"""``instore doctor, status, backup, restore and flags`` (issue 8, being built)."""

from __future__ import annotations

import click

from instore import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Nothing registered yet."""
