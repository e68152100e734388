"""Identity: members by linked MAC or token with consent; everyone else by a daily keyed hash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlite_utils

from instore import members
from presence import identity as identity_module
from presence.identity import Identifier
from presence.observation import BLE, WIFI_PROBE, Observation

NOON = datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp()
NEXT_NOON = NOON + 86400
STRANGER = "a4:5e:60:11:22:33"  # a vendor (universally administered) MAC
RANDOM = "da:a1:19:00:00:01"  # locally administered: a phone's private address
LINKED = "02:00:00:00:00:42"


def probe(mac: str, ts: float = NOON, **payload: object) -> Observation:
    return Observation(ts, "s1", WIFI_PROBE, mac, -60, payload)


@pytest.fixture
def ana(db: sqlite_utils.Database) -> members.Member:
    member = members.create_member(db, display_name="Ana", password="long enough", email="a@x.es")
    members.link_device(db, LINKED, member.id)
    return member


def test_non_member_is_hashed_and_the_mac_never_stored(db: sqlite_utils.Database) -> None:
    ident = Identifier(db).identify(probe(STRANGER))
    assert ident.device.startswith("h:") and ident.member_id is None and not ident.footfall_only
    assert STRANGER not in ident.device
    dump = "\n".join(db.conn.iterdump())
    assert STRANGER not in dump and STRANGER.replace(":", "") not in dump


def test_hash_is_stable_within_a_day_and_unlinkable_across_days(db: sqlite_utils.Database) -> None:
    identifier = Identifier(db)
    today = identifier.identify(probe(STRANGER)).device
    assert identifier.identify(probe(STRANGER, NOON + 3600)).device == today
    tomorrow = identifier.identify(probe(STRANGER, NEXT_NOON)).device
    assert tomorrow != today
    # Yesterday's salt is gone: nothing on disk can recompute yesterday's hash.
    days = [row[0] for row in db.conn.execute("SELECT day FROM identity_salts")]
    assert days == ["2026-11-24"]


def test_randomized_macs_count_for_footfall_only(db: sqlite_utils.Database) -> None:
    assert Identifier(db).identify(probe(RANDOM)).footfall_only


def test_member_needs_location_consent(db: sqlite_utils.Database, ana: members.Member) -> None:
    identifier = Identifier(db)
    assert identifier.identify(probe(LINKED)).device.startswith("h:")  # no consent yet
    members.record_consents(db, ana.id, {"location": True}, "v1")
    identifier.refresh_members()
    assert identifier.identify(probe(LINKED)) == identity_module.Identity(f"m:{ana.id}", ana.id)
    assert identifier.member_macs == {LINKED: ana.id}
    members.record_consents(db, ana.id, {"location": False}, "v1")  # withdrawn
    identifier.refresh_members()
    assert identifier.identify(probe(LINKED)).member_id is None


def test_ble_token_resolves_to_a_consenting_member(
    db: sqlite_utils.Database, ana: members.Member
) -> None:
    members.record_consents(db, ana.id, {"location": True}, "v1")
    identifier = Identifier(db)
    advert = Observation(
        NOON, "b1", BLE, RANDOM, -70, {"decoded": {"loyalty": {"member_id": str(ana.id)}}}
    )
    assert identifier.identify(advert).member_id == ana.id
    unknown = Observation(
        NOON, "b1", BLE, RANDOM, -70, {"decoded": {"loyalty": {"member_id": "999"}}}
    )
    assert identifier.identify(unknown).member_id is None
