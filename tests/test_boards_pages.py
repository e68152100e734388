"""The board pages: who gets a 404, forms that refuse bad input, photos, comments and their news,
reactions, shop in store, and member text that renders inert."""

from __future__ import annotations

import html
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from PIL import Image

from community import boards, friends
from instore import members
from instore.clock import to_iso, utcnow
from portal.board_news import notify_published_comment
from tests.conftest import PASSWORD

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


class Member:
    """A member signed in on their own phone (their own cookie jar), a month a member."""

    def __init__(self, app: Flask, db: sqlite_utils.Database, name: str) -> None:
        self.email = f"{name.lower()}@example.com"
        self.id = members.create_member(
            db, display_name=name, password=PASSWORD, email=self.email
        ).id
        # Past the new-member limits (three posts a minute): these tests post more.
        db.conn.execute(
            "UPDATE members SET created_at = ? WHERE id = ?",
            (to_iso(utcnow() - timedelta(days=30)), self.id),
        )
        self.name = name
        self.browser: FlaskClient = app.test_client()
        signed_in = self.browser.post(
            "/signin", data={"identifier": self.email, "password": PASSWORD}
        )
        assert signed_in.status_code == 302

    def get(self, path: str) -> tuple[int, str]:
        response = self.browser.get(path)
        return response.status_code, response.get_data(as_text=True)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.browser.post(path, data=data or {}, **kwargs)

    def new_board(self, title: str = "Summer", audience: str = "public", **extra: str) -> int:
        response = self.post(
            "/boards/new", {"title": title, "description": "", "audience": audience, **extra}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        match = re.search(r"/boards/(\d+)$", response.headers["Location"])
        assert match
        return int(match.group(1))

    def comment(self, board_id: int, body: str, parent_id: int | None = None) -> Any:
        data = {"body": body, "parent_id": "" if parent_id is None else str(parent_id)}
        return self.post(f"/boards/{board_id}/comments", data)


def product(db: sqlite_utils.Database, name: str, zone: str | None = None) -> int:
    cursor = db.conn.execute(
        """INSERT INTO products (sku, name, category, price_cents, zone, updated_at)
           VALUES (?, ?, 'shoes', 4999, ?, ?)""",
        (f"SKU-{name}", name, zone, to_iso(utcnow())),
    )
    return int(cursor.lastrowid or 0)


def notifications(db: sqlite_utils.Database, member_id: int) -> list[dict[str, Any]]:
    rows = db.conn.execute(
        "SELECT title, body, data FROM notifications WHERE member_id = ? AND kind = 'community'",
        (member_id,),
    ).fetchall()
    return [{"title": t, "body": b, **json.loads(d)} for t, b, d in rows]


def comment_ids(db: sqlite_utils.Database, board_id: int) -> list[int]:
    rows = db.conn.execute(
        "SELECT id FROM board_comments WHERE board_id = ? ORDER BY id", (board_id,)
    ).fetchall()
    return [int(r[0]) for r in rows]


def count(db: sqlite_utils.Database, table: str) -> int:
    return int(db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


@pytest.fixture
def people(app_no_csrf: Flask, db: sqlite_utils.Database) -> dict[str, Member]:
    """Ana (who owns the boards), Ben her friend, Cleo a stranger, Dan whom Ana blocked."""
    found = {name: Member(app_no_csrf, db, name) for name in ("Ana", "Ben", "Cleo", "Dan")}
    ana = found["Ana"].id
    for friend in ("Ben", "Dan"):
        friends.befriend(db, ana, found[friend].id)
        friends.accept_friend(db, found[friend].id, ana)
    friends.block(db, ana, found["Dan"].id)
    return found


# -- who sees what -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "may_see"),
    [("private", {"Ana"}), ("friends", {"Ana", "Ben"}), ("public", {"Ana", "Ben", "Cleo"})],
)
def test_a_board_others_may_not_see_is_a_404_like_a_missing_one(
    people: dict[str, Member], audience: str, may_see: set[str]
) -> None:
    board_id = people["Ana"].new_board("Weekend", audience)
    for name, person in people.items():
        for path in (f"/boards/{board_id}", f"/boards/{board_id}/shop"):
            status, page = person.get(path)
            assert status == (200 if name in may_see else 404), (name, path)
            assert ("Weekend" in page) is (name in may_see)
        assert person.get("/boards/99999")[0] == 404


def test_pages_need_a_signed_in_member(client: FlaskClient, people: dict[str, Member]) -> None:
    board_id = people["Ana"].new_board()
    for path in ("/boards", "/boards/new", f"/boards/{board_id}", f"/boards/{board_id}/shop"):
        response = client.get(path)
        assert response.status_code == 302 and "/signin" in response.headers["Location"]


def test_a_held_board_shows_only_to_its_owner(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    board_id = people["Ana"].new_board("Quiet", "public")
    db.conn.execute("UPDATE boards SET status = 'held' WHERE id = ?", (board_id,))
    status, page = people["Ana"].get(f"/boards/{board_id}")
    assert status == 200 and "Waiting for a moderator" in page
    assert people["Ben"].get(f"/boards/{board_id}")[0] == 404
    assert "Quiet" not in people["Cleo"].get("/boards")[1]


def test_the_index_lists_mine_friends_and_public(people: dict[str, Member]) -> None:
    people["Ana"].new_board("Ana public", "public")
    people["Ana"].new_board("Ana friends", "friends")
    people["Ana"].new_board("Ana private", "private")
    people["Cleo"].new_board("Cleo public", "public")
    ben = people["Ben"].get("/boards")[1]
    assert "Ana friends" in ben and "Ana public" in ben and "Cleo public" in ben
    assert "Ana private" not in ben
    cleo = people["Cleo"].get("/boards")[1]
    assert "Ana friends" not in cleo and "Ana public" in cleo
    for page in ("0", "-3", "x", str(10**30)):
        assert people["Ben"].get(f"/boards?page={page}")[0] == 200
    dan = people["Dan"].get("/boards")[1]  # blocked by Ana: none of hers
    assert "Ana public" not in dan and "Ana friends" not in dan and "Cleo public" in dan


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/boards/{id}/edit"),
        ("post", "/boards/{id}/edit"),
        ("get", "/boards/{id}/delete"),
        ("post", "/boards/{id}/delete"),
        ("get", "/boards/{id}/items/new"),
        ("post", "/boards/{id}/items/new"),
        ("post", "/boards/{id}/items/{item}/remove"),
        ("post", "/boards/{id}/items/{item}/up"),
    ],
)
def test_changing_someone_elses_board_is_a_404(
    people: dict[str, Member], db: sqlite_utils.Database, method: str, path: str
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    board_id = ana.new_board("Ana's", "public")
    item = boards.add_item(
        db,
        board_id,
        ana.id,
        product(db, "Boots"),
        "",
        None,
        utcnow(),
        boards.Limits(new_member_days=0),
    )
    url = path.format(id=board_id, item=item)
    data = {"title": "Mine now", "audience": "public", "product": "1"}
    response = (
        getattr(ben.browser, method)(url, data=data) if method == "post" else ben.browser.get(url)
    )
    assert response.status_code == 404
    assert boards.get_board(db, board_id).title == "Ana's"  # type: ignore[union-attr]
    assert len(boards.board_items(db, board_id)) == 1


# -- making and changing a board -----------------------------------------------------------------


def test_create_edit_and_delete_a_board(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana = people["Ana"]
    assert ana.get("/boards/new")[0] == 200
    board_id = ana.new_board("Beach day", "friends", description="Sun and sand")
    status, page = ana.get(f"/boards/{board_id}")
    assert status == 200 and "Beach day" in page and "Sun and sand" in page and "My friends" in page

    assert ana.get(f"/boards/{board_id}/edit")[1].count("Beach day") >= 1
    response = ana.post(
        f"/boards/{board_id}/edit",
        {"title": "Beach week", "description": "", "audience": "public"},
    )
    assert response.status_code == 302
    board = boards.get_board(db, board_id)
    assert board is not None and (board.title, board.audience) == ("Beach week", "public")

    status, page = ana.get(f"/boards/{board_id}/delete")
    assert status == 200 and "cannot be undone" in page
    assert ana.post(f"/boards/{board_id}/delete").status_code == 302
    assert ana.get(f"/boards/{board_id}")[0] == 404


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"title": "", "audience": "public"}, "Give your board a title."),
        ({"title": "x" * 81, "audience": "public"}, "Keep the title under 80 characters."),
        (
            {"title": "Fine", "description": "x" * 1001, "audience": "public"},
            "Keep the description under 1000 characters.",
        ),
        ({"title": "Fine", "audience": "everyone"}, "Not a valid choice"),
    ],
)
def test_bad_boards_come_back_with_the_reason(
    people: dict[str, Member], db: sqlite_utils.Database, data: dict[str, str], says: str
) -> None:
    response = people["Ana"].post("/boards/new", data)
    assert response.status_code == 400
    assert says in html.unescape(response.get_data(as_text=True))
    assert count(db, "boards") == 0


def test_a_watched_word_is_refused_with_the_text_kept(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    db.conn.execute(
        "INSERT INTO watched_words (word, action, created_at) VALUES ('forbidden', 'block', ?)",
        (to_iso(utcnow()),),
    )
    response = people["Ana"].post("/boards/new", {"title": "forbidden fruit", "audience": "public"})
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400 and "is not allowed here" in page
    assert 'value="forbidden fruit"' in page
    assert count(db, "boards") == 0


# -- items ---------------------------------------------------------------------------------------


def test_search_pick_and_add_a_product(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana = people["Ana"]
    board_id = ana.new_board()
    boots = product(db, "Red boots", "Shoes")
    product(db, "Blue scarf", "Accessories")
    status, page = ana.get(f"/boards/{board_id}/items/new?q=boots")
    assert status == 200 and "Red boots" in page and "Blue scarf" not in page
    response = ana.post(
        f"/boards/{board_id}/items/new", {"product": str(boots), "note": "For the party"}
    )
    assert response.status_code == 302
    page = ana.get(f"/boards/{board_id}")[1]
    assert "Red boots" in page and "For the party" in page and "In Shoes" in page


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"product": "99999"}, "That product is not in the catalogue."),
        ({"product": "abc"}, "That product is not in the catalogue."),
        ({"product": "none"}, "Choose a product from the catalogue or add a photo."),
        ({}, "Choose a product from the catalogue or add a photo."),
        ({"product": "{boots}", "note": "x" * 301}, "Keep the note under 300 characters."),
    ],
)
def test_bad_items_come_back_with_the_reason(
    people: dict[str, Member], db: sqlite_utils.Database, data: dict[str, str], says: str
) -> None:
    ana = people["Ana"]
    board_id = ana.new_board()
    boots = product(db, "Boots")
    data = {key: value.format(boots=boots) for key, value in data.items()}
    response = ana.post(f"/boards/{board_id}/items/new", data)
    assert response.status_code == 400
    assert says in html.unescape(response.get_data(as_text=True))
    assert count(db, "board_items") == 0


def test_move_and_remove_items(people: dict[str, Member], db: sqlite_utils.Database) -> None:
    ana = people["Ana"]
    board_id = ana.new_board()
    for name in ("First", "Second"):
        ana.post(f"/boards/{board_id}/items/new", {"product": str(product(db, name))})
    first, second = (item.id for item in boards.board_items(db, board_id))
    assert ana.post(f"/boards/{board_id}/items/{second}/up").status_code == 302
    assert [i.id for i in boards.board_items(db, board_id)] == [second, first]
    assert ana.post(f"/boards/{board_id}/items/{first}/remove").status_code == 302
    assert [i.id for i in boards.board_items(db, board_id)] == [second]
    assert ana.post(f"/boards/{board_id}/items/{first}/remove").status_code == 404


def uploads(app: Flask) -> Path:
    return Path(app.config["INSTORE"].var_dir) / "uploads" / "boards"


def test_a_photo_is_re_encoded_shrunk_and_served(
    people: dict[str, Member], db: sqlite_utils.Database, app_no_csrf: Flask
) -> None:
    ana = people["Ana"]
    board_id = ana.new_board("Photos", "friends")
    big = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # a camera's make: metadata that must not be kept
    Image.new("RGB", (2000, 1000), (10, 120, 90)).save(big, "JPEG", quality=95, exif=exif)
    response = ana.post(
        f"/boards/{board_id}/items/new",
        {"product": "none", "note": "My own", "photo": (io.BytesIO(big.getvalue()), "me.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    (item,) = boards.board_items(db, board_id)
    assert item.photo_path and item.photo_path.startswith("boards/")
    stored = uploads(app_no_csrf).parent / item.photo_path
    with Image.open(stored) as image:
        assert max(image.size) == 1280 and image.format == "JPEG"
        assert not image.getexif()
    page = people["Ben"].get(f"/boards/{board_id}")[1]
    src = re.search(r'<img class="board-photo" src="([^"]+)"', page)
    assert src and people["Ben"].browser.get(src.group(1)).status_code == 200
    assert ana.post(f"/boards/{board_id}/items/{item.id}/remove").status_code == 302
    assert not stored.exists()


def test_a_bad_upload_is_refused_and_nothing_kept(
    people: dict[str, Member], db: sqlite_utils.Database, app_no_csrf: Flask
) -> None:
    ana = people["Ana"]
    board_id = ana.new_board()
    response = ana.post(
        f"/boards/{board_id}/items/new",
        {"product": "none", "photo": (io.BytesIO(b"<svg onload=alert(1)>"), "x.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "not a picture" in response.get_data(as_text=True)
    assert count(db, "board_items") == 0
    assert not uploads(app_no_csrf).exists() or not any(uploads(app_no_csrf).iterdir())


def test_a_photo_too_large_is_refused_with_a_sentence(people: dict[str, Member]) -> None:
    ana = people["Ana"]
    board_id = ana.new_board()
    response = ana.post(
        f"/boards/{board_id}/items/new",
        {"product": "none", "photo": (io.BytesIO(b"\0" * (9 * 1024 * 1024)), "huge.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "larger than 8 MB" in response.get_data(as_text=True)


def test_the_upload_limit_is_raised_for_the_add_item_page_only(people: dict[str, Member]) -> None:
    ana = people["Ana"]
    response = ana.post(
        "/boards/new",
        {"title": "Big", "audience": "public", "photo": (io.BytesIO(b"\0" * 65536), "x.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413


# -- comments, replies and their news ------------------------------------------------------------


def test_comment_reply_and_the_news_they_send(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    board_id = ana.new_board("Party", "friends")
    response = ben.comment(board_id, "Love these!")
    assert response.status_code == 302
    (top,) = comment_ids(db, board_id)
    assert response.headers["Location"].endswith(f"/boards/{board_id}#c-{top}")
    (news,) = notifications(db, ana.id)
    assert news["what"] == "comment" and news["link"] == f"/boards/{board_id}#c-{top}"
    assert news["title"] == "Ben commented on your board “Party”"
    assert news["body"] == "Love these!"

    assert ana.comment(board_id, "Thanks!", parent_id=top).status_code == 302
    (reply_news,) = notifications(db, ben.id)
    assert reply_news["what"] == "reply"
    assert reply_news["title"] == "Ana replied to your comment on “Party”"
    assert len(notifications(db, ana.id)) == 1  # her own reply tells her nothing

    page = ana.get(f"/boards/{board_id}")[1]
    assert f'id="c-{top}"' in page and "Love these!" in page and "Thanks!" in page


def test_a_reply_to_a_reply_is_refused(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    board_id = ana.new_board("Party", "friends")
    ben.comment(board_id, "First")
    (top,) = comment_ids(db, board_id)
    ana.comment(board_id, "Second", parent_id=top)
    reply = comment_ids(db, board_id)[-1]
    response = ben.comment(board_id, "Third", parent_id=reply)
    assert response.status_code == 400
    assert "You can reply to a comment, not to a reply." in response.get_data(as_text=True)
    assert ben.comment(board_id, "Fourth", parent_id=99999).status_code == 404
    assert ben.comment(board_id, "Fifth", parent_id="x").status_code == 404  # type: ignore[arg-type]
    assert len(comment_ids(db, board_id)) == 2


@pytest.mark.parametrize(
    ("body", "says"),
    [("", "Write your comment."), ("x" * 1001, "Keep your comment under 1000 characters.")],
)
def test_bad_comments_come_back_with_the_reason(
    people: dict[str, Member], db: sqlite_utils.Database, body: str, says: str
) -> None:
    board_id = people["Ana"].new_board()
    response = people["Ben"].comment(board_id, body)
    assert response.status_code == 400 and says in response.get_data(as_text=True)
    assert count(db, "board_comments") == 0


def test_a_blocked_member_cannot_comment_and_nobody_is_told(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    board_id = people["Ana"].new_board("Open", "public")
    assert people["Dan"].comment(board_id, "Hi Ana").status_code == 404
    assert people["Dan"].post(f"/boards/{board_id}/react/like").status_code == 404
    assert count(db, "board_comments") == 0 and notifications(db, people["Ana"].id) == []


def test_a_held_comment_tells_nobody_until_published(
    people: dict[str, Member], db: sqlite_utils.Database, app_no_csrf: Flask
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    db.conn.execute(
        """INSERT INTO watched_words (word, action, created_at)
           VALUES ('casino', 'require_approval', ?)""",
        (to_iso(utcnow()),),
    )
    board_id = ana.new_board("Party", "friends")
    response = ben.comment(board_id, "Casino after?")
    assert response.status_code == 302
    (held,) = comment_ids(db, board_id)
    assert notifications(db, ana.id) == []
    assert "Casino after?" not in ana.get(f"/boards/{board_id}")[1]
    page = ben.get(f"/boards/{board_id}")[1]
    assert "Casino after?" in page and "Waiting for a moderator" in page

    db.conn.execute("UPDATE board_comments SET status = 'visible' WHERE id = ?", (held,))
    with app_no_csrf.test_request_context():
        assert notify_published_comment(db, held) is not None
        assert notify_published_comment(db, held) is None  # told once
    assert [n["what"] for n in notifications(db, ana.id)] == ["comment"]


def test_editing_and_deleting_comments(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben, cleo = people["Ana"], people["Ben"], people["Cleo"]
    board_id = ana.new_board("Open", "public")
    ben.comment(board_id, "Nice")
    cleo.comment(board_id, "Cool")
    by_ben, by_cleo = comment_ids(db, board_id)
    assert ben.get(f"/boards/{board_id}/comments/{by_ben}/edit")[0] == 200
    assert cleo.get(f"/boards/{board_id}/comments/{by_ben}/edit")[0] == 404
    assert (
        ana.post(f"/boards/{board_id}/comments/{by_ben}/edit", {"body": "Mine"}).status_code == 404
    )
    response = ben.post(f"/boards/{board_id}/comments/{by_ben}/edit", {"body": "Very nice"})
    assert response.status_code == 302
    db.conn.execute("UPDATE board_comments SET status = 'hidden' WHERE id = ?", (by_ben,))
    ben.post(f"/boards/{board_id}/comments/{by_ben}/edit", {"body": "Nicer now"})
    status = db.conn.execute("SELECT status FROM board_comments WHERE id = ?", (by_ben,)).fetchone()
    assert status[0] == "held"  # back to the moderators, not straight back up

    assert cleo.post(f"/boards/{board_id}/comments/{by_ben}/delete").status_code == 404
    assert cleo.post(f"/boards/{board_id}/comments/{by_cleo}/delete").status_code == 302
    assert ana.post(f"/boards/{board_id}/comments/{by_ben}/delete").status_code == 302
    assert comment_ids(db, board_id) == []


def test_report_links_beside_other_members_words_only(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    board_id = ana.new_board("Open", "public")
    ben.comment(board_id, "Nice")
    ana.comment(board_id, "Mine")
    by_ben, by_ana = comment_ids(db, board_id)
    ana_page = ana.get(f"/boards/{board_id}")[1]
    assert f"/report/comment/{by_ben}" in ana_page
    assert f"/report/comment/{by_ana}" not in ana_page and "/report/board/" not in ana_page
    ben_page = ben.get(f"/boards/{board_id}")[1]
    assert f"/report/board/{board_id}" in ben_page and f"/report/comment/{by_ana}" in ben_page
    assert f"/report/comment/{by_ben}" not in ben_page


# -- reactions -----------------------------------------------------------------------------------


def test_reactions_toggle_and_the_owner_sees_who(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    board_id = ana.new_board("Open", "public")
    assert ben.post(f"/boards/{board_id}/react/love").status_code == 302
    page = ben.get(f"/boards/{board_id}")[1]
    assert 'aria-pressed="true">Love · 1<' in page
    assert "Ben" not in page.split('id="reactions"')[1].split('id="comments"')[0]
    owner_page = ana.get(f"/boards/{board_id}")[1]
    assert "<dt>Love</dt><dd>Ben</dd>" in owner_page
    ben.post(f"/boards/{board_id}/react/love")
    assert 'aria-pressed="false">Love · 0<' in ben.get(f"/boards/{board_id}")[1]
    assert ben.post(f"/boards/{board_id}/react/hate").status_code == 404


# -- shop this board in store --------------------------------------------------------------------


def test_shop_in_store_shows_zones_and_where_the_member_is(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    board_id = ana.new_board("Shopping list", "friends")
    for name, zone in [("Boots", "Shoes"), ("Bag", "Accessories"), ("Gift card", None)]:
        ana.post(f"/boards/{board_id}/items/new", {"product": str(product(db, name, zone))})
    page = ben.get(f"/boards/{board_id}/shop")[1]
    headings = re.findall(r"<h2>([^<]+)", page)
    assert headings == ["Accessories", "Shoes", "Ask staff"]
    assert "You are in" not in page

    stamp = to_iso(utcnow())
    cursor = db.conn.execute(
        "INSERT INTO zones (name, polygon, created_at) VALUES ('Shoes', '[[0,0],[1,0],[1,1]]', ?)",
        (stamp,),
    )
    db.conn.execute(
        """INSERT INTO presence_state (device, member_id, zone_id, entered_at, last_seen_at)
           VALUES (?, ?, ?, ?, ?)""",
        (f"m:{ben.id}", ben.id, cursor.lastrowid, stamp, stamp),
    )
    page = ben.get(f"/boards/{board_id}/shop")[1]
    assert "You are in Shoes now." in page
    assert re.findall(r"<h2>([^<]+)", page) == ["Shoes ", "Accessories", "Ask staff"]


# -- member text renders inert -------------------------------------------------------------------


@pytest.mark.parametrize("payload", XSS)
def test_member_text_renders_inert(
    people: dict[str, Member], db: sqlite_utils.Database, payload: str
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    board_id = ana.new_board(payload, "public", description=payload)
    ana.post(
        f"/boards/{board_id}/items/new",
        {"product": str(product(db, "Boots", "Shoes")), "note": payload},
    )
    assert ben.comment(board_id, payload).status_code == 302
    (top,) = comment_ids(db, board_id)
    assert ana.comment(board_id, payload, parent_id=top).status_code == 302
    escaped = str(escape(payload))  # as Jinja writes it
    for viewer, path, least in [
        (ben, f"/boards/{board_id}", 4),  # title, description, note, comment, reply
        (ana, "/boards", 1),
        (ben, f"/boards/{board_id}/shop", 2),  # title, note
        (ben, f"/boards/{board_id}/comments/{top}/edit", 1),
    ]:
        status, page = viewer.get(path)
        assert status == 200
        assert payload not in page, path
        assert page.count(escaped) >= least, path


# -- CSRF ----------------------------------------------------------------------------------------


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_posts_need_the_csrf_token(app: Flask, db: sqlite_utils.Database) -> None:
    members.create_member(db, display_name="Ana", password=PASSWORD, email="ana@example.com")
    phone = app.test_client()
    token = csrf_token(phone.get("/signin").get_data(as_text=True))
    signed_in = phone.post(
        "/signin",
        data={"identifier": "ana@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert signed_in.status_code == 302
    refused = phone.post("/boards/new", data={"title": "No token", "audience": "public"})
    assert refused.status_code == 400 and count(db, "boards") == 0
    token = csrf_token(phone.get("/boards/new").get_data(as_text=True))
    response = phone.post(
        "/boards/new", data={"title": "With token", "audience": "public", "csrf_token": token}
    )
    assert response.status_code == 302
