"""What the moderation tests share: members old enough to post, boards and comments written as the
boards feature writes them (screened, stored, queued), an author's edit, and reading back the
moderation records.

Boards and comments are plain SQL inserts through ``community.screening`` — the same steps the
boards pages take — so these tests do not depend on pages built separately.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from community import screening
from community.content import CONTENT_KINDS, status_after_edit
from instore import members
from instore.clock import to_iso, utcnow
from instore.config import DEFAULTS
from instore.db import transaction

PASSWORD = "correct horse battery"
# Two payloads for every text field: a script tag and an attribute break-out.
XSS_PAYLOADS: tuple[str, ...] = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
)
XSS_ESCAPED: dict[str, str] = {
    "<script>alert(1)</script>": "&lt;script&gt;alert(1)&lt;/script&gt;",
    '"><img src=x onerror=alert(1)>': "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
}
# Members older than the new-member window, so the new-member limits stay out of the way.
SETTLED = timedelta(days=30)
LIMITS = screening.Limits.from_config(DEFAULTS["community"])


def make_member(
    db: sqlite_utils.Database,
    name: str,
    email: str | None = None,
    role: str = "shopper",
    age: timedelta = SETTLED,
) -> members.Member:
    """A member who joined ``age`` ago: by default long enough to post without the new-member
    limits."""
    member = members.create_member(
        db,
        display_name=name,
        password=PASSWORD,
        email=email or f"{name.lower()}@example.com",
        role=role,
    )
    db.conn.execute(
        "UPDATE members SET created_at = ? WHERE id = ?", (to_iso(utcnow() - age), member.id)
    )
    db.conn.commit()
    return member


def make_board(
    db: sqlite_utils.Database,
    owner_id: int,
    title: str = "Summer outfit",
    audience: str = "public",
    status: str = "visible",
) -> int:
    now = to_iso(utcnow() - timedelta(hours=1))
    with transaction(db):
        cursor = db.conn.execute(
            """INSERT INTO boards (owner_id, title, audience, status, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (owner_id, title, audience, status, now, now),
        )
    return int(cursor.lastrowid or 0)


def make_comment(
    db: sqlite_utils.Database,
    board_id: int,
    author_id: int,
    body: str = "Lovely colours",
    status: str = "visible",
) -> int:
    """A comment stored as it is, without screening (for tests about what follows)."""
    with transaction(db):
        cursor = db.conn.execute(
            """INSERT INTO board_comments (board_id, author_id, body, status, created_at)
               VALUES (?, ?, ?, ?, ?)""",
            (board_id, author_id, body, status, to_iso(utcnow() - timedelta(minutes=30))),
        )
    return int(cursor.lastrowid or 0)


def post_comment(
    db: sqlite_utils.Database,
    board_id: int,
    author_id: int,
    body: str,
    now: datetime | None = None,
) -> int:
    """A comment as the boards pages post it: screened, stored with its status, queued if needed.

    Raises ``screening.Refused`` with the member's sentence, like the page would show.
    """
    now = now or utcnow()
    with transaction(db):
        screened = screening.screen(db, author_id, {"body": body}, now, LIMITS)
        cursor = db.conn.execute(
            """INSERT INTO board_comments (board_id, author_id, body, status, created_at)
               VALUES (?, ?, ?, ?, ?)""",
            (board_id, author_id, screened.texts["body"], screened.status, to_iso(now)),
        )
        comment_id = int(cursor.lastrowid or 0)
        screening.record(db, "comment", comment_id, screened, now)
    return comment_id


def author_edits(db: sqlite_utils.Database, kind: str, item_id: int, texts: dict[str, str]) -> str:
    """The author's edit as the content owners do it: screen, store, new status; the status."""
    storage = CONTENT_KINDS[kind]
    now = utcnow()
    with transaction(db):
        row = db.conn.execute(
            f"SELECT {storage.author}, status FROM {storage.table} WHERE {storage.key} = ?",  # noqa: S608
            (item_id,),
        ).fetchone()
        screened = screening.screen(db, row[0], texts, now, LIMITS)
        status = status_after_edit(row[1], screened.status)
        assignments = ", ".join(f"{column} = ?" for column in screened.texts)
        db.conn.execute(
            f"UPDATE {storage.table} SET {assignments}, status = ?, {storage.stamp} = ? "  # noqa: S608
            f"WHERE {storage.key} = ?",
            (*screened.texts.values(), status, to_iso(now), item_id),
        )
        screening.record(db, kind, item_id, screened, now)
    return status


def status_of(db: sqlite_utils.Database, kind: str, item_id: int) -> str:
    storage = CONTENT_KINDS[kind]
    row = db.conn.execute(
        f"SELECT status FROM {storage.table} WHERE {storage.key} = ?",  # noqa: S608
        (item_id,),
    ).fetchone()
    return str(row[0])


def actions(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every moderation_actions row, oldest first, with its detail decoded."""
    rows = list(db.query("SELECT * FROM moderation_actions ORDER BY id"))
    for row in rows:
        row["detail"] = json.loads(row["detail"])
    return rows


def audit(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM audit_log ORDER BY id"))


def notes_for(db: sqlite_utils.Database, member_id: int) -> list[dict[str, Any]]:
    """The member's 'community' notifications, oldest first, with data decoded."""
    rows = list(
        db.query(
            "SELECT * FROM notifications WHERE member_id = ? AND kind = 'community' ORDER BY id",
            [member_id],
        )
    )
    for row in rows:
        row["data"] = json.loads(row["data"])
    return rows


def signed_in(app: Flask, email: str) -> FlaskClient:
    """A fresh client signed in on the portal as ``email``."""
    client = app.test_client()
    response = client.post("/signin", data={"identifier": email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def console_client(app: Flask, email: str) -> FlaskClient:
    """A fresh client signed in to the console as ``email``."""
    client = app.test_client()
    response = client.post("/manage/signin", data={"identifier": email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def assert_inert(html: str, payload: str) -> None:
    """The payload shows as text: its escaped form is there, the raw tag is not."""
    assert XSS_ESCAPED[payload] in html, f"escaped {payload!r} not found"
    assert payload not in html, f"raw {payload!r} in the page"
