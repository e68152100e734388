"""Tables the hardware package owns: the gatekeeper's own status, for ``gatekeeper status``."""

from __future__ import annotations

from instore import hookimpl
from instore.migrations import Migration

HARDWARE_MIGRATIONS: list[Migration] = [
    Migration(
        "hardware",
        1,
        "gatekeeper status",
        (
            """CREATE TABLE gatekeeper_status (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                backend TEXT NOT NULL,
                pid INTEGER NOT NULL,
                started_at TEXT NOT NULL,
                last_reconcile_at TEXT,
                last_full_check_at TEXT,
                authorized INTEGER NOT NULL DEFAULT 0,
                added_total INTEGER NOT NULL DEFAULT 0,
                removed_total INTEGER NOT NULL DEFAULT 0,
                drift_fixed_total INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                last_error_at TEXT
            )""",
        ),
    ),
]


@hookimpl
def instore_migrations() -> list[Migration]:
    """The hardware package's schema steps."""
    return HARDWARE_MIGRATIONS
