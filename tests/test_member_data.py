"""Download my data and delete my account: a planted record in every member table is exported,
and erasure leaves nothing in any table that points back at the member."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from community import friends
from instore import audit, events, hookimpl, member_data, members, sessions
from instore.cli import main
from instore.clock import utcnow
from instore.config import Config
from instore.member_data import MemberTable
from instore.plugins import pm
from offers import notifications, tills
from tests.conftest import PASSWORD, AuthActions
from tests.test_offers_decide import make_offer as make_live_offer

ANA_MAC = "02:aa:00:00:00:03"
ANA_NAME = "Anastasia Erasewell"  # unique, so any copy of it left behind is found
OTHER_MAC = "02:bb:00:00:00:01"

# Column names that point at a member: a table with one must be declared by its package.
MEMBER_COLUMN_NAMES = frozenset(
    {
        "member_id",
        "actor_id",
        "friend_id",
        "requester_id",
        "addressee_id",
        "blocker_id",
        "blocked_id",
        "author_id",
        "assignee_id",
        "owner_id",
        "flagger_id",
        "moderator_id",
        "staff_id",
        "created_by",
        "decided_by",
        "device",
    }
)


def is_member_column(name: str) -> bool:
    return name in MEMBER_COLUMN_NAMES or name.endswith("_member")


def table_columns(db: sqlite_utils.Database) -> dict[str, list[str]]:
    tables = [
        row[0]
        for row in db.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {t: [c[1] for c in db.conn.execute(f"PRAGMA table_info({t})")] for t in tables}


def make_offer(db: sqlite_utils.Database) -> int:
    """A saved live offer (the decision tests' own), for rows that must name an offer."""
    offer = make_live_offer(db, zones=[])
    assert offer.id is not None
    return offer.id


# (table, a function picking the planted row out of an export's rows) for every exported table.
Planted = dict[str, Callable[[dict[str, Any]], bool]]


def plant(db: sqlite_utils.Database) -> tuple[members.Member, members.Member, Planted, Planted]:
    """Ben and Cleo first (so Ana's id is 3, not 1), then one row of Ana's in every table.

    Returns Ana, Ben, the rows that must be in Ana's export and the rows about her in other
    members' records, which are erased but not exported.
    """
    ben = members.create_member(db, display_name="Ben", password=PASSWORD, email="ben@x.org")
    cleo = members.create_member(db, display_name="Cleo", password=PASSWORD, email="cleo@x.org")
    ana = members.create_member(db, display_name=ANA_NAME, password=PASSWORD, email="ana@x.org")
    dan = members.create_member(db, display_name="Dan", password=PASSWORD, email="dan@x.org")
    assert ana.id == 3
    device = f"m:{ana.id}"
    ex = db.conn.execute
    # Kernel.
    members.record_consents(db, ana.id, {"wifi_terms": True, "marketing": True}, "v1")
    members.link_device(db, ANA_MAC, ana.id)
    session = sessions.authorize_client(
        db, mac=ANA_MAC, ip="10.0.0.3", member_id=ana.id, hours=8, idle_minutes=60
    )
    sessions.authorize_client(
        db, mac=OTHER_MAC, ip="10.0.0.1", member_id=ben.id, hours=8, idle_minutes=60
    )
    login = events.append(db, "portal.login", {"member_id": ana.id, "session_id": session.id})
    zone_event = events.append(
        db, "zone_enter", {"device": device, "member_id": ana.id, "zone_id": 1}
    )
    events.append(db, "portal.login", {"member_id": ben.id, "session_id": 99})
    acted = audit.record(db, ana.id, ANA_NAME, "offer.pause", "offer:1", {"a": 1}, {"a": 2})
    about = audit.record(db, ben.id, "Ben", "staff.role", f"member:{ana.id}", {"n": ANA_NAME})
    # Presence.
    ex("INSERT INTO zones (name, polygon, created_at) VALUES ('Shoes', '[]', 't')")
    ex("INSERT INTO sensors (id, kind, x, y) VALUES ('s1', 'sim', 0, 0)")
    ex("INSERT INTO sightings (ts, device, sensor_id, rssi) VALUES ('t1', ?, 's1', -50)", [device])
    ex(
        "INSERT INTO presence_state (device, member_id, zone_id, entered_at, last_seen_at)"
        " VALUES (?, ?, 1, 't', 't')",
        [device, ana.id],
    )
    ex(
        "INSERT INTO sim_walks (member_id, zone_id, requested_at) VALUES (?, 1, 'walk-t')",
        [ana.id],
    )
    ex("INSERT INTO zone_dwell_open (device, zone_id, entered_at) VALUES (?, 1, 'o')", [device])
    # Offers.
    offer_id = make_offer(db)
    decision = ex(
        "INSERT INTO decisions (ts, member_id, offer_id, outcome, reason)"
        " VALUES ('d', ?, ?, 'sent', 'planted')",
        [ana.id, offer_id],
    ).lastrowid
    note = ex(
        "INSERT INTO decisions (ts, member_id, friend_id, outcome) VALUES ('f', ?, ?, 'sent')",
        [ben.id, ana.id],
    ).lastrowid
    offer_note = notifications.create_notification(
        db,
        member_id=ana.id,
        kind="offer",
        title="25% off",
        body="",
        now=utcnow(),
        decision_id=decision,
        code="C0DE3",
    )
    friend_note = notifications.create_notification(
        db,
        member_id=ben.id,
        kind="friend",
        title=f"{ANA_NAME} is in the store",
        body="",
        now=utcnow(),
        decision_id=note,
        data={"friend_id": ana.id, "friend_name": ANA_NAME, "zone": "Shoes"},
    )
    ben_note = notifications.create_notification(
        db, member_id=ben.id, kind="offer", title="Hi", body="", now=utcnow()
    )
    ex(
        "INSERT INTO deliveries (notification_id, channel, target, ts, status)"
        " VALUES (?, 'webpush', 'https://push.example/ana', 't', 'sent')",
        [offer_note],
    )
    ex(
        "INSERT INTO push_subscriptions (member_id, endpoint, p256dh, auth, created_at)"
        " VALUES (?, 'https://push.example/ana', 'k', 'a', 't')",
        [ana.id],
    )
    ex("INSERT INTO visits (member_id, event_id, ts) VALUES (?, ?, 'v')", [ana.id, zone_event])
    till, _key = tills.create_till(db, "Till 1")
    ex(
        "INSERT INTO redemptions (code, notification_id, offer_id, member_id, till_id, ts)"
        " VALUES ('C0DE3', ?, ?, ?, ?, 'r')",
        [offer_note, offer_id, ana.id, till.id],
    )
    ex(
        "INSERT INTO purchases (member_id, product, till_id, ts, amount_cents)"
        " VALUES (?, 'socks', ?, 'p', 499)",
        [ana.id, till.id],
    )
    # Community: Ana and Ben are friends, Ana blocked Dan, Cleo blocked Ana.
    friends.befriend(db, ana.id, ben.id)
    friends.accept_friend(db, ben.id, ana.id)
    friends.block(db, cleo.id, ana.id)
    friends.befriend(db, ben.id, cleo.id)
    ex(
        "INSERT INTO friend_settings (member_id, visibility, updated_at) VALUES (?, 'chosen', 's')",
        [ana.id],
    )
    ex("INSERT INTO friend_visible_to (member_id, friend_id) VALUES (?, ?)", [ana.id, ben.id])
    ex("INSERT INTO friend_visible_to (member_id, friend_id) VALUES (?, ?)", [ben.id, ana.id])
    ex("INSERT INTO member_interests (member_id, interest) VALUES (?, 'running')", [ana.id])
    friends.block(db, ana.id, dan.id)
    # Support: Ana's question, answered by Ben (staff for the occasion).
    thread = ex(
        "INSERT INTO support_threads (member_id, subject, assignee_id, created_at, updated_at)"
        " VALUES (?, 'Where are the socks?', ?, 't', 't')",
        [ana.id, ben.id],
    ).lastrowid
    ex(
        "INSERT INTO support_messages (thread_id, author_id, from_staff, body, created_at)"
        " VALUES (?, ?, 0, 'Asked by Ana', 't'), (?, ?, 1, 'Aisle 3', 't')",
        [thread, ana.id, thread, ben.id],
    )
    # Profile, a board with an item, a comment and a reaction, feedback, moderation.
    ex(
        "INSERT INTO member_profiles (member_id, bio, avatar_path, updated_at)"
        " VALUES (?, 'Runs daily', NULL, 't')",
        [ana.id],
    )
    product = ex(
        "INSERT INTO products (sku, name, category, updated_at) VALUES ('S1', 'Socks', 'run', 't')"
    ).lastrowid
    board = ex(
        "INSERT INTO boards (owner_id, title, created_at, updated_at) VALUES (?, 'Race', 't', 't')",
        [ana.id],
    ).lastrowid
    ex(
        "INSERT INTO board_items (board_id, product_id, note, created_at) VALUES (?, ?, 'n1', 't')",
        [board, product],
    )
    ex(
        "INSERT INTO board_comments (board_id, author_id, body, created_at)"
        " VALUES (?, ?, 'Nice race kit', 't')",
        [board, ana.id],
    )
    ex(
        "INSERT INTO board_reactions (board_id, member_id, reaction, created_at)"
        " VALUES (?, ?, 'love', 't')",
        [board, ana.id],
    )
    ex(
        "INSERT INTO product_reviews (product_id, author_id, rating, body, created_at)"
        " VALUES (?, ?, 4, 'Warm socks', 't')",
        [product, ana.id],
    )
    poll = ex(
        "INSERT INTO polls (question, created_by, created_at) VALUES ('Which colour?', ?, 't')",
        [ana.id],
    ).lastrowid
    option = ex("INSERT INTO poll_options (poll_id, label) VALUES (?, 'Red')", [poll]).lastrowid
    ex(
        "INSERT INTO poll_votes (poll_id, option_id, member_id, created_at) VALUES (?, ?, ?, 't')",
        [poll, option, ana.id],
    )
    ex(
        "INSERT INTO suggestions (author_id, body, created_at) VALUES (?, 'Open at 8', 't')",
        [ana.id],
    )
    bens = ex(
        "INSERT INTO suggestions (author_id, body, created_at) VALUES (?, 'Ben idea', 't')",
        [ben.id],
    ).lastrowid
    ex(
        "INSERT INTO staff_answers (item_kind, item_id, staff_id, body, created_at)"
        " VALUES ('suggestion', ?, ?, 'We will', 't'), ('suggestion', 1, ?, 'Thanks Ana', 't')",
        [bens, ana.id, ben.id],
    )
    ex(
        "INSERT INTO watched_words (word, action, created_by, created_at)"
        " VALUES ('spamword', 'block', ?, 't')",
        [ana.id],
    )
    ex(
        "INSERT INTO flags (item_kind, item_id, flagger_id, reason, created_at)"
        " VALUES ('board', 99, ?, 'spam', 'flagged-t')",
        [ana.id],
    )
    ex(
        "INSERT INTO flags (item_kind, item_id, flagger_id, reason, created_at)"
        " VALUES ('profile', ?, ?, 'spam', 't')",
        [ana.id, ben.id],
    )
    action = ex(
        "INSERT INTO moderation_actions (ts, moderator_id, action, member_id, reason)"
        " VALUES ('t', ?, 'warn', ?, 'rude')",
        [ben.id, ana.id],
    ).lastrowid
    ex(
        "INSERT INTO moderation_actions (ts, moderator_id, action, member_id, reason)"
        " VALUES ('t', ?, 'warn', ?, 'by ana')",
        [ana.id, dan.id],
    )
    ex(
        "INSERT INTO member_sanctions (member_id, kind, reason, starts_at)"
        " VALUES (?, 'warning', 'rude', 't')",
        [ana.id],
    )
    ex(
        "INSERT INTO bans (member_id, email, reason, created_at) VALUES (?, 'x@y.z', 'r', 't')",
        [ana.id],
    )
    ex(
        "INSERT INTO appeals (action_id, member_id, body, created_at) VALUES (?, ?, 'sorry', 't')",
        [action, ana.id],
    )
    dan_action = ex(
        "INSERT INTO moderation_actions (ts, action, member_id, reason)"
        " VALUES ('t', 'warn', ?, 'x')",
        [dan.id],
    ).lastrowid
    ex(
        "INSERT INTO appeals (action_id, member_id, body, created_at, decided_by)"
        " VALUES (?, ?, 'dan appeal', 't', ?)",
        [dan_action, dan.id, ana.id],
    )

    exported: Planted = {
        "credentials": lambda r: r["password_hash"] == member_data.HIDDEN,
        "consents": lambda r: r["kind"] == "marketing",
        "devices": lambda r: r["mac"] == ANA_MAC,
        "sessions": lambda r: r["id"] == session.id,
        "events": lambda r: r["id"] in (login, zone_event),
        "audit_log": lambda r: r["id"] in (acted, about),
        "sightings": lambda r: r["sensor_id"] == "s1",
        "presence_state": lambda r: r["device"] == device,
        "sim_walks": lambda r: r["requested_at"] == "walk-t",
        "zone_dwell_open": lambda r: r["entered_at"] == "o",
        "decisions": lambda r: r["reason"] == "planted",
        "notifications": lambda r: r["id"] == offer_note,
        "deliveries": lambda r: r["target"] == "https://push.example/ana",
        "push_subscriptions": lambda r: r["endpoint"] == "https://push.example/ana",
        "visits": lambda r: r["event_id"] == zone_event,
        "redemptions": lambda r: r["code"] == "C0DE3",
        "purchases": lambda r: r["product"] == "socks",
        "friendships": lambda r: r["addressee_id"] == ben.id and r["status"] == "accepted",
        "blocks": lambda r: r["blocked_id"] == dan.id,
        "friend_settings": lambda r: r["visibility"] == "chosen",
        "friend_visible_to": lambda r: r["friend_id"] == ben.id,
        "member_interests": lambda r: r["interest"] == "running",
        "support_threads": lambda r: r["subject"] == "Where are the socks?",
        "support_messages": lambda r: r["body"] == "Asked by Ana",
        "member_profiles": lambda r: r["bio"] == "Runs daily",
        "board_items": lambda r: r["note"] == "n1",
        "boards": lambda r: r["title"] == "Race",
        "board_reactions": lambda r: r["reaction"] == "love",
        "board_comments": lambda r: r["body"] == "Nice race kit",
        "product_reviews": lambda r: r["body"] == "Warm socks",
        "polls": lambda r: r["question"] == "Which colour?",
        "poll_votes": lambda r: r["option_id"] == option,
        "suggestions": lambda r: r["body"] == "Open at 8",
        "staff_answers": lambda r: r["body"] == "We will",
        "flags": lambda r: r["created_at"] == "flagged-t",
        "moderation_actions": lambda r: r["reason"] == "rude",
        "member_sanctions": lambda r: r["kind"] == "warning",
        "bans": lambda r: r["email"] == "x@y.z",
        "appeals": lambda r: r["body"] == "sorry",
    }
    others: Planted = {
        "decisions": lambda r: r["id"] == note,
        "notifications": lambda r: r["id"] == friend_note,
        "blocks": lambda r: r["blocker_id"] == cleo.id,
        "friend_visible_to": lambda r: r["member_id"] == ben.id,
        "watched_words": lambda r: r["word"] == "spamword",
        "moderation_actions": lambda r: r["reason"] == "by ana",
        "appeals": lambda r: r["body"] == "dan appeal",
    }
    assert ben_note  # Ben's own notification, which must survive
    return ana, ben, exported, others


def leftovers(db: sqlite_utils.Database, member: members.Member) -> list[str]:
    """Every cell in every table that still points at the member, by id, device, name or JSON."""
    texts = [member.email or "", member.loyalty_number, member.display_name, ANA_MAC]
    patterns = [
        re.compile(rf"\bm:{member.id}\b"),
        re.compile(rf"member:{member.id}\b"),
        re.compile(rf'"(member_id|friend_id)": {member.id}\b'),
    ]
    found = []
    for table, columns in table_columns(db).items():
        for row in db.conn.execute(f"SELECT * FROM {table}"):  # noqa: S608
            for name, value in zip(columns, row, strict=True):
                where = f"{table}.{name}={value!r}"
                if is_member_column(name) and value == member.id:
                    found.append(where)
                elif isinstance(value, str):
                    # The revoked session row keeps its MAC for the gatekeeper, without the member.
                    skip_mac = table == "sessions" and name == "mac"
                    looked_for = [t for t in texts if t and not (skip_mac and t == ANA_MAC)]
                    if any(t in value for t in looked_for) or any(
                        p.search(value) for p in patterns
                    ):
                        found.append(where)
    return found


def references_members(db: sqlite_utils.Database, table: str) -> bool:
    return any(fk[2] == "members" for fk in db.conn.execute(f"PRAGMA foreign_key_list({table})"))


def test_every_table_with_a_member_column_is_declared(db: sqlite_utils.Database) -> None:
    """A future table that names members cannot be forgotten by export and erasure."""
    declared = {table.table for table in member_data.declared_tables()}
    missing = [
        table
        for table, columns in table_columns(db).items()
        if table != "members"
        and (any(is_member_column(c) for c in columns) or references_members(db, table))
    ]
    assert sorted(set(missing) - declared) == []
    assert declared <= set(table_columns(db)), "a declaration names a table that does not exist"


def test_export_has_every_planted_record_and_erasure_leaves_none(
    db: sqlite_utils.Database,
) -> None:
    ana, ben, exported, others = plant(db)
    assert set(exported) | set(others) >= {t.table for t in member_data.declared_tables()}
    events_before = db.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    data = json.loads(member_data.export_json(db, ana))
    assert data["member"]["email"] == "ana@x.org" and data["generated_at"]
    for table, is_planted in exported.items():
        assert any(is_planted(row) for row in data["tables"][table]), table
    for table, is_planted in others.items():
        assert not any(is_planted(row) for row in data["tables"].get(table, [])), table
    assert "password_hash" not in json.dumps(data).replace('"password_hash": "(hidden)"', "")

    planted_tables = {cell.split(".")[0] for cell in leftovers(db, ana)}
    assert planted_tables >= set(exported) - {
        "credentials",
        "devices",
        "deliveries",
        "board_items",  # found through its board
    }  # the search finds them
    report = member_data.erase_member(db, ana)
    assert report.sessions_revoked and report.deleted["sightings"] == 1
    assert leftovers(db, ana) == []
    assert members.get_member(db, ana.id) is None
    # Kept for the store, anonymised: the outbox, the audit log, the redemption, the session.
    assert db.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] > events_before
    assert db.conn.execute("SELECT COUNT(*) FROM redemptions").fetchone()[0] == 1
    actors = {row[0] for row in db.conn.execute("SELECT actor_name FROM audit_log")}
    assert member_data.DELETED_MEMBER in actors
    kept = db.conn.execute(
        "SELECT member_id, revoked_reason FROM sessions WHERE mac = ?", [ANA_MAC]
    )
    assert kept.fetchall() == [(None, member_data.REVOKE_REASON)]
    # The gatekeeper follows session.revoked events; the zone event's device is now a token.
    revoked = events.read_batch(db, "test", ["session.revoked"])
    assert {e.payload["session_id"] for e in revoked} == set(report.sessions_revoked)
    devices = [e.payload["device"] for e in events.read_batch(db, "test", ["zone_enter"])]
    assert len(devices) == 1 and devices[0].startswith("anon:")
    # Other members keep their own data.
    assert friends.are_mutual_friends(db, ben.id, 2) is False  # Ben→Cleo still pending
    assert friends.sent_requests(db, ben.id) == [2]
    assert len(notifications.recent_notifications(db, ben.id)) == 1
    assert len(sessions.list_sessions(db)) == 1
    # The ban outlives the account; the erased member's posts are gone (they did not keep them),
    # with the staff answers under them.
    assert db.conn.execute("SELECT member_id, email FROM bans").fetchall() == [(None, "x@y.z")]
    assert db.conn.execute("SELECT COUNT(*) FROM board_comments").fetchone()[0] == 0
    answers = db.conn.execute("SELECT body FROM staff_answers").fetchall()
    assert answers == [("We will",)]  # Ana's answer (as staff) on Ben's suggestion stays


def test_erasure_can_leave_posts_as_deleted_member(db: sqlite_utils.Database) -> None:
    """Chosen on erasure: comments, reviews and suggestions stay, signed by nobody."""
    ana, *_ = plant(db)
    member_data.erase_member(db, ana, keep_posts=True)
    assert leftovers(db, ana) == []
    kept = [
        db.conn.execute(f"SELECT author_id, body FROM {table}").fetchall()  # noqa: S608
        for table in ("product_reviews", "suggestions")
    ]
    assert kept == [[(None, "Warm socks")], [(None, "Open at 8"), (1, "Ben idea")]]
    answers = db.conn.execute("SELECT body FROM staff_answers ORDER BY id").fetchall()
    assert answers == [("We will",), ("Thanks Ana",)]  # the answer under her kept post stays
    # Her comment was on her own board, which (owned, not posted) went with the account.
    assert db.conn.execute("SELECT COUNT(*) FROM boards").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM board_comments").fetchone()[0] == 0


def test_erasure_is_one_transaction(db: sqlite_utils.Database) -> None:
    ana, *_ = plant(db)

    class Broken:
        @hookimpl
        def member_data_tables(self) -> list[MemberTable]:
            return [MemberTable("no_such_table", "member_id = :member_id")]

    pm.register(Broken(), name="broken-member-data")
    try:
        with pytest.raises(sqlite3.OperationalError):
            member_data.erase_member(db, ana)
    finally:
        pm.unregister(name="broken-member-data")
    assert members.get_member(db, ana.id) is not None
    assert db.conn.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 1
    assert sessions.list_sessions(db)[-1]["member_id"] == ana.id


def test_declared_uploads_are_zipped_and_removed(db: sqlite_utils.Database, tmp_path: Path) -> None:
    ana = members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@x.org")
    db.conn.execute("CREATE TABLE avatars (member_id INTEGER, file TEXT)")
    db.conn.execute("INSERT INTO avatars VALUES (?, 'a/ana.png'), (?, '../escape')", [ana.id] * 2)
    uploads = tmp_path / "uploads"
    (uploads / "a").mkdir(parents=True)
    (uploads / "a" / "ana.png").write_bytes(b"\x89PNG picture")
    (tmp_path / "escape").write_text("outside the uploads directory")

    class Avatars:
        @hookimpl
        def member_data_tables(self) -> list[MemberTable]:
            return [MemberTable("avatars", "member_id = :member_id", file_column="file")]

    pm.register(Avatars(), name="avatars")
    try:
        archive = zipfile.ZipFile(io.BytesIO(member_data.export_zip(db, ana, uploads)))
        assert sorted(archive.namelist()) == ["data.json", "uploads/a/ana.png"]
        assert archive.read("uploads/a/ana.png") == b"\x89PNG picture"
        assert len(json.loads(archive.read("data.json"))["tables"]["avatars"]) == 2
        report = member_data.erase_member(db, ana, uploads)
    finally:
        pm.unregister(name="avatars")
    assert report.files_removed == 1 and not (uploads / "a" / "ana.png").exists()
    assert (tmp_path / "escape").exists()


# -- the portal ---------------------------------------------------------------------------------


def test_pages_need_sign_in(client: FlaskClient) -> None:
    for url in ("/account/data", "/account/data.json", "/account/data.zip", "/account/delete"):
        assert client.get(url).status_code == 302, url


def test_download_json_and_zip(client: FlaskClient, auth: AuthActions) -> None:
    auth.go_online()
    page = client.get("/account/data")
    assert page.status_code == 200 and b"/account/data.json" in page.data
    assert b"/account/data" in client.get("/account").data
    response = client.get("/account/data.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    assert data["member"]["email"] == "ana@example.com"
    assert data["tables"]["sessions"] and data["tables"]["consents"]
    archive = zipfile.ZipFile(io.BytesIO(client.get("/account/data.zip").data))
    assert archive.namelist() == ["data.json"]


def test_delete_with_wrong_password_changes_nothing(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    member = auth.go_online()
    response = client.post("/account/delete", data={"password": "not my password"})
    assert response.status_code == 400
    assert b"That password is not right" in response.data
    assert members.get_member(db, member.id) is not None
    assert client.post("/account/delete", data={"password": ""}).status_code == 400
    assert len(sessions.list_sessions(db)) == 1


def test_delete_account(client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database) -> None:
    member = auth.go_online()
    assert client.get("/account/delete").status_code == 200
    response = client.post("/account/delete", data={"password": PASSWORD})
    assert response.status_code == 302 and response.location.endswith("/signin")
    assert members.get_member(db, member.id) is None
    assert sessions.list_sessions(db) == []
    ended = sessions.list_sessions(db, include_ended=True)
    assert [(s["member_id"], s["revoked_reason"]) for s in ended] == [
        (None, member_data.REVOKE_REASON)
    ]
    assert client.get("/account").status_code == 302  # signed out
    assert b"do not match" in auth.login().data  # and cannot sign in again


@pytest.mark.parametrize("keep", [False, True])
def test_delete_account_keeps_posts_only_when_chosen(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database, keep: bool
) -> None:
    member = auth.go_online()
    db.conn.execute(
        "INSERT INTO suggestions (author_id, body, created_at) VALUES (?, 'More socks', 't')",
        [member.id],
    )
    db.conn.commit()
    page = client.get("/account/delete").get_data(as_text=True)
    assert 'name="keep_posts"' in page
    form = {"password": PASSWORD, **({"keep_posts": "y"} if keep else {})}
    assert client.post("/account/delete", data=form).status_code == 302
    left = db.conn.execute("SELECT author_id, body FROM suggestions").fetchall()
    assert left == ([(None, "More socks")] if keep else [])


def test_delete_needs_csrf(app: Flask, db: sqlite_utils.Database) -> None:
    client = app.test_client()  # CSRF on
    member = members.create_member(db, display_name="Ana", password=PASSWORD, email="a@x.org")
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = member.login_token
        flask_session["_fresh"] = True
    page = client.get("/account/delete").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None, page
    refused = client.post("/account/delete", data={"password": PASSWORD})
    assert refused.status_code == 400
    assert members.get_member(db, member.id) is not None
    done = client.post("/account/delete", data={"password": PASSWORD, "csrf_token": token[1]})
    assert done.status_code == 302
    assert members.get_member(db, member.id) is None


def test_staff_delete_in_the_console_not_here(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    staff = members.create_member(
        db, display_name="Sam", password=PASSWORD, email="sam@x.org", role="staff"
    )
    auth.login("sam@x.org")
    response = client.post("/account/delete", data={"password": PASSWORD})
    assert response.status_code == 400 and b"Staff accounts" in response.data
    assert members.get_member(db, staff.id) is not None


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def env(config: Config) -> dict[str, str]:
    return {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}


def test_cli_export_and_erase(
    env: dict[str, str], db: sqlite_utils.Database, tmp_path: Path
) -> None:
    ana, *_ = plant(db)
    runner = CliRunner()
    unknown = runner.invoke(main, ["member", "export", "nobody@x.org", "x.json"], env=env)
    assert unknown.exit_code == 2 and "no member 'nobody@x.org'" in unknown.output
    out = tmp_path / "ana.json"
    done = runner.invoke(main, ["member", "export", "ana@x.org", str(out)], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text())["member"]["loyalty_number"] == ana.loyalty_number
    zipped = tmp_path / "ana.zip"
    assert runner.invoke(main, ["member", "export", ana.loyalty_number, str(zipped)], env=env)
    assert zipfile.ZipFile(zipped).namelist() == ["data.json"]

    refused = runner.invoke(main, ["member", "erase", "ana@x.org"], env=env)
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert members.get_member(db, ana.id) is not None
    assert runner.invoke(main, ["member", "erase", "nobody@x.org", "--yes"], env=env).exit_code == 2
    erased = runner.invoke(main, ["member", "erase", "ana@x.org", "--yes", "--keep-posts"], env=env)
    assert erased.exit_code == 0, erased.output
    assert "1 WiFi sessions revoked" in erased.output
    assert leftovers(db, ana) == []
    kept = db.conn.execute("SELECT author_id, body FROM suggestions").fetchall()
    assert kept == [(None, "Open at 8"), (1, "Ben idea")]
