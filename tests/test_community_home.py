"""The community's front page and the member menu: what a member sees, and what they must not."""

from __future__ import annotations

import sqlite_utils
from flask.testing import FlaskClient

from community import friends
from instore import members
from tests.conftest import PASSWORD, AuthActions

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def _board(db: sqlite_utils.Database, owner: int, title: str, audience: str = "public") -> int:
    cursor = db.conn.execute(
        "INSERT INTO boards (owner_id, title, audience, created_at, updated_at)"
        " VALUES (?, ?, ?, 't', 't')",
        (owner, title, audience),
    )
    db.conn.commit()
    return int(cursor.lastrowid or 0)


def test_signed_out_goes_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/community")
    assert response.status_code == 302 and "/signin" in response.location


def test_front_page_shows_what_the_member_may_see(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    ana = auth.go_online()
    ben = members.create_member(db, display_name="Ben", password=PASSWORD, email="b@x.org")
    dan = members.create_member(db, display_name="Dan", password=PASSWORD, email="d@x.org")
    _board(db, ben.id, "Ben's race kit")
    _board(db, ben.id, "Ben's secret", audience="friends")
    _board(db, dan.id, "Dan's boots")
    held = _board(db, ben.id, "Held board")
    db.conn.execute("UPDATE boards SET status = 'held' WHERE id = ?", [held])
    friends.block(db, dan.id, ana.id)  # Dan blocked Ana: his boards are gone for her
    poll = db.conn.execute(
        "INSERT INTO polls (question, created_at) VALUES ('Which colour?', 't')"
    ).lastrowid
    db.conn.execute(
        "INSERT INTO polls (question, created_at, closed_at) VALUES ('Old poll', 't', 't')"
    )
    suggestion = db.conn.execute(
        "INSERT INTO suggestions (author_id, body, created_at) VALUES (?, 'Open at 8', 't')",
        [ben.id],
    ).lastrowid
    db.conn.execute(
        "INSERT INTO staff_answers (item_kind, item_id, body, created_at)"
        " VALUES ('suggestion', ?, 'From March on', 't')",
        [suggestion],
    )
    db.conn.commit()

    page = client.get("/community").get_data(as_text=True)
    assert "Ben&#39;s race kit" in page
    for hidden in ("secret", "Dan&#39;s boots", "Held board", "Old poll"):
        assert hidden not in page, hidden
    assert "Which colour?" in page and poll
    assert "Open at 8" in page and "From March on" in page
    # The member menu is on every member page, with the current one marked.
    assert 'aria-current="page">Community</a>' in page
    assert 'href="/friends"' in page and 'href="/store"' in page


def test_front_page_text_renders_inert(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    ana = auth.go_online()
    members_name = db.conn.execute(
        "UPDATE members SET display_name = ? WHERE id = ?", (XSS, ana.id)
    )
    assert members_name.rowcount == 1
    _board(db, ana.id, XSS)
    db.conn.execute("INSERT INTO polls (question, created_at) VALUES (?, 't')", [XSS])
    db.conn.commit()
    page = client.get("/community").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_no_member_menu_before_sign_in(client: FlaskClient) -> None:
    page = client.get("/signin").get_data(as_text=True)
    assert "member-nav" not in page


def test_community_writes_and_uploads_are_rate_limited_per_ip(
    client: FlaskClient, auth: AuthActions
) -> None:
    """Behind screening's per-member limits, one IP cannot flood the store or its CPU."""
    auth.go_online()
    posts = [client.post("/suggestions", data={"body": f"Idea {n}"}).status_code for n in range(32)]
    assert 429 in posts and posts[0] != 429
    uploads = [client.post("/profile/avatar", data={}).status_code for _ in range(12)]
    assert 429 in uploads and uploads[0] != 429
