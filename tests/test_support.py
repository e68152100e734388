"""The support inbox's rules on a real SQLite file: the queue order with a thread past the target,
first-response and resolution times from the stored timestamps, reopening on a member's reply,
the new-thread limit, canned replies — and the offers v5 rebuild that lets a notification be a
support answer without losing any notification, delivery or redemption link.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from community import support
from instore import members
from instore.db import all_migrations, connect, upgrade

NOW = datetime(2025, 3, 12, 11, 0, tzinfo=UTC)
TARGET = timedelta(minutes=60)


@pytest.fixture
def people(db: sqlite_utils.Database) -> dict[str, int]:
    """Two members (Ana, Ben) and a staff member (Sam)."""
    found = {
        name: members.create_member(
            db, display_name=name, password="correct horse battery", email=f"{name}@example.com"
        ).id
        for name in ("Ana", "Ben")
    }
    found["Sam"] = members.create_member(
        db,
        display_name="Sam",
        password="correct horse battery",
        email="sam@example.com",
        role="staff",
    ).id
    return found


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def test_queue_puts_the_thread_past_the_target_first(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, ben, sam = people["Ana"], people["Ben"], people["Sam"]
    answered = support.open_thread(db, ana, "Returns", "Can I return shoes?", NOW - minutes(300))
    support.staff_reply(db, answered, sam, "Yes, within 30 days.", NOW - minutes(290))
    recent = support.open_thread(db, ana, "Sizes", "Do you have 44?", NOW - minutes(10))
    breached = support.open_thread(db, ben, "Hours", "Open Sunday?", NOW - minutes(90))
    older_recent = support.open_thread(db, ben, "Parking", "Where?", NOW - minutes(30))
    closed = support.open_thread(db, ben, "Gift", "Wrapping?", NOW - minutes(500))
    support.close(db, closed, NOW - minutes(400))

    queue = support.inbox(db, TARGET, NOW)

    assert [t.id for t in queue] == [breached, older_recent, recent, answered]
    assert queue[0].breaches(TARGET, NOW) and not queue[1].breaches(TARGET, NOW)
    assert queue[0].waiting_for(NOW) == minutes(90)
    assert queue[-1].waiting_for(NOW) is None  # staff spoke last: nobody is waiting
    assert queue[0].member_name == "Ben"


def test_first_response_and_resolution_times_come_from_the_timestamps(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, sam = people["Ana"], people["Sam"]
    thread_id = support.open_thread(db, ana, "Returns", "Can I?", NOW)
    support.staff_reply(db, thread_id, sam, "Yes.", NOW + minutes(12))
    support.staff_reply(db, thread_id, sam, "Bring the receipt.", NOW + minutes(20))
    support.close(db, thread_id, NOW + minutes(45))

    thread = support.get_thread(db, thread_id)
    assert thread is not None
    assert thread.first_response_time == minutes(12)  # the first reply, not the last
    assert thread.resolution_time == minutes(45)
    other = support.open_thread(db, ana, "Sizes", "44?", NOW)
    support.staff_reply(db, other, sam, "Yes.", NOW + minutes(30))
    support.close(db, other, NOW + minutes(95))
    assert support.median_times(db) == (minutes(21), minutes(70))


def test_a_member_reply_reopens_a_closed_thread_and_waits_again(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, sam = people["Ana"], people["Sam"]
    thread_id = support.open_thread(db, ana, "Returns", "Can I?", NOW)
    support.staff_reply(db, thread_id, sam, "Yes.", NOW + minutes(5))
    support.close(db, thread_id, NOW + minutes(10))
    assert support.inbox(db, TARGET, NOW + minutes(11)) == []
    with pytest.raises(support.SupportError):
        support.close(db, thread_id, NOW + minutes(11))

    support.member_reply(db, thread_id, ana, "One more thing…", NOW + minutes(100))

    thread = support.get_thread(db, thread_id)
    assert thread is not None
    assert (thread.status, thread.closed_at, thread.resolution_time) == ("open", None, None)
    assert thread.first_response_time == minutes(5)  # the first response stays the first
    assert thread.waiting_for(NOW + minutes(170)) == minutes(70)
    assert [t.id for t in support.inbox(db, TARGET, NOW + minutes(170))] == [thread_id]
    assert support.inbox(db, TARGET, NOW + minutes(170))[0].breaches(TARGET, NOW + minutes(170))
    assert [m.from_staff for m in support.messages(db, thread_id)] == [False, True, False]


def test_members_only_reach_their_own_threads(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    thread_id = support.open_thread(db, people["Ana"], "Returns", "Can I?", NOW)
    assert support.member_thread(db, thread_id, people["Ben"]) is None
    assert support.member_threads(db, people["Ben"]) == []
    with pytest.raises(support.SupportError):
        support.member_reply(db, thread_id, people["Ben"], "Me too", NOW)
    assert len(support.messages(db, thread_id)) == 1


def test_new_threads_are_limited_per_hour(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana = people["Ana"]
    for n in range(support.NEW_THREADS_PER_HOUR):
        support.open_thread(db, ana, f"Question {n}", "?", NOW + minutes(n))
    with pytest.raises(support.TooManyThreads):
        support.open_thread(db, ana, "One too many", "?", NOW + minutes(10))
    support.open_thread(db, people["Ben"], "Mine", "?", NOW + minutes(10))  # per member
    support.open_thread(db, ana, "Later", "?", NOW + minutes(61))  # the hour has moved on


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("", "body"),
        ("subject", "   "),
        ("x" * (support.MAX_SUBJECT + 1), "body"),
        ("subject", "x" * (support.MAX_MESSAGE + 1)),
    ],
)
def test_empty_or_long_text_is_refused(
    db: sqlite_utils.Database, people: dict[str, int], subject: str, body: str
) -> None:
    with pytest.raises(support.SupportError):
        support.open_thread(db, people["Ana"], subject, body, NOW)
    assert support.member_threads(db, people["Ana"]) == []


def test_assign_and_canned_replies(db: sqlite_utils.Database, people: dict[str, int]) -> None:
    thread_id = support.open_thread(db, people["Ana"], "Returns", "Can I?", NOW)
    support.assign(db, thread_id, people["Sam"], NOW)
    thread = support.get_thread(db, thread_id)
    assert thread is not None and thread.assignee_name == "Sam"
    support.assign(db, thread_id, None, NOW)
    assert support.get_thread(db, thread_id).assignee_id is None  # type: ignore[union-attr]

    hours = support.add_canned_reply(db, "Opening hours", "9 to 21, every day.", NOW)
    with pytest.raises(support.SupportError):
        support.add_canned_reply(db, "Opening hours", "again", NOW)
    assert [c.title for c in support.canned_replies(db)] == ["Opening hours"]
    assert support.delete_canned_reply(db, hours)
    assert not support.delete_canned_reply(db, hours)


def _database_before_offers_v5(path: Path) -> sqlite_utils.Database:
    """A database with every schema step except offers v5 (and later), as an older box has."""
    db = connect(path)
    db.conn.execute(
        """CREATE TABLE schema_migrations (package TEXT NOT NULL, version INTEGER NOT NULL,
           description TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (package, version))"""
    )
    for step in all_migrations():
        if step.package == "offers" and step.version >= 5:
            continue
        for statement in step.statements:
            db.conn.execute(statement)
        db.conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?, '2025-01-01T00:00:00Z')",
            (step.package, step.version, step.description),
        )
    db.conn.commit()
    return db


def test_offers_v5_keeps_notifications_ids_deliveries_and_redemptions(tmp_path: Path) -> None:
    db = _database_before_offers_v5(tmp_path / "old.db")
    c = db.conn
    c.execute(
        "INSERT INTO members (id, loyalty_number, display_name, login_token, created_at)"
        " VALUES (1, '100000000001', 'Ana', 't', '2025-01-01T00:00:00Z')"
    )
    for n in (1, 2, 3):
        c.execute(
            "INSERT INTO notifications (ts, member_id, kind, title, code) VALUES (?, 1, ?, ?, ?)",
            ("2025-01-01T00:00:00Z", "offer" if n != 2 else "friend", f"n{n}", f"CODE{n}"),
        )
    c.execute("DELETE FROM notifications WHERE id = 3")  # an erased id is never reused
    c.execute(
        "INSERT INTO deliveries (notification_id, channel, ts, status)"
        " VALUES (1, 'webpush', '2025-01-01T00:00:00Z', 'sent')"
    )
    c.execute("INSERT INTO tills (id, name, key_hash, created_at) VALUES (1, 'T', 'h', 'x')")
    c.execute(
        "INSERT INTO redemptions (code, notification_id, member_id, till_id, ts)"
        " VALUES ('CODE1', 1, 1, 1, '2025-01-01T00:00:00Z')"
    )
    c.commit()
    with pytest.raises(sqlite3.IntegrityError):
        c.execute(
            "INSERT INTO notifications (ts, member_id, kind, title) VALUES ('x', 1, 'support', 't')"
        )

    applied = upgrade(db)

    # v6 rebuilds the same way for community news; the rows and links survive both.
    assert [(a.package, a.version) for a in applied] == [("offers", 5), ("offers", 6)]
    assert c.execute("SELECT id, kind, title FROM notifications ORDER BY id").fetchall() == [
        (1, "offer", "n1"),
        (2, "friend", "n2"),
    ]
    assert c.execute("SELECT notification_id, status FROM deliveries").fetchall() == [(1, "sent")]
    assert c.execute("SELECT notification_id FROM redemptions").fetchall() == [(1,)]
    cursor = c.execute(
        "INSERT INTO notifications (ts, member_id, kind, title) VALUES ('x', 1, 'support', 't')"
    )
    assert cursor.lastrowid == 4
    c.execute(
        "INSERT INTO notifications (ts, member_id, kind, title) VALUES ('x', 1, 'community', 't')"
    )
    indexes = {row[1] for row in c.execute("PRAGMA index_list(notifications)")}
    assert {"notifications_member", "notifications_kind_ts"} <= indexes
    assert c.execute("PRAGMA foreign_key_check").fetchall() == []
    db.conn.close()


def test_the_target_is_configurable_and_at_least_a_minute(tmp_path: Path) -> None:
    from instore.config import ConfigError, load_config

    base = {"INSTORE_DATABASE_PATH": str(tmp_path / "x.db")}
    assert load_config(environ=base)["community"]["support_target_minutes"] == 60
    changed = load_config(environ={**base, "INSTORE_COMMUNITY_SUPPORT_TARGET_MINUTES": "15"})
    assert changed["community"]["support_target_minutes"] == 15
    with pytest.raises(ConfigError, match="support_target_minutes"):
        load_config(environ={**base, "INSTORE_COMMUNITY_SUPPORT_TARGET_MINUTES": "0"})
