"""What every ``instore`` command shares: the lazily loaded config and the exit-2 helper.

Packages that add commands through the ``register_commands`` hook import this, not
``instore.cli``, so loading plug-ins never imports the CLI itself.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from instore.config import Config, ConfigError, load_config
from instore.db import DatabaseError, open_database
from instore.logs import setup_logging


def fail(message: str) -> NoReturn:
    """Exit 2 with a one-line message for the person at the keyboard."""
    click.echo(f"instore: {message}", err=True)
    sys.exit(2)


class Context:
    """Loads the config on first use so ``--help`` works even with a broken config file."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as exc:
                fail(f"bad configuration: {exc}")
            setup_logging(self._config["logging"]["level"])
        return self._config

    def db(self) -> Any:
        try:
            return open_database(
                self.config.database_path, self.config["database"]["busy_timeout_ms"]
            )
        except DatabaseError as exc:
            fail(str(exc))


pass_ctx = click.make_pass_decorator(Context)
