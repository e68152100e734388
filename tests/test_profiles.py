"""Profiles: editing one's own (name, bio, picture, interests) and opening other members'.

The bio is screened like a post and follows the moderation statuses; the picture is re-encoded
(no EXIF, no GPS) and replaced files are removed; interests feed the offers' personal price; a
block either way makes a profile the same 404 as an id that does not exist.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from flask import Flask, url_for
from flask.testing import FlaskClient
from markupsafe import escape
from PIL import ExifTags, Image

from community import friends, images, profiles
from instore import members
from instore.clock import utcnow
from instore.config import Config
from offers.attributes import member_interests
from tests.conftest import PASSWORD

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


class Member:
    """A member signed in on their own phone (their own cookie jar)."""

    def __init__(self, app: Flask, db: sqlite_utils.Database, name: str) -> None:
        self.email = f"{name.lower()}@example.com"
        self.id = members.create_member(
            db, display_name=name, password=PASSWORD, email=self.email
        ).id
        self.browser: FlaskClient = app.test_client()
        signed_in = self.browser.post(
            "/signin", data={"identifier": self.email, "password": PASSWORD}
        )
        assert signed_in.status_code == 302

    def save(self, name: str = "", bio: str = "", interests: tuple[str, ...] = ()) -> Any:
        data: dict[str, Any] = {"display_name": name, "bio": bio, "interests": list(interests)}
        return self.browser.post("/profile", data=data)

    def upload(self, data: bytes, filename: str = "me.jpg") -> Any:
        return self.browser.post(
            "/profile/avatar",
            data={"picture": (io.BytesIO(data), filename)},
            content_type="multipart/form-data",
        )

    def view(self, other_id: int) -> Any:
        return self.browser.get(f"/members/{other_id}")


@pytest.fixture
def people(app_no_csrf: Flask, db: sqlite_utils.Database) -> dict[str, Member]:
    return {name: Member(app_no_csrf, db, name) for name in ("Ana", "Ben", "Cleo")}


@pytest.fixture
def catalogue(db: sqlite_utils.Database) -> None:
    for sku, category in (("T1", "trail"), ("D1", "denim"), ("K1", "knitwear")):
        db.conn.execute(
            "INSERT INTO products (sku, name, category, updated_at) VALUES (?, ?, ?, 'x')",
            (sku, f"Product {sku}", category),
        )


def uploads(config: Config) -> Path:
    return config.var_dir / "uploads"


def jpeg_with_gps(size: tuple[int, int] = (900, 600)) -> bytes:
    """A phone photo: EXIF with the camera's make and where it was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (40.0, 26.0, 46.0),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: (3.0, 42.0, 10.0),
    }
    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, "JPEG", exif=exif)
    return out.getvalue()


def profile_row(db: sqlite_utils.Database, member_id: int) -> tuple[Any, ...] | None:
    row = db.conn.execute(
        "SELECT bio, avatar_path, status FROM member_profiles WHERE member_id = ?", (member_id,)
    ).fetchone()
    return tuple(row) if row else None


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


# -- editing one's own ---------------------------------------------------------------------------


def test_profile_needs_a_signed_in_member(client: FlaskClient) -> None:
    assert client.get("/profile").status_code == 302
    assert client.get("/members/1").status_code == 302


@pytest.mark.usefixtures("catalogue")
def test_edit_name_bio_and_interests_which_feed_offers(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana = people["Ana"]
    page = text(ana.browser.get("/profile"))
    assert 'value="denim"' in page and 'value="trail"' in page  # the catalogue's categories
    response = ana.save("Ana Q", "I run on trails.", ("trail", "denim"))
    assert response.status_code == 302
    member = members.get_member(db, ana.id)
    assert member is not None and member.display_name == "Ana Q"
    assert profile_row(db, ana.id) == ("I run on trails.", None, "visible")
    assert member_interests(db, ana.id) == ("denim", "trail")
    ana.save("Ana Q", "I run on trails.", ("knitwear",))  # the set is replaced
    assert member_interests(db, ana.id) == ("knitwear",)
    page = text(ana.browser.get("/profile"))
    assert re.search(r'<input[^>]*checked[^>]*value="knitwear"', page)
    assert not re.search(r'<input[^>]*checked[^>]*value="trail"', page)


@pytest.mark.usefixtures("catalogue")
def test_bad_profile_input_is_400_and_keeps_what_was_typed(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana = people["Ana"]
    no_name = ana.save("", "kept bio")
    assert no_name.status_code == 400 and "Enter a name." in text(no_name)
    assert "kept bio" in text(no_name)
    long_bio = ana.save("Ana", "x" * (profiles.MAX_BIO + 1))
    assert long_bio.status_code == 400 and "under 500 characters" in text(long_bio)
    unknown = ana.save("Ana", "", ("gardening",))
    assert unknown.status_code == 400
    assert profile_row(db, ana.id) is None and member_interests(db, ana.id) == ()


def test_watched_words_screen_the_bio(people: dict[str, Member], db: sqlite_utils.Database) -> None:
    ana, ben = people["Ana"], people["Ben"]
    db.conn.executemany(
        "INSERT INTO watched_words (word, action, created_at) VALUES (?, ?, 'x')",
        [("spamword", "block"), ("check me", "require_approval")],
    )
    refused = ana.save("Ana", "buy spamword now")
    assert refused.status_code == 400
    assert "“spamword” is not allowed here" in html.unescape(text(refused))
    assert "buy spamword now" in text(refused)  # kept in the box
    assert profile_row(db, ana.id) is None
    assert ana.save("Ana", "please check me out").status_code == 302
    assert profile_row(db, ana.id) == ("please check me out", None, "held")
    flags = db.conn.execute(
        "SELECT item_kind, item_id FROM flags WHERE flagger_id IS NULL"
    ).fetchall()
    assert flags == [("profile", ana.id)]
    assert "Waiting for a moderator" in text(ana.browser.get("/profile"))
    own = text(ana.view(ana.id))
    assert "please check me out" in own and "Waiting for a moderator" in own
    other = text(ben.view(ana.id))
    assert "Ana" in other and "please check me out" not in other
    # Renaming oneself does not screen the unchanged bio again.
    assert ana.save("Ana B", "please check me out").status_code == 302
    assert profile_row(db, ana.id) == ("please check me out", None, "held")


def test_editing_a_hidden_bio_sends_it_to_review(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana = people["Ana"]
    ana.save("Ana", "hello")
    db.conn.execute("UPDATE member_profiles SET status = 'hidden' WHERE member_id = ?", (ana.id,))
    assert "Hidden after reports" in text(ana.browser.get("/profile"))
    ana.save("Ana", "hello again")
    assert profile_row(db, ana.id) == ("hello again", None, "held")


# -- the picture -----------------------------------------------------------------------------------


def test_avatar_is_reencoded_without_exif_and_replaced(
    people: dict[str, Member], db: sqlite_utils.Database, config: Config
) -> None:
    ana = people["Ana"]
    original = jpeg_with_gps()
    assert b"PhoneCo" in original
    assert ana.upload(original).status_code == 302
    row = profile_row(db, ana.id)
    assert row is not None and row[1].startswith("avatars/")
    first = uploads(config) / row[1]
    stored = first.read_bytes()
    assert b"PhoneCo" not in stored
    with Image.open(io.BytesIO(stored)) as picture:
        assert not picture.getexif()
        assert "exif" not in picture.info
        assert max(picture.size) == images.AVATAR_SIDE
    page = text(ana.browser.get("/profile"))
    assert f"/media/{row[1]}" in page
    assert ana.browser.get(f"/media/{row[1]}").status_code == 200

    assert ana.upload(jpeg_with_gps((300, 300))).status_code == 302
    second = profile_row(db, ana.id)
    assert second is not None and second[1] != row[1]
    assert not first.exists()  # the replaced picture is gone

    assert ana.browser.post("/profile/avatar/remove").status_code == 302
    assert profile_row(db, ana.id) == ("", None, "visible")
    assert not (uploads(config) / second[1]).exists()


def test_bad_pictures_are_400_with_a_sentence(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana = people["Ana"]
    not_picture = ana.upload(b"%PDF-1.4 not a picture", "cv.pdf")
    assert not_picture.status_code == 400
    assert "not a picture" in text(not_picture)
    assert 'value="Ana"' in text(not_picture)  # the rest of the page as it was
    just_over = ana.upload(b"\xff\xd8" + b"0" * images.MAX_UPLOAD_BYTES, "huge.jpg")
    assert just_over.status_code == 400
    assert "larger than 8 MB" in text(just_over)
    nothing = ana.browser.post("/profile/avatar", data={}, content_type="multipart/form-data")
    assert nothing.status_code == 400 and "Choose a picture" in text(nothing)
    assert profile_row(db, ana.id) is None


def test_body_past_the_raised_limit_is_413_with_a_sentence(people: dict[str, Member]) -> None:
    ana = people["Ana"]
    response = ana.upload(b"0" * (images.MAX_UPLOAD_BYTES + 200_000), "huge.jpg")
    assert response.status_code == 413
    assert "larger than 8 MB" in text(response)


def test_only_the_avatar_upload_takes_a_large_body(people: dict[str, Member]) -> None:
    big = {"display_name": "Ana", "bio": "x" * 40_000}
    assert people["Ana"].browser.post("/profile", data=big).status_code == 413


# -- other members' profiles ---------------------------------------------------------------------


def add_board(
    db: sqlite_utils.Database, owner: int, title: str, audience: str, status: str = "visible"
) -> int:
    now = "2026-01-01T00:00:00Z"
    cursor = db.conn.execute(
        """INSERT INTO boards (owner_id, title, audience, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (owner, title, audience, status, now, now),
    )
    return int(cursor.lastrowid or 0)


def test_profile_lists_the_boards_the_viewer_may_open(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben, cleo = people["Ana"], people["Ben"], people["Cleo"]
    add_board(db, ana.id, "Public look", "public")
    add_board(db, ana.id, "Friends look", "friends")
    add_board(db, ana.id, "Private look", "private")
    add_board(db, ana.id, "Held look", "public", status="held")
    friends.befriend(db, ana.id, ben.id, utcnow())
    friends.befriend(db, ben.id, ana.id, utcnow())

    def titles(viewer: int) -> list[str]:
        return [b.title for b in profiles.visible_boards(db, ana.id, viewer)]

    assert titles(ben.id) == ["Friends look", "Public look"]
    assert titles(cleo.id) == ["Public look"]
    assert titles(ana.id) == ["Held look", "Private look", "Friends look", "Public look"]
    page = text(cleo.view(ana.id))
    assert "Public look" in page and "Friends look" not in page and "Private look" not in page
    assert "You are friends." in text(ben.view(ana.id))


def test_blocks_either_way_and_unknown_ids_are_the_same_404(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben, cleo = people["Ana"], people["Ben"], people["Cleo"]
    assert ben.view(ana.id).status_code == 200
    friends.block(db, ana.id, ben.id)
    unknown = ben.view(99_999)
    blocked = ben.view(ana.id)
    blocker = ana.view(ben.id)
    assert unknown.status_code == blocked.status_code == blocker.status_code == 404
    assert text(blocked) == text(unknown)
    assert cleo.view(ana.id).status_code == 200


def test_report_link_on_other_profiles_only(app_no_csrf: Flask, people: dict[str, Member]) -> None:
    ana, ben = people["Ana"], people["Ben"]
    with app_no_csrf.test_request_context():
        report = url_for("moderation.flag", kind="profile", item_id=ana.id)
    assert report in text(ben.view(ana.id))
    assert report not in text(ana.view(ana.id))


@pytest.mark.parametrize("payload", XSS)
def test_name_and_bio_render_inert(people: dict[str, Member], payload: str) -> None:
    ana, ben = people["Ana"], people["Ben"]
    assert ana.save(payload[:60], payload).status_code == 302
    for page in (text(ana.browser.get("/profile")), text(ben.view(ana.id))):
        assert payload not in page
        assert str(escape(payload)) in page
