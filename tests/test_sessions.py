"""Client sessions (the gatekeeper's desired state) and member records."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlite_utils

from instore import clock, members, sessions

MAC = "02:11:22:33:44:55"


def make_member(db: sqlite_utils.Database, email: str = "ana@example.com") -> members.Member:
    return members.create_member(db, display_name="Ana", password="long enough", email=email)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"),
        ("aabbccddeeff", "aa:bb:cc:dd:ee:ff"),
        (" aa:bb:cc:dd:ee:ff ", "aa:bb:cc:dd:ee:ff"),
    ],
)
def test_normalize_mac(raw: str, expected: str) -> None:
    assert sessions.normalize_mac(raw) == expected


@pytest.mark.parametrize("raw", ["", "aa:bb:cc", "zz:bb:cc:dd:ee:ff", "aa:bb-cc:dd:ee:ff"])
def test_bad_mac(raw: str) -> None:
    with pytest.raises(sessions.InvalidClient, match="not a MAC address"):
        sessions.normalize_mac(raw)


def test_authorize_and_revoke(db: sqlite_utils.Database) -> None:
    member = make_member(db)
    session = sessions.authorize_client(
        db, mac=MAC, ip="10.0.0.5", member_id=member.id, hours=8, idle_minutes=60
    )
    assert sessions.live_session(db, "10.0.0.5", MAC) == session
    # MAC and IP are bound together: the MAC alone on another IP is not authorized.
    assert sessions.live_session(db, "10.0.0.6", MAC) is None
    assert sessions.live_session(db, "10.0.0.5", "02:00:00:00:00:01") is None
    assert sessions.revoke_mac(db, MAC, "test") == [session.id]
    assert sessions.live_session(db, "10.0.0.5", MAC) is None
    kinds = [row[0] for row in db.conn.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds == ["session.started", "session.revoked"]


def test_new_session_replaces_old_one_for_mac_or_ip(db: sqlite_utils.Database) -> None:
    first = sessions.authorize_client(
        db, mac=MAC, ip="10.0.0.5", member_id=None, hours=8, idle_minutes=60
    )
    # DHCP gave 10.0.0.5 to another phone: the first phone's session must end.
    second = sessions.authorize_client(
        db, mac="02:00:00:00:00:09", ip="10.0.0.5", member_id=None, hours=8, idle_minutes=60
    )
    assert sessions.get_session(db, first.id).revoked_reason == "replaced"  # type: ignore[union-attr]
    assert [row["id"] for row in sessions.list_sessions(db)] == [second.id]
    assert len(sessions.list_sessions(db, include_ended=True)) == 2


def test_expiry_and_idle(db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    start = clock.utcnow()
    session = sessions.authorize_client(
        db, mac=MAC, ip="10.0.0.5", member_id=None, hours=1, idle_minutes=10
    )
    monkeypatch.setattr(sessions, "utcnow", lambda: start + timedelta(minutes=6))
    assert sessions.live_session(db, "10.0.0.5", MAC) is not None
    # Activity after half the idle window pushes the deadline out...
    assert sessions.refresh_idle(db, session.id, session.idle_deadline, 10)
    refreshed = sessions.get_session(db, session.id)
    assert refreshed is not None and refreshed.idle_deadline > session.idle_deadline
    # ...but activity early in the window does not write at all.
    assert not sessions.refresh_idle(db, session.id, refreshed.idle_deadline, 10)
    monkeypatch.setattr(sessions, "utcnow", lambda: start + timedelta(minutes=17))
    assert sessions.live_session(db, "10.0.0.5", MAC) is None  # idle for 11 minutes
    monkeypatch.setattr(sessions, "utcnow", lambda: start + timedelta(minutes=61))
    assert sessions.list_sessions(db) == []


def test_member_identifiers_and_passwords(db: sqlite_utils.Database) -> None:
    member = make_member(db)
    assert members.is_valid_loyalty_number(member.loyalty_number)
    assert members.authenticate(db, "ANA@example.com ", "long enough") == member
    assert members.authenticate(db, member.loyalty_number, "long enough") == member
    assert members.authenticate(db, "ana@example.com", "wrong") is None
    assert members.authenticate(db, "nobody@example.com", "long enough") is None
    with pytest.raises(members.AlreadyRegistered):
        make_member(db)
    stored = db.conn.execute("SELECT password_hash FROM credentials").fetchone()[0]
    assert stored.startswith("$argon2id$") and "long enough" not in stored


def test_consents_history_latest_wins(db: sqlite_utils.Database) -> None:
    member = make_member(db)
    members.record_consents(db, member.id, {"wifi_terms": True, "location": True}, "v1")
    members.record_consents(db, member.id, {"location": False}, "v1")
    current = members.current_consents(db, member.id)
    assert current["location"]["granted"] is False
    assert current["wifi_terms"]["granted"] is True
    assert members.has_accepted_terms(db, member.id, "v1")
    assert not members.has_accepted_terms(db, member.id, "v2")
    assert db.conn.execute("SELECT COUNT(*) FROM consents").fetchone()[0] == 3
    with pytest.raises(ValueError, match="unknown consent"):
        members.record_consents(db, member.id, {"telepathy": True}, "v1")


def test_luhn() -> None:
    assert members.luhn_check_digit("7992739871") == "3"  # the textbook example
    assert not members.is_valid_loyalty_number("400000000003")
