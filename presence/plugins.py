"""Built-in "sim" and "ble" sources, registered through the ``presence_source`` hook.

(The "wifi" and "replay" sources register in ``presence.sources.builtin``.)
"""

from __future__ import annotations

from typing import Any

from instore import hookimpl
from instore.db import open_database
from instore.keys import stored_secret
from presence.identity import Identifier

TOKEN_KEY_FILE = "ble_token_key"  # noqa: S105 - a file name, not a secret


def token_key(config: Any) -> bytes:
    """The box's key for loyalty-app tokens: configured, else generated once under var/."""
    return stored_secret(config.var_dir, TOKEN_KEY_FILE, config["presence"]["token_key"]).encode()


def _identifier(config: Any) -> tuple[Any, Identifier]:
    """The database and an identifier that knows today's consenting members."""
    db = open_database(config.database_path, config["database"]["busy_timeout_ms"])
    identifier = Identifier(db)
    identifier.refresh_members()
    return db, identifier


@hookimpl
def presence_source(name: str, config: Any) -> Any:
    """Return the "sim" or "ble" source built from ``[presence]``, else None."""
    presence = config["presence"]
    if name == "sim":
        from presence.sources.sim import create_sim_source

        db, identifier = _identifier(config)
        return create_sim_source(
            db,
            shoppers=presence["sim_shoppers"],
            speed=float(presence["sim_speed"]),
            seed=presence["sim_seed"],
            member_macs=identifier.member_macs,
        )
    if name == "ble":
        from presence.ble import TokenResolver
        from presence.sources.ble import create_ble_source

        db, identifier = _identifier(config)
        resolver = TokenResolver(token_key(config), identifier.consenting_member_ids())
        db.conn.close()
        return create_ble_source(
            presence["ble_sensor_id"], presence["ble_adapter"] or None, resolver
        )
    return None
