"""``instore`` commands of the community package (filled in by the catalogue work, issue 7)."""

from __future__ import annotations

import click

from instore import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    """No community commands yet."""
