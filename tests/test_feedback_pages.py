"""The members' feedback pages: browsing the catalogue, reviewing a product, voting in a poll and
the suggestions box — with bad input, other members' items, blocks, XSS and CSRF.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from community import friends, polls
from instore import members
from instore.clock import to_iso, utcnow
from instore.config import Config, load_config
from tests.conftest import PASSWORD, AuthActions

XSS_PAYLOADS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
XSS_ESCAPED = (
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Members are not "new" (no per-minute or link limits) and the machine score never holds:
    these tests are about the pages; screening has its own tests."""
    return load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
            "INSTORE_PORTAL_SECRET_KEY": "test-secret-key",
            "INSTORE_COMMUNITY_NEW_MEMBER_DAYS": "0",
            "INSTORE_COMMUNITY_MACHINE_HOLD_PERCENT": "100",
        }
    )


def add_product(
    db: sqlite_utils.Database,
    name: str = "Linen shirt",
    category: str = "shirts",
    sku: str = "SH-1",
    active: int = 1,
) -> int:
    cursor = db.conn.execute(
        """INSERT INTO products (sku, name, category, price_cents, zone, description, active,
                                 updated_at)
           VALUES (?, ?, ?, 4990, 'Menswear', 'Cool in summer', ?, ?)""",
        (sku, name, category, active, to_iso(utcnow())),
    )
    db.conn.commit()
    return int(cursor.lastrowid or 0)


def review_count(db: sqlite_utils.Database) -> int:
    return int(db.conn.execute("SELECT COUNT(*) FROM product_reviews").fetchone()[0])


def signed_in(auth: AuthActions, email: str = "ana@example.com", name: str = "Ana") -> int:
    member = auth.create(email, name)
    auth.login(email)
    return member.id


def test_feedback_pages_need_a_member(client: FlaskClient) -> None:
    for url in ("/products", "/products/1", "/polls", "/polls/1", "/suggestions", "/suggestions/1"):
        response = client.get(url)
        assert response.status_code == 302 and "/signin" in response.headers["Location"], url


def test_browse_search_filter_and_page_the_catalogue(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    shirt = add_product(db)
    add_product(db, "Wool socks", "socks", "SO-1")
    add_product(db, "Old shirt", "shirts", "SH-0", active=0)
    for n in range(25):
        add_product(db, f"Cap {n:02d}", "hats", f"CAP-{n:02d}")
    db.conn.execute(
        """INSERT INTO product_reviews (product_id, author_id, rating, body, created_at)
           VALUES (?, NULL, 4, '', ?)""",
        (shirt, to_iso(utcnow())),
    )
    db.conn.commit()

    page = client.get("/products?q=shirt").get_data(as_text=True)
    assert "Linen shirt" in page and "Old shirt" not in page and "Wool socks" not in page
    assert "4.0 out of 5 · 1 review" in page and "€49.90" in page
    page = client.get("/products?category=socks").get_data(as_text=True)
    assert "Wool socks" in page and "Linen shirt" not in page
    first = client.get("/products?category=hats").get_data(as_text=True)
    assert "Cap 00" in first and "Cap 19" in first and "Cap 20" not in first
    assert "page=2" in first and "category=hats" in first
    second = client.get("/products?category=hats&page=2").get_data(as_text=True)
    assert "Cap 20" in second and "Cap 24" in second and "Cap 00" not in second
    assert client.get("/products?page=banana").status_code == 200


def test_product_page_shows_price_zone_and_reviews(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    product = add_product(db)
    page = client.get(f"/products/{product}").get_data(as_text=True)
    assert "Linen shirt" in page and "€49.90" in page and "Find it in Menswear" in page
    assert "No reviews yet" in page and 'name="rating"' in page
    assert client.get("/products/999").status_code == 404


def test_member_reviews_edits_and_deletes(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    product = add_product(db)
    response = client.post(
        f"/products/{product}/review", data={"rating": "4", "body": "Breathes well"}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("#your-review")
    page = client.get(f"/products/{product}").get_data(as_text=True)
    assert "Breathes well" in page and "Update my review" in page
    assert "4.0 out of 5 · 1 review" in page

    client.post(f"/products/{product}/review", data={"rating": "2", "body": "Creased"})
    assert review_count(db) == 1
    row = db.conn.execute("SELECT rating, body FROM product_reviews").fetchone()
    assert tuple(row) == (2, "Creased")

    assert client.post(f"/products/{product}/review/delete").status_code == 302
    assert review_count(db) == 0
    assert client.post(f"/products/{product}/review/delete").status_code == 404


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        ({"rating": "", "body": "No stars"}, "Choose 1 to 5 stars."),
        ({"rating": "6", "body": ""}, "Choose 1 to 5 stars."),
        ({"rating": "0"}, "Choose 1 to 5 stars."),
        ({"rating": "five"}, "Choose 1 to 5 stars."),
        ({"rating": "5", "body": "x" * 2001}, "Keep it under 2000 characters."),
    ],
)
def test_bad_reviews_are_refused_with_a_sentence(
    client: FlaskClient,
    auth: AuthActions,
    db: sqlite_utils.Database,
    data: dict[str, str],
    sentence: str,
) -> None:
    signed_in(auth)
    product = add_product(db)
    response = client.post(f"/products/{product}/review", data=data)
    assert response.status_code == 400
    assert sentence in response.get_data(as_text=True)
    assert review_count(db) == 0


def test_a_refused_review_keeps_what_was_typed(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    product = add_product(db)
    db.conn.execute(
        "INSERT INTO watched_words (word, action, created_at) VALUES ('rubbish', 'block', ?)",
        (to_iso(utcnow()),),
    )
    db.conn.commit()
    response = client.post(
        f"/products/{product}/review", data={"rating": "1", "body": "Total rubbish fabric"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "is not allowed here" in page and "Total rubbish fabric" in page
    assert review_count(db) == 0


def test_withdrawn_products_show_reviews_but_take_none(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    product = add_product(db, active=0)
    page = client.get(f"/products/{product}").get_data(as_text=True)
    assert "no longer sells" in page and 'name="rating"' not in page
    assert client.post(f"/products/{product}/review", data={"rating": "3"}).status_code == 404
    assert review_count(db) == 0


def test_held_review_is_labelled_for_its_author_only(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    product = add_product(db)
    client.post(f"/products/{product}/review", data={"rating": "5", "body": "Lovely colour"})
    db.conn.execute("UPDATE product_reviews SET status = 'held'")
    db.conn.commit()
    page = client.get(f"/products/{product}").get_data(as_text=True)
    assert "Waiting for a moderator" in page and "Lovely colour" in page
    assert "No reviews yet" in page  # a held review does not count
    auth.logout()
    signed_in(auth, "ben@example.com", "Ben")
    assert "Lovely colour" not in client.get(f"/products/{product}").get_data(as_text=True)


def test_blocked_members_do_not_see_each_others_reviews(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    product = add_product(db)
    ben = signed_in(auth, "ben@example.com", "Ben")
    client.post(f"/products/{product}/review", data={"rating": "5", "body": "Ben says yes"})
    auth.logout()
    ana = signed_in(auth)
    assert "Ben says yes" in client.get(f"/products/{product}").get_data(as_text=True)
    friends.block(db, ana, ben)
    db.conn.commit()
    page = client.get(f"/products/{product}").get_data(as_text=True)
    assert "Ben says yes" not in page


def test_review_text_renders_inert(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    product = add_product(db)
    signed_in(auth)
    client.post(f"/products/{product}/review", data={"rating": "3", "body": " ".join(XSS_PAYLOADS)})
    auth.logout()
    signed_in(auth, "ben@example.com", "Ben")
    page = client.get(f"/products/{product}").get_data(as_text=True)
    for raw, escaped in zip(XSS_PAYLOADS, XSS_ESCAPED, strict=True):
        assert raw not in page and escaped in page


# -- polls ---------------------------------------------------------------------------------------


def make_poll(db: sqlite_utils.Database, question: str = "Which colour?") -> polls.Poll:
    staff = members.create_member(
        db, display_name="Sam", password=PASSWORD, email="sam@example.com", role="staff"
    )
    poll_id = polls.create_poll(db, question, ["Red", "Blue"], None, staff.id, utcnow())
    found = polls.get_poll(db, poll_id)
    assert found is not None
    return found


def test_vote_see_results_and_change_the_vote(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    poll = make_poll(db)
    red, blue = (option.id for option in poll.options)
    listing = client.get("/polls").get_data(as_text=True)
    assert "Which colour?" in listing and "Open: have your say" in listing
    page = client.get(f"/polls/{poll.id}").get_data(as_text=True)
    assert "poll-results" not in page and "The results show once you have voted." in page

    assert client.post(f"/polls/{poll.id}", data={"option": str(red)}).status_code == 302
    page = client.get(f"/polls/{poll.id}").get_data(as_text=True)
    assert 'id="poll-results"' in page and "100%" in page and "(your vote)" in page
    client.post(f"/polls/{poll.id}", data={"option": str(blue)})
    votes = db.conn.execute("SELECT option_id FROM poll_votes").fetchall()
    assert [row[0] for row in votes] == [blue]


@pytest.mark.parametrize("option", ["", "abc", "999999"])
def test_bad_votes_are_refused(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database, option: str
) -> None:
    signed_in(auth)
    poll = make_poll(db)
    response = client.post(f"/polls/{poll.id}", data={"option": option})
    assert response.status_code == 400
    assert "Choose one of the answers." in response.get_data(as_text=True)
    assert db.conn.execute("SELECT COUNT(*) FROM poll_votes").fetchone()[0] == 0


def test_a_closed_poll_refuses_votes_and_shows_results(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    poll = make_poll(db)
    polls.close_poll(db, poll.id, utcnow() - timedelta(seconds=1))
    db.conn.commit()
    page = client.get(f"/polls/{poll.id}").get_data(as_text=True)
    assert "This poll is closed." in page and 'id="poll-results"' in page
    assert 'name="option"' not in page
    response = client.post(f"/polls/{poll.id}", data={"option": str(poll.options[0].id)})
    assert response.status_code == 400
    assert "takes no more votes" in response.get_data(as_text=True)
    assert client.get("/polls/999").status_code == 404


def test_poll_text_renders_inert(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    staff = members.create_member(
        db, display_name="Sam", password=PASSWORD, email="sam@example.com", role="staff"
    )
    poll_id = polls.create_poll(
        db, XSS_PAYLOADS[0] + XSS_PAYLOADS[1], list(XSS_PAYLOADS), None, staff.id, utcnow()
    )
    for url in ("/polls", f"/polls/{poll_id}"):
        page = client.get(url).get_data(as_text=True)
        for raw, escaped in zip(XSS_PAYLOADS, XSS_ESCAPED, strict=True):
            assert raw not in page and escaped in page, url


# -- suggestions ---------------------------------------------------------------------------------


def suggestion_id(response_location: str) -> int:
    return int(response_location.rsplit("/", 1)[1])


def test_post_edit_and_delete_a_suggestion(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    response = client.post("/suggestions", data={"body": "Open earlier on Saturdays"})
    assert response.status_code == 302
    found = suggestion_id(response.headers["Location"])
    assert "Open earlier on Saturdays" in client.get("/suggestions").get_data(as_text=True)
    page = client.get(f"/suggestions/{found}").get_data(as_text=True)
    assert "Edit your suggestion" in page

    assert client.post(f"/suggestions/{found}", data={"body": "Open at 8"}).status_code == 302
    assert "Open at 8" in client.get("/suggestions").get_data(as_text=True)
    assert client.post(f"/suggestions/{found}/delete").status_code == 302
    assert db.conn.execute("SELECT COUNT(*) FROM suggestions").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("body", "sentence"),
    [("", "Write your suggestion."), ("x" * 2001, "Keep it under 2000 characters.")],
)
def test_bad_suggestions_are_refused(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database, body: str, sentence: str
) -> None:
    signed_in(auth)
    response = client.post("/suggestions", data={"body": body})
    assert response.status_code == 400 and sentence in response.get_data(as_text=True)
    assert db.conn.execute("SELECT COUNT(*) FROM suggestions").fetchone()[0] == 0


def test_others_cannot_edit_and_held_ones_are_private(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    found = suggestion_id(client.post("/suggestions", data={"body": "Mine"}).headers["Location"])
    auth.logout()
    signed_in(auth, "ben@example.com", "Ben")
    page = client.get(f"/suggestions/{found}").get_data(as_text=True)
    assert "Mine" in page and "Edit your suggestion" not in page and "Report" in page
    assert client.post(f"/suggestions/{found}", data={"body": "Ben's now"}).status_code == 404
    assert client.post(f"/suggestions/{found}/delete").status_code == 404
    db.conn.execute("UPDATE suggestions SET status = 'held'")
    db.conn.commit()
    assert client.get(f"/suggestions/{found}").status_code == 404
    assert "Mine" not in client.get("/suggestions").get_data(as_text=True)
    assert client.get("/suggestions/999").status_code == 404


def test_suggestion_text_renders_inert(
    client: FlaskClient, auth: AuthActions, db: sqlite_utils.Database
) -> None:
    signed_in(auth)
    response = client.post("/suggestions", data={"body": " ".join(XSS_PAYLOADS)})
    found = suggestion_id(response.headers["Location"])
    for url in ("/suggestions", f"/suggestions/{found}"):
        page = client.get(url).get_data(as_text=True)
        for raw, escaped in zip(XSS_PAYLOADS, XSS_ESCAPED, strict=True):
            assert raw not in page and escaped in page, url


# -- CSRF ----------------------------------------------------------------------------------------


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_feedback_posts_need_csrf(app: Flask, db: sqlite_utils.Database) -> None:
    members.create_member(db, display_name="Ana", password=PASSWORD, email="a@e.com")
    product = add_product(db)
    poll = make_poll(db)
    browser = app.test_client()
    token = csrf_token(browser.get("/signin").get_data(as_text=True))
    browser.post(
        "/signin", data={"identifier": "a@e.com", "password": PASSWORD, "csrf_token": token}
    )
    posts = [
        (f"/products/{product}/review", {"rating": "5", "body": "ok"}),
        (f"/polls/{poll.id}", {"option": str(poll.options[0].id)}),
        ("/suggestions", {"body": "ok"}),
    ]
    for url, data in posts:
        response = browser.post(url, data={**data, "csrf_token": "forged"})
        assert response.status_code == 400, url
    assert review_count(db) == 0
    assert db.conn.execute("SELECT COUNT(*) FROM suggestions").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM poll_votes").fetchone()[0] == 0
    # with the page's token the same review is accepted
    token = csrf_token(browser.get(f"/products/{product}").get_data(as_text=True))
    response = browser.post(
        f"/products/{product}/review", data={"rating": "5", "body": "ok", "csrf_token": token}
    )
    assert response.status_code == 302 and review_count(db) == 1
