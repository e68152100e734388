"""What the console's offers tests share: a store in Madrid, a signed-in manager, the least a
manager fills in, and ways to post the form and read its messages back.

Imported by ``test_manage_offers.py`` and ``test_manage_offers_preview.py``; the ``config`` and
``manager`` fixtures are imported into each as ``config_fixture`` and ``manager_fixture``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from flask.testing import FlaskClient

from instore import members
from instore.clock import to_iso, utcnow
from instore.config import Config, load_config
from presence.floorplan_demo import seed_demo_floorplan
from tests.conftest import ConsoleActions

STORE_TZ = "Europe/Madrid"

# The least a manager fills in; the rest are the new-offer form's defaults or empty.
BASE_FORM: dict[str, Any] = {
    "name": "Spring trail shoes",
    "status": "draft",
    "title": "25% off trail shoes",
    "body": "Show this at the till.",
    "product": "TR-200 trail shoe",
    "product_tags": "running, trail",
    "base_price": "80.00",
    "benefit_kind": "percent_off",
    "benefit_value": "25",
    "zones": ["Shoes"],
    "valid_from": "2025-01-15T09:00",  # winter: UTC+1
    "valid_to": "2025-07-15T21:30",  # summer: UTC+2
    "trigger_kind": "zone_enter",
    "priority": "0",
    "holdout_percent": "0",
}


@pytest.fixture(name="config")
def config_fixture(tmp_path: Path) -> Config:
    """The shared defaults with the store in Madrid, so local and UTC times differ."""
    return load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
            "INSTORE_PORTAL_SECRET_KEY": "test-secret-key",
            "INSTORE_STORE_TIMEZONE": STORE_TZ,
        }
    )


@pytest.fixture(name="manager")
def manager_fixture(console: ConsoleActions, db: sqlite_utils.Database) -> members.Member:
    seed_demo_floorplan(db)
    return console.signin("manager")


def zone_ids(db: sqlite_utils.Database) -> dict[str, int]:
    return {name: zone_id for zone_id, name in db.conn.execute("SELECT id, name FROM zones")}


def post_offer(client: FlaskClient, url: str = "/manage/offers/new", **changes: Any) -> Any:
    data = {**BASE_FORM, **changes}
    return client.post(url, data={k: v for k, v in data.items() if v is not None})


def error_under(html: str, field_id: str) -> str:
    """The message the page shows under one field ("" when there is none)."""
    match = re.search(rf'<span class="error" id="{field_id}-error">(.*?)</span>', html, re.S)
    return "" if match is None else match.group(1)


def shopper(
    db: sqlite_utils.Database,
    name: str,
    *,
    tier: str = "member",
    interests: tuple[str, ...] = (),
    marketing: bool = True,
) -> members.Member:
    """A shopper whose consents date from 30 days ago (before every recorded event here)."""
    member = members.create_member(
        db, display_name=name, password="correct horse battery", email=f"{name}@example.com"
    )
    members.record_consents(
        db, member.id, {"wifi_terms": True, "location": True, "marketing": marketing}, "v1"
    )
    db.conn.execute(
        "UPDATE consents SET ts = ? WHERE member_id = ?",
        (to_iso(utcnow() - timedelta(days=30)), member.id),
    )
    db.conn.execute("UPDATE members SET tier = ? WHERE id = ?", (tier, member.id))
    for interest in interests:
        db.conn.execute("INSERT INTO member_interests VALUES (?, ?)", (member.id, interest))
    return member
