"""Plug-in hook specifications.

Built-in parts register through these same hooks (see ``instore.plugins.DEFAULT_PLUGINS``);
third-party packages register through the ``instore`` entry-point group. Each spec's docstring is
its documentation: ``tests/test_hooks.py`` fails when one is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from instore.config import Config
    from instore.member_data import MemberTable
    from instore.migrations import Migration

hookspec = pluggy.HookspecMarker("instore")


@hookspec
def instore_migrations() -> list[Migration]:
    """Return this package's schema migration steps; each package owns its tables."""
    raise NotImplementedError


@hookspec(firstresult=True)
def gateway_backend(name: str, config: Config) -> Any:
    """Return the gateway backend called ``name`` (e.g. "memory"), or None if not yours."""
    raise NotImplementedError


@hookspec(firstresult=True)
def client_lookup(name: str, config: Config) -> Any:
    """Return a client MAC lookup (IP address to MAC) for lookup ``name``, or None if not yours."""
    raise NotImplementedError


@hookspec(firstresult=True)
def presence_source(name: str, config: Config) -> Any:
    """Return the presence source called ``name`` (wifi, ble, replay, sim), or None if not ours."""
    raise NotImplementedError


@hookspec
def delivery_channels(config: Config) -> list[Any]:
    """Return this plug-in's delivery channels (``offers.channels.Channel``), or an empty list.

    The offers worker hands every new notification to each channel; the live feed needs none,
    as the portal streams the notifications table itself.
    """
    raise NotImplementedError


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands or groups to the ``instore`` CLI (a package's own subcommands)."""
    raise NotImplementedError


@hookspec
def member_data_tables() -> list[MemberTable]:
    """Return the ``instore.member_data.MemberTable`` declarations of this package's tables that
    hold member data: how to find a member's rows, and whether erasure deletes or anonymises them.
    """
    raise NotImplementedError
