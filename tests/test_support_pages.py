"""The support pages on both sides: a member asks, staff answer from the shared inbox, and the
answer is a 'support' notification on the member's store page — plus bad input, the new-thread
limit, other members' threads, console access, canned replies and the audit trail.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlite_utils
from flask.testing import FlaskClient

from community import support
from instore.clock import utcnow
from tests.conftest import AuthActions, ConsoleActions

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def ask(client: FlaskClient, subject: str = "Opening hours", body: str = "Open on Sunday?") -> int:
    response = client.post("/support/new", data={"subject": subject, "body": body})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def audit_actions(db: sqlite_utils.Database) -> list[str]:
    return [row[0] for row in db.conn.execute("SELECT action FROM audit_log ORDER BY id")]


def test_member_asks_and_sees_their_thread(client: FlaskClient, auth: AuthActions) -> None:
    auth.create()
    auth.login()
    for page in ("/store", "/account"):
        assert 'href="/support/new"' in client.get(page).get_data(as_text=True)
    assert client.get("/support/new").status_code == 200

    thread_id = ask(client)

    page = client.get(f"/support/{thread_id}").get_data(as_text=True)
    assert "Open on Sunday?" in page and "Waiting for the store to answer." in page
    assert "Opening hours" in client.get("/support").get_data(as_text=True)


def test_support_pages_need_a_member(client: FlaskClient) -> None:
    for url in ("/support", "/support/new", "/support/1"):
        response = client.get(url)
        assert response.status_code == 302 and "/signin" in response.headers["Location"]


@pytest.mark.parametrize(
    ("subject", "body", "sentence"),
    [
        ("", "Body", "Write a few words about what you need."),
        ("Subject", "", "Write your question."),
        ("x" * (support.MAX_SUBJECT + 1), "Body", "Keep the subject under 120 characters."),
        ("Subject", "x" * (support.MAX_MESSAGE + 1), "Keep your message under 2000 characters."),
    ],
)
def test_bad_questions_get_the_form_again(
    client: FlaskClient, auth: AuthActions, subject: str, body: str, sentence: str
) -> None:
    auth.create()
    auth.login()
    response = client.post("/support/new", data={"subject": subject, "body": body})
    assert response.status_code == 400
    assert sentence in response.get_data(as_text=True)


def test_new_questions_are_rate_limited(client: FlaskClient, auth: AuthActions) -> None:
    auth.create()
    auth.login()
    for n in range(support.NEW_THREADS_PER_HOUR):
        ask(client, subject=f"Question {n}")
    response = client.post("/support/new", data={"subject": "More", "body": "Again"})
    assert response.status_code == 429
    assert "questions in the last hour" in response.get_data(as_text=True)


def test_another_members_thread_is_404(client: FlaskClient, auth: AuthActions) -> None:
    auth.create()
    auth.login()
    thread_id = ask(client)
    auth.logout()
    auth.create("ben@example.com", "Ben")
    auth.login("ben@example.com")
    assert client.get(f"/support/{thread_id}").status_code == 404
    assert client.post(f"/support/{thread_id}", data={"body": "Mine now"}).status_code == 404
    assert client.get("/support/999").status_code == 404
    assert "Opening hours" not in client.get("/support").get_data(as_text=True)


@pytest.mark.parametrize("url", ["/manage/support", "/manage/support/1", "/manage/support/canned"])
def test_shoppers_cannot_open_the_inbox(client: FlaskClient, auth: AuthActions, url: str) -> None:
    assert client.get(url).status_code == 302  # not signed in: to the console's sign-in
    auth.create()
    auth.login()
    assert client.get(url).status_code == 403
    assert client.post("/manage/support/1/reply", data={"reply-body": "x"}).status_code == 403


def test_staff_reply_reaches_the_members_store_page(
    client: FlaskClient, auth: AuthActions, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    ana = auth.create()
    auth.login()
    thread_id = ask(client, subject=XSS, body=XSS)
    sam = console.signin("staff")

    inbox = client.get("/manage/support").get_data(as_text=True)
    assert "Support inbox" in inbox and f'id="thread-{thread_id}"' in inbox
    assert "<script>alert" not in inbox and "&lt;script&gt;" in inbox
    page = client.get(f"/manage/support/{thread_id}").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;" in page

    response = client.post(f"/manage/support/{thread_id}/reply", data={"reply-body": XSS + " ok"})
    assert response.status_code == 302

    row = db.conn.execute(
        "SELECT kind, member_id, body, data FROM notifications WHERE kind = 'support'"
    ).fetchone()
    assert row[:3] == ("support", ana.id, XSS + " ok")
    assert f'"thread_id": {thread_id}' in row[3]
    assert audit_actions(db) == ["support.reply"]
    thread = support.get_thread(db, thread_id)
    assert thread is not None and thread.first_response_at is not None

    auth.login()
    store = client.get("/store").get_data(as_text=True)
    assert 'class="note support"' in store
    assert f'href="/support/{thread_id}"' in store
    assert "<script>alert" not in store and "&lt;script&gt;" in store
    assert sam.display_name  # the staff member is named in the thread, not in the notification
    conversation = client.get(f"/support/{thread_id}").get_data(as_text=True)
    assert "The store has answered." in conversation and "<script>alert" not in conversation


def test_reply_needs_text(client: FlaskClient, auth: AuthActions, console: ConsoleActions) -> None:
    auth.create()
    auth.login()
    thread_id = ask(client)
    console.signin("staff")
    response = client.post(f"/manage/support/{thread_id}/reply", data={"reply-body": " "})
    assert response.status_code == 400 and "Write the reply." in response.get_data(as_text=True)
    long = client.post(
        f"/manage/support/{thread_id}/reply", data={"reply-body": "x" * (support.MAX_MESSAGE + 1)}
    )
    assert long.status_code == 400
    for url in ("/manage/support/999", "/manage/support/999/close"):
        assert (client.get(url) if "close" not in url else client.post(url)).status_code == 404


def test_assign_close_and_member_reopens(
    client: FlaskClient, auth: AuthActions, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    auth.create()
    auth.login()
    thread_id = ask(client)
    sam = console.signin("staff")

    assert (
        client.post(
            f"/manage/support/{thread_id}/assign", data={"assign-assignee": str(sam.id)}
        ).status_code
        == 302
    )
    assert "Staff" in client.get("/manage/support").get_data(as_text=True)
    bad = client.post(f"/manage/support/{thread_id}/assign", data={"assign-assignee": "12345"})
    assert bad.status_code == 400
    assert client.post(f"/manage/support/{thread_id}/close").status_code == 302
    assert f'id="thread-{thread_id}"' not in client.get("/manage/support").get_data(as_text=True)
    page = client.get(f"/manage/support/{thread_id}").get_data(as_text=True)
    assert 'id="resolution">—' not in page  # the resolution time is shown once closed
    assert audit_actions(db) == ["support.assign", "support.close"]

    auth.login()
    assert client.post(f"/support/{thread_id}", data={"body": "Still there?"}).status_code == 302
    assert client.post(f"/support/{thread_id}", data={"body": ""}).status_code == 400
    thread = support.get_thread(db, thread_id)
    assert thread is not None and thread.status == "open" and thread.waiting_since is not None


def test_breaching_thread_is_listed_first(
    client: FlaskClient, auth: AuthActions, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    ana = auth.create()
    now = utcnow()
    recent = support.open_thread(db, ana.id, "Recent", "?", now - timedelta(minutes=5))
    late = support.open_thread(db, ana.id, "Late", "?", now - timedelta(minutes=90))
    console.signin("staff")
    inbox = client.get("/manage/support").get_data(as_text=True)
    assert inbox.index(f'id="thread-{late}"') < inbox.index(f'id="thread-{recent}"')
    assert 'class="breach"' in inbox and "over target" in inbox


def test_canned_replies_fill_the_reply_box(
    client: FlaskClient, auth: AuthActions, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    auth.create()
    auth.login()
    thread_id = ask(client)
    console.signin("staff")
    assert client.post("/manage/support/canned", data={"title": "", "body": "x"}).status_code == 400
    assert (
        client.post(
            "/manage/support/canned", data={"title": "Hours", "body": "9 to 21 <b>daily</b>"}
        ).status_code
        == 302
    )
    again = client.post("/manage/support/canned", data={"title": "Hours", "body": "dup"})
    assert again.status_code == 400 and "title is taken" in again.get_data(as_text=True)
    (canned_id,) = db.conn.execute("SELECT id FROM support_canned_replies").fetchone()

    page = client.get(f"/manage/support/{thread_id}?canned={canned_id}").get_data(as_text=True)
    assert "9 to 21 &lt;b&gt;daily&lt;/b&gt;</textarea>" in page
    assert client.get(f"/manage/support/{thread_id}?canned=nope").status_code == 200

    assert client.post(f"/manage/support/canned/{canned_id}/delete").status_code == 302
    assert client.post(f"/manage/support/canned/{canned_id}/delete").status_code == 404
    assert audit_actions(db) == ["support.canned_add", "support.canned_delete"]


def test_console_menu_has_the_inbox(client: FlaskClient, console: ConsoleActions) -> None:
    console.signin("staff")
    assert 'href="/manage/support"' in client.get("/manage/").get_data(as_text=True)
