"""instore: the shared kernel (config, database, events outbox, hooks, CLI)."""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("instore")

__all__ = ["__version__", "hookimpl"]
