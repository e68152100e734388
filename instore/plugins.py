"""The one plug-in manager; built-ins and entry-point plug-ins register here."""

from __future__ import annotations

import importlib

import pluggy

from instore import hookspecs

# Built-in parts register through the same hooks third parties use.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "instore.migrations",
    "hardware.migrations",
    "presence.migrations",
    "offers.migrations",
    "community.migrations",
    "hardware.gateway",
    "hardware.clients",
    "instore.cli_users",
    "instore.cli_members",
    "hardware.cli",
    "presence.sources.builtin",
    "presence.plugins",
    "presence.cli",
    "offers.cli",
    "offers.plugins",
    "offers.cli_worker",
    "community.cli",
    "instore.cli_ops",
    "instore.cli_deploy",
    "instore.cli_uplink",
    "instore.cli_backup",
)

pm = pluggy.PluginManager("instore")
pm.add_hookspecs(hookspecs)

for _name in DEFAULT_PLUGINS:
    pm.register(importlib.import_module(_name), name=_name)

pm.load_setuptools_entrypoints("instore")
