"""Feedback in the console: who may open it, answering reviews and suggestions (the author is
notified, the answer shows on the public page), editing and deleting answers, polls (create,
results, close, delete), the audit trail, bad input and XSS in staff text.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from community import polls, reviews, suggestions
from community.screening import Limits
from instore import members
from instore.clock import to_iso, utcnow
from instore.config import Config, load_config
from tests.conftest import PASSWORD, AuthActions, ConsoleActions

XSS_PAYLOADS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
XSS_ESCAPED = (
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
)
LIMITS = Limits(machine_hold_percent=100, new_member_days=0)
STORE_ZONE = "Europe/Madrid"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A store in Madrid, so closing times are visibly converted from store time to UTC."""
    return load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
            "INSTORE_PORTAL_SECRET_KEY": "test-secret-key",
            "INSTORE_STORE_TIMEZONE": STORE_ZONE,
            "INSTORE_COMMUNITY_NEW_MEMBER_DAYS": "0",
            "INSTORE_COMMUNITY_MACHINE_HOLD_PERCENT": "100",
        }
    )


def add_product(db: sqlite_utils.Database) -> int:
    cursor = db.conn.execute(
        """INSERT INTO products (sku, name, category, price_cents, zone, active, updated_at)
           VALUES ('SH-1', 'Linen shirt', 'shirts', 4990, 'Menswear', 1, ?)""",
        (to_iso(utcnow()),),
    )
    db.conn.commit()
    return int(cursor.lastrowid or 0)


def audit_actions(db: sqlite_utils.Database) -> list[str]:
    return [row[0] for row in db.conn.execute("SELECT action FROM audit_log ORDER BY id")]


def community_notes(db: sqlite_utils.Database, member_id: int) -> list[tuple[str, str, dict]]:
    rows = db.conn.execute(
        "SELECT title, body, data FROM notifications WHERE member_id = ? AND kind = 'community'",
        (member_id,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), json.loads(r[2])) for r in rows]


def answer_count(db: sqlite_utils.Database) -> int:
    return int(db.conn.execute("SELECT COUNT(*) FROM staff_answers").fetchone()[0])


@pytest.fixture
def ana(auth: AuthActions) -> members.Member:
    return auth.create()


URLS = ["/manage/feedback", "/manage/feedback/review/1", "/manage/feedback/polls"]


@pytest.mark.parametrize("url", URLS)
def test_shoppers_get_403_in_the_console(client: FlaskClient, auth: AuthActions, url: str) -> None:
    assert client.get(url).status_code == 302  # not signed in: to the console's sign-in
    auth.create()
    auth.login()
    assert client.get(url).status_code == 403
    assert client.post("/manage/feedback/polls", data={"question": "x"}).status_code == 403
    assert client.post("/manage/feedback/review/1/answer").status_code == 403


def test_staff_answer_a_review_and_the_author_is_told(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, ana: members.Member
) -> None:
    product = add_product(db)
    review = reviews.save_review(db, product, ana.id, 4, "Nice linen", utcnow(), LIMITS)
    sam = console.signin("staff")

    page = client.get("/manage/feedback").get_data(as_text=True)
    assert f'id="review-{review.id}"' in page and "Nice linen" in page and "Linen shirt" in page
    response = client.post(
        f"/manage/feedback/review/{review.id}/answer?back=list",
        data={f"answer-review-{review.id}-body": "Thank you, Ana!"},
    )
    assert response.status_code == 302 and "/manage/feedback?show=review" in response.location

    notes = community_notes(db, ana.id)
    assert len(notes) == 1
    title, body, data = notes[0]
    assert title == "The store answered your review" and body == "Thank you, Ana!"
    assert data == {"what": "answer", "link": f"/products/{product}#your-review"}
    assert audit_actions(db) == ["feedback.answer"]
    # answered items leave the default (unanswered) list
    assert f'id="review-{review.id}"' not in client.get("/manage/feedback").get_data(as_text=True)
    answered = client.get("/manage/feedback?answered=answered").get_data(as_text=True)
    assert f'id="review-{review.id}"' in answered

    # the answer shows under the review on the public page, to anyone
    assert "Thank you, Ana!" in client.get(f"/products/{product}").get_data(as_text=True)
    assert sam.id != ana.id


def test_staff_answer_a_suggestion_edit_and_delete_the_answer(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, ana: members.Member
) -> None:
    found = suggestions.post_suggestion(db, ana.id, "Late opening on Fridays", utcnow(), LIMITS)
    console.signin("staff")
    page = client.get("/manage/feedback?show=suggestion").get_data(as_text=True)
    assert "Late opening on Fridays" in page
    client.post(
        f"/manage/feedback/suggestion/{found.id}/answer",
        data={f"answer-suggestion-{found.id}-body": "We will try it in May."},
    )
    (_title, _body, data) = community_notes(db, ana.id)[0]
    assert data["link"] == f"/suggestions/{found.id}"
    answer_id = int(db.conn.execute("SELECT id FROM staff_answers").fetchone()[0])

    page = client.get(f"/manage/feedback/suggestion/{found.id}").get_data(as_text=True)
    assert "We will try it in May." in page
    response = client.post(
        f"/manage/feedback/answers/{answer_id}", data={f"edit-{answer_id}-body": "From June."}
    )
    assert response.status_code == 302
    assert db.conn.execute("SELECT body FROM staff_answers").fetchone()[0] == "From June."
    assert len(community_notes(db, ana.id)) == 1  # an edit does not notify again
    assert "From June." in client.get(f"/suggestions/{found.id}").get_data(as_text=True)

    assert client.post(f"/manage/feedback/answers/{answer_id}/delete").status_code == 302
    assert answer_count(db) == 0
    assert audit_actions(db) == [
        "feedback.answer",
        "feedback.answer_edit",
        "feedback.answer_delete",
    ]
    assert client.post(f"/manage/feedback/answers/{answer_id}/delete").status_code == 404


def test_no_notification_for_an_erased_author(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, ana: members.Member
) -> None:
    found = suggestions.post_suggestion(db, ana.id, "Keep this", utcnow(), LIMITS)
    db.conn.execute("UPDATE suggestions SET author_id = NULL")  # kept as "deleted member"
    db.conn.commit()
    console.signin("staff")
    client.post(
        f"/manage/feedback/suggestion/{found.id}/answer",
        data={f"answer-suggestion-{found.id}-body": "Thanks"},
    )
    assert answer_count(db) == 1
    count = db.conn.execute("SELECT COUNT(*) FROM notifications WHERE kind = 'community'")
    assert count.fetchone()[0] == 0


@pytest.mark.parametrize(
    ("body", "sentence"),
    [("", "Write the answer."), ("x" * 2001, "Keep the answer under 2000 characters.")],
)
def test_bad_answers_are_refused(
    client: FlaskClient,
    console: ConsoleActions,
    db: sqlite_utils.Database,
    ana: members.Member,
    body: str,
    sentence: str,
) -> None:
    found = suggestions.post_suggestion(db, ana.id, "Idea", utcnow(), LIMITS)
    console.signin("staff")
    response = client.post(
        f"/manage/feedback/suggestion/{found.id}/answer",
        data={f"answer-suggestion-{found.id}-body": body},
    )
    assert response.status_code == 400 and sentence in response.get_data(as_text=True)
    assert answer_count(db) == 0 and audit_actions(db) == []
    assert client.post("/manage/feedback/suggestion/999/answer").status_code == 404
    assert client.post("/manage/feedback/board/1/answer").status_code == 404


def test_staff_see_held_items_with_their_status(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, ana: members.Member
) -> None:
    found = suggestions.post_suggestion(db, ana.id, "Quiet hour", utcnow(), LIMITS)
    db.conn.execute("UPDATE suggestions SET status = 'held'")
    db.conn.commit()
    console.signin("staff")
    page = client.get("/manage/feedback?show=suggestion&status=held").get_data(as_text=True)
    assert "Quiet hour" in page and "held for review" in page
    visible = client.get("/manage/feedback?show=suggestion&status=visible").get_data(as_text=True)
    assert f'id="suggestion-{found.id}"' not in visible


def test_staff_text_and_member_text_render_inert_in_the_console(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, ana: members.Member
) -> None:
    product = add_product(db)
    payload = " ".join(XSS_PAYLOADS)
    review = reviews.save_review(db, product, ana.id, 2, payload, utcnow(), LIMITS)
    found = suggestions.post_suggestion(db, ana.id, payload, utcnow(), LIMITS)
    console.signin("staff")
    for kind, item_id in (("review", review.id), ("suggestion", found.id)):
        client.post(
            f"/manage/feedback/{kind}/{item_id}/answer",
            data={f"answer-{kind}-{item_id}-body": payload},
        )
    pages = [
        "/manage/feedback?answered=all",
        "/manage/feedback?show=suggestion&answered=all",
        f"/manage/feedback/review/{review.id}",
        f"/manage/feedback/suggestion/{found.id}",
        f"/products/{product}",
        f"/suggestions/{found.id}",
        "/suggestions",
    ]
    for url in pages:
        page = client.get(url).get_data(as_text=True)
        for raw, escaped in zip(XSS_PAYLOADS, XSS_ESCAPED, strict=True):
            assert raw not in page and escaped in page, url


# -- polls ---------------------------------------------------------------------------------------


def test_create_a_poll_and_watch_the_results(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database, ana: members.Member
) -> None:
    console.signin("staff")
    assert client.get("/manage/feedback/polls").status_code == 200
    closes = (datetime.now(ZoneInfo(STORE_ZONE)) + timedelta(days=2)).replace(
        second=0, microsecond=0
    )
    response = client.post(
        "/manage/feedback/polls",
        data={
            "question": "Which colour should we stock?",
            "options": "Sage\n\n  Rust  \nNavy\n",
            "closes_at": closes.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 302
    poll_id = int(response.location.rsplit("/", 1)[1])
    poll = polls.get_poll(db, poll_id)
    assert poll is not None and [o.label for o in poll.options] == ["Sage", "Rust", "Navy"]
    assert poll.closes_at == to_iso(closes)  # store time in, UTC stored

    polls.vote(db, poll_id, poll.options[1].id, ana.id, utcnow())
    page = client.get(f"/manage/feedback/polls/{poll_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' in page and '<meter min="0" max="100" value="100">' in page
    assert "Which colour should we stock?" in client.get("/manage/feedback/polls").get_data(
        as_text=True
    )

    assert client.post(f"/manage/feedback/polls/{poll_id}/close").status_code == 302
    closed = polls.get_poll(db, poll_id)
    assert closed is not None and closed.closed_at is not None
    page = client.get(f"/manage/feedback/polls/{poll_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page and "Close now" not in page

    assert client.post(f"/manage/feedback/polls/{poll_id}/delete").status_code == 302
    assert polls.get_poll(db, poll_id) is None
    assert audit_actions(db) == [
        "feedback.poll_create",
        "feedback.poll_close",
        "feedback.poll_delete",
    ]
    assert client.get(f"/manage/feedback/polls/{poll_id}").status_code == 404


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        ({"question": "", "options": "A\nB"}, "Write the question."),
        ({"question": "q" * 201, "options": "A\nB"}, "Keep the question under 200 characters."),
        ({"question": "Q?", "options": ""}, "Write the answers, one per line."),
        ({"question": "Q?", "options": "Only one"}, "Give 2 to 8 answers, one per line."),
        (
            {"question": "Q?", "options": "\n".join(f"C{n}" for n in range(9))},
            "Give 2 to 8 answers, one per line.",
        ),
        ({"question": "Q?", "options": "A\n" + "b" * 81}, "Answer 2 is longer than 80"),
        ({"question": "Q?", "options": "Red\nred"}, "Two answers are the same"),
        (
            {"question": "Q?", "options": "A\nB", "closes_at": "tomorrow"},
            "Enter a date and time like",
        ),
        (
            {"question": "Q?", "options": "A\nB", "closes_at": "2020-01-01T10:00"},
            "That time has already passed",
        ),
        (
            {"question": "Q?", "options": "A\nB", "closes_at": "0205-01-01T10:00"},
            "Enter a date and time like",
        ),
    ],
)
def test_bad_polls_are_refused_with_a_sentence(
    client: FlaskClient,
    console: ConsoleActions,
    db: sqlite_utils.Database,
    data: dict[str, str],
    sentence: str,
) -> None:
    console.signin("staff")
    response = client.post("/manage/feedback/polls", data=data)
    assert response.status_code == 400
    assert sentence in response.get_data(as_text=True)
    assert db.conn.execute("SELECT COUNT(*) FROM polls").fetchone()[0] == 0
    assert audit_actions(db) == []


def test_poll_text_renders_inert_in_the_console(
    client: FlaskClient, console: ConsoleActions, db: sqlite_utils.Database
) -> None:
    console.signin("staff")
    response = client.post(
        "/manage/feedback/polls",
        data={"question": "".join(XSS_PAYLOADS), "options": "\n".join(XSS_PAYLOADS)},
    )
    poll_id = int(response.location.rsplit("/", 1)[1])
    for url in ("/manage/feedback/polls", f"/manage/feedback/polls/{poll_id}"):
        page = client.get(url).get_data(as_text=True)
        for raw, escaped in zip(XSS_PAYLOADS, XSS_ESCAPED, strict=True):
            assert raw not in page and escaped in page, url


def test_console_posts_need_csrf(
    app: Flask, db: sqlite_utils.Database, ana: members.Member
) -> None:
    found = suggestions.post_suggestion(db, ana.id, "Idea", utcnow(), LIMITS)
    browser = app.test_client()
    ConsoleActions(browser, db).create("staff")
    page = browser.get("/manage/signin").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    browser.post(
        "/manage/signin",
        data={"identifier": "staff@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert browser.get("/manage/feedback").status_code == 200
    response = browser.post(
        f"/manage/feedback/suggestion/{found.id}/answer",
        data={
            f"answer-suggestion-{found.id}-body": "Hi",
            f"answer-suggestion-{found.id}-csrf_token": "forged",
        },
    )
    assert response.status_code == 400 and answer_count(db) == 0
    response = browser.post("/manage/feedback/polls", data={"question": "Q?", "options": "A\nB"})
    assert response.status_code == 400
    assert db.conn.execute("SELECT COUNT(*) FROM polls").fetchone()[0] == 0
