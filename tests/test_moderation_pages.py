"""Moderation through the pages: members report and appeal, staff decide from the console's queue
and member pages, every decision is in the moderation records and the audit log with the moderator
and the reason, suspended members cannot sign in (and may appeal there), banned addresses cannot
sign up, and every text a person types renders inert.
"""

from __future__ import annotations

import re

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from community import appeals, moderation, sanctions
from community.content import HELD, HIDDEN, REJECTED, VISIBLE
from instore import members
from tests.moderation_helpers import (
    PASSWORD,
    XSS_PAYLOADS,
    actions,
    assert_inert,
    audit,
    author_edits,
    console_client,
    make_board,
    make_comment,
    make_member,
    notes_for,
    post_comment,
    signed_in,
    status_of,
)


@pytest.fixture
def cast(db: sqlite_utils.Database) -> dict[str, members.Member]:
    """Ana writes; Ben, Cam and Dee read and report; Sam is staff; Max a manager."""
    found = {name.lower(): make_member(db, name) for name in ("Ana", "Ben", "Cam", "Dee")}
    found["sam"] = make_member(db, "Sam", role="staff")
    found["max"] = make_member(db, "Max", role="manager")
    return found


@pytest.fixture
def staff(app_no_csrf: Flask, cast: dict[str, members.Member]) -> FlaskClient:
    return console_client(app_no_csrf, "sam@example.com")


def report(
    client: FlaskClient, kind: str, item_id: int, reason: str = "spam", note: str = ""
) -> int:
    response = client.post(f"/report/{kind}/{item_id}", data={"reason": reason, "note": note})
    return response.status_code


def decide(staff: FlaskClient, kind: str, item_id: int, action: str, reason: str) -> int:
    response = staff.post(
        f"/manage/moderation/item/{kind}/{item_id}",
        data={"action": action, f"{kind}-{item_id}-reason": reason},
    )
    return response.status_code


# -- reporting -----------------------------------------------------------------------------------


def test_report_page_asks_why_and_files_one_report(
    app_no_csrf: Flask, db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    comment = make_comment(db, make_board(db, cast["ana"].id), cast["ana"].id, "Buy watches")
    ben = signed_in(app_no_csrf, "ben@example.com")
    page = ben.get(f"/report/comment/{comment}").get_data(as_text=True)
    for label in ("Spam or advertising", "Offensive", "Harassment or bullying", "Something else"):
        assert label in page
    assert "Buy watches" in page

    response = ben.post(
        f"/report/comment/{comment}",
        data={"reason": "spam", "note": "Selling", "back": "/store"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/store"
    again = ben.get(f"/report/comment/{comment}").get_data(as_text=True)
    assert "You have reported this comment." in again and "<form" not in again.split("</header>")[1]
    assert report(ben, "comment", comment, "other") == 200  # a resubmission changes nothing
    rows = db.conn.execute("SELECT flagger_id, reason, note FROM flags").fetchall()
    assert rows == [(cast["ben"].id, "spam", "Selling")]


def test_the_back_link_stays_on_this_site(
    app_no_csrf: Flask, db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    comment = make_comment(db, make_board(db, cast["ana"].id), cast["ana"].id)
    ben = signed_in(app_no_csrf, "ben@example.com")
    response = ben.post(
        f"/report/comment/{comment}", data={"reason": "spam", "back": "//evil.example/x"}
    )
    assert response.headers["Location"] == f"/report/comment/{comment}"


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        ({}, "Choose why you are reporting it."),
        ({"reason": "rude"}, "Not a valid choice"),
        ({"reason": "spam", "note": "x" * 501}, "Keep the note under 500 characters."),
    ],
)
def test_bad_reports_get_the_form_again(
    app_no_csrf: Flask,
    db: sqlite_utils.Database,
    cast: dict[str, members.Member],
    data: dict[str, str],
    sentence: str,
) -> None:
    comment = make_comment(db, make_board(db, cast["ana"].id), cast["ana"].id)
    ben = signed_in(app_no_csrf, "ben@example.com")
    response = ben.post(f"/report/comment/{comment}", data=data)
    assert response.status_code == 400
    assert sentence in response.get_data(as_text=True)
    assert db.conn.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == 0


def test_what_cannot_be_reported_is_a_404(
    app_no_csrf: Flask, db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana = cast["ana"].id
    private = make_board(db, ana, audience="private")
    public = make_board(db, ana)
    blocked_board = make_board(db, cast["cam"].id)
    db.conn.execute(
        "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)",
        (cast["cam"].id, cast["ben"].id, "2024-01-01T00:00:00Z"),
    )
    db.conn.commit()
    ben = signed_in(app_no_csrf, "ben@example.com")
    for url in (
        f"/report/board/{private}",
        f"/report/board/{blocked_board}",
        f"/report/comment/{make_comment(db, public, ana, status=HELD)}",
        "/report/board/999",
        f"/report/poll/{public}",
    ):
        assert ben.get(url).status_code == 404, url
        assert ben.post(url, data={"reason": "spam"}).status_code == 404, url
    author = signed_in(app_no_csrf, "ana@example.com")
    assert author.get(f"/report/board/{public}").status_code == 404  # their own


def test_reporting_needs_a_member(
    client: FlaskClient, db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    board = make_board(db, cast["ana"].id)
    response = client.get(f"/report/board/{board}")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


def test_three_reports_hide_a_comment_and_tell_its_author(
    app_no_csrf: Flask, db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana = cast["ana"]
    comment = make_comment(db, make_board(db, ana.id), ana.id, "Rude words here")
    for name in ("ben", "cam"):
        assert report(signed_in(app_no_csrf, f"{name}@example.com"), "comment", comment) == 302
    assert status_of(db, "comment", comment) == VISIBLE and notes_for(db, ana.id) == []
    assert report(signed_in(app_no_csrf, "dee@example.com"), "comment", comment) == 302
    assert status_of(db, "comment", comment) == HIDDEN
    (note,) = notes_for(db, ana.id)
    assert note["title"] == "Your comment is hidden after reports. You can edit it."
    assert note["data"] == {"what": "moderation", "link": "/account/moderation"}

    author = signed_in(app_no_csrf, "ana@example.com")
    page = author.get("/account/moderation").get_data(as_text=True)
    assert "Rude words here" in page and "Hidden after reports — you can edit it" in page


# -- the queue -----------------------------------------------------------------------------------


def test_console_moderation_needs_staff(
    client: FlaskClient, app_no_csrf: Flask, cast: dict[str, members.Member]
) -> None:
    response = client.get("/manage/moderation")
    assert response.status_code == 302 and "/manage/signin" in response.headers["Location"]
    shopper = signed_in(app_no_csrf, "ana@example.com")
    for url in ("/manage/moderation", "/manage/moderation/words", "/manage/moderation/member/1"):
        assert shopper.get(url).status_code == 403


def test_watched_word_held_comment_is_approved_from_the_queue(
    app_no_csrf: Flask,
    db: sqlite_utils.Database,
    cast: dict[str, members.Member],
    staff: FlaskClient,
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    response = staff.post(
        "/manage/moderation/words", data={"word": "Free Money", "action": "require_approval"}
    )
    assert response.status_code == 302
    assert "free money" in staff.get("/manage/moderation/words").get_data(as_text=True)

    comment = post_comment(db, make_board(db, ana.id), ana.id, "free money for all")
    assert status_of(db, "comment", comment) == HELD
    queue = staff.get("/manage/moderation").get_data(as_text=True)
    assert f'id="queue-comment-{comment}"' in queue
    assert "free money for all" in queue and "Watched word" in queue
    assert "needs approval: free money" in queue

    assert decide(staff, "comment", comment, "approve", "Harmless") == 302
    assert status_of(db, "comment", comment) == VISIBLE
    assert "Nothing waits for a moderator." in staff.get("/manage/moderation").get_data(
        as_text=True
    )
    row = actions(db)[-1]
    assert (row["action"], row["moderator_id"], row["reason"], row["item_id"]) == (
        "approve",
        sam.id,
        "Harmless",
        comment,
    )
    assert [(a["action"], a["actor_id"]) for a in audit(db)] == [
        ("moderation.word_add", sam.id),
        ("moderation.approve", sam.id),
    ]
    assert '"reason": "Harmless"' in audit(db)[-1]["after"]
    assert notes_for(db, ana.id)[-1]["title"] == "A moderator approved your comment."


def test_hidden_comment_edited_by_its_author_is_restored_from_the_queue(
    app_no_csrf: Flask,
    db: sqlite_utils.Database,
    cast: dict[str, members.Member],
    staff: FlaskClient,
) -> None:
    ana = cast["ana"]
    comment = make_comment(db, make_board(db, ana.id), ana.id, "You lot are idiots")
    for name in ("ben", "cam", "dee"):
        report(signed_in(app_no_csrf, f"{name}@example.com"), "comment", comment, "harassment")
    assert status_of(db, "comment", comment) == HIDDEN
    queue = staff.get("/manage/moderation").get_data(as_text=True)
    assert "3 reports from members" in queue and "Harassment or bullying × 3" in queue

    assert author_edits(db, "comment", comment, {"body": "You lot are lovely"}) == HELD
    queue = staff.get("/manage/moderation").get_data(as_text=True)
    assert "You lot are lovely" in queue and "Waiting for a moderator" in queue
    assert decide(staff, "comment", comment, "approve", "Edited by the author") == 302
    assert status_of(db, "comment", comment) == VISIBLE
    open_flags = db.conn.execute("SELECT COUNT(*) FROM flags WHERE resolved_at IS NULL")
    assert open_flags.fetchone()[0] == 0


def test_reject_tells_the_author_who_may_appeal_once(
    app_no_csrf: Flask,
    db: sqlite_utils.Database,
    cast: dict[str, members.Member],
    staff: FlaskClient,
) -> None:
    ana = cast["ana"]
    comment = make_comment(db, make_board(db, ana.id), ana.id, "Cheap pills", status=HELD)
    assert decide(staff, "comment", comment, "reject", "Selling medicine") == 302
    assert status_of(db, "comment", comment) == REJECTED
    assert notes_for(db, ana.id)[-1]["title"] == "A moderator removed your comment."

    author = signed_in(app_no_csrf, "ana@example.com")
    page = author.get("/account/moderation").get_data(as_text=True)
    assert "Selling medicine" in page and "Removed by a moderator" in page
    action_id = actions(db)[-1]["id"]
    url = f"/account/moderation/{action_id}/appeal"
    field = f"appeal-{action_id}-body"
    assert author.post(url, data={field: ""}).status_code == 400
    assert author.post(url, data={field: "They are vitamins"}).status_code == 302
    second = author.post(url, data={field: "Really"})
    assert second.status_code == 400
    assert "already appealed" in second.get_data(as_text=True)
    assert db.conn.execute("SELECT COUNT(*) FROM appeals").fetchone()[0] == 1
    # Someone else's decision reads like one that does not exist.
    assert (
        signed_in(app_no_csrf, "ben@example.com").post(url, data={field: "Me too"}).status_code
        == 404
    )

    queue = staff.get("/manage/moderation").get_data(as_text=True)
    assert "They are vitamins" in queue
    (appeal,) = appeals.open_appeals(db)
    response = staff.post(
        f"/manage/moderation/appeal/{appeal.id}",
        data={"outcome": "overturned", f"appeal-{appeal.id}-answer": "Fair enough"},
    )
    assert response.status_code == 302
    assert status_of(db, "comment", comment) == VISIBLE
    assert notes_for(db, ana.id)[-1]["title"] == "A moderator answered your appeal."
    page = author.get("/account/moderation").get_data(as_text=True)
    assert "A moderator overturned the decision:" in page and "Fair enough" in page
    assert audit(db)[-1]["action"] == "moderation.appeal_overturned"


def test_edit_from_the_console_keeps_the_original(
    db: sqlite_utils.Database, cast: dict[str, members.Member], staff: FlaskClient
) -> None:
    ana = cast["ana"]
    comment = make_comment(db, make_board(db, ana.id), ana.id, "Nice, damn nice", status=HELD)
    form = staff.get(f"/manage/moderation/item/comment/{comment}/edit").get_data(as_text=True)
    assert "Nice, damn nice" in form
    response = staff.post(
        f"/manage/moderation/item/comment/{comment}/edit",
        data={"body": "Nice, very nice", "reason": "Language"},
    )
    assert response.status_code == 302
    row = actions(db)[-1]
    assert row["action"] == "edit" and row["detail"]["original"] == {"body": "Nice, damn nice"}
    assert status_of(db, "comment", comment) == VISIBLE
    assert audit(db)[-1]["action"] == "moderation.edit"


def test_warn_sends_a_warning(
    db: sqlite_utils.Database, cast: dict[str, members.Member], staff: FlaskClient
) -> None:
    ana = cast["ana"]
    comment = make_comment(db, make_board(db, ana.id), ana.id, "Meh", status=HELD)
    assert decide(staff, "comment", comment, "warn", "Mind your tone") == 302
    assert [s.kind for s in sanctions.sanctions_of(db, ana.id)] == ["warning"]
    assert notes_for(db, ana.id)[-1]["title"] == "A moderator sent you a warning."
    assert actions(db)[-1]["action"] == "warn" and actions(db)[-1]["item_id"] == comment


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_decisions_need_a_short_reason_and_store_nothing_without_one(
    db: sqlite_utils.Database, cast: dict[str, members.Member], staff: FlaskClient, reason: str
) -> None:
    comment = make_comment(db, make_board(db, cast["ana"].id), cast["ana"].id, status=HELD)
    for action in ("approve", "reject", "warn"):
        assert decide(staff, "comment", comment, action, reason) == 400
    assert status_of(db, "comment", comment) == HELD
    assert actions(db) == [] and audit(db) == []


def test_bad_decision_requests(
    db: sqlite_utils.Database, cast: dict[str, members.Member], staff: FlaskClient
) -> None:
    comment = make_comment(db, make_board(db, cast["ana"].id), cast["ana"].id, status=HELD)
    assert decide(staff, "comment", comment, "delete", "x") == 400
    assert decide(staff, "comment", 999, "approve", "x") == 404
    assert decide(staff, "nothing", 1, "approve", "x") == 404
    assert decide(staff, "comment", comment, "approve", "ok") == 302
    response = staff.post(
        f"/manage/moderation/item/comment/{comment}",
        data={"action": "approve", f"comment-{comment}-reason": "again"},
    )
    assert response.status_code == 409
    assert "already decided" in response.get_data(as_text=True)


def test_watched_words_page_validates_and_audits(
    db: sqlite_utils.Database, cast: dict[str, members.Member], staff: FlaskClient
) -> None:
    bad = staff.post("/manage/moderation/words", data={"word": "", "action": "block"})
    assert bad.status_code == 400 and "Write the word or phrase" in bad.get_data(as_text=True)
    bad = staff.post("/manage/moderation/words", data={"word": "x" * 61, "action": "block"})
    assert bad.status_code == 400 and "under 60 characters" in bad.get_data(as_text=True)
    bad = staff.post("/manage/moderation/words", data={"word": "spam", "action": "nuke"})
    assert bad.status_code == 400
    assert (
        staff.post(
            "/manage/moderation/words", data={"word": "Spam", "action": "censor"}
        ).status_code
        == 302
    )
    taken = staff.post("/manage/moderation/words", data={"word": "SPAM", "action": "block"})
    assert taken.status_code == 400 and "already watched" in taken.get_data(as_text=True)
    word_id = db.conn.execute("SELECT id FROM watched_words").fetchone()[0]
    assert staff.post(f"/manage/moderation/words/{word_id}/delete").status_code == 302
    assert staff.post(f"/manage/moderation/words/{word_id}/delete").status_code == 404
    assert [a["action"] for a in audit(db)] == ["moderation.word_add", "moderation.word_remove"]


def test_every_action_is_logged_with_moderator_and_reason(
    app_no_csrf: Flask, db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    staff = console_client(app_no_csrf, "sam@example.com")
    ana = cast["ana"]
    board = make_board(db, ana.id)
    held = [make_comment(db, board, ana.id, f"Held {n}", status=HELD) for n in range(3)]
    decide(staff, "comment", held[0], "approve", "r1")
    decide(staff, "comment", held[1], "reject", "r2")
    decide(staff, "comment", held[2], "warn", "r3")
    staff.post(
        f"/manage/moderation/item/comment/{held[2]}/edit", data={"body": "New", "reason": "r4"}
    )
    base = f"/manage/moderation/member/{ana.id}"
    staff.post(f"{base}/silence", data={"silence-days": "1", "silence-reason": "r5"})
    staff.post(f"{base}/suspend", data={"suspend-reason": "r6"})
    staff.post(f"{base}/ban", data={"ban-reason": "r7"})
    rows = actions(db)
    assert [(r["action"], r["reason"]) for r in rows] == [
        ("approve", "r1"),
        ("reject", "r2"),
        ("warn", "r3"),
        ("edit", "r4"),
        ("silence", "r5"),
        ("suspend", "r6"),
        ("ban", "r7"),
    ]
    assert {r["moderator_id"] for r in rows} == {cast["sam"].id}
    logged = audit(db)
    assert len(logged) == len(rows) and {a["actor_id"] for a in logged} == {cast["sam"].id}
    for row, entry in zip(rows, logged, strict=True):
        assert f'"reason": "{row["reason"]}"' in entry["after"]
    page = staff.get(f"{base}").get_data(as_text=True)
    for n in range(1, 8):
        assert f">r{n}<" in page


# -- every text field renders inert ----------------------------------------------------------------


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_typed_text_renders_inert_everywhere(
    app_no_csrf: Flask, db: sqlite_utils.Database, cast: dict[str, members.Member], payload: str
) -> None:
    ana = cast["ana"]
    staff = console_client(app_no_csrf, "sam@example.com")
    # A watched word with the payload; a comment that contains it is queued with it in the note.
    assert (
        staff.post("/manage/moderation/words", data={"word": payload, "action": "flag"}).status_code
        == 302
    )
    assert_inert(staff.get("/manage/moderation/words").get_data(as_text=True), payload)
    board = make_board(db, ana.id)
    comment = post_comment(db, board, ana.id, f"hello {payload} there")
    # The reporter's note.
    ben = signed_in(app_no_csrf, "ben@example.com")
    assert report(ben, "comment", comment, "other", note=payload) == 302
    queue = staff.get("/manage/moderation").get_data(as_text=True)
    assert_inert(queue, payload)
    # The moderator's reason, on the member's page and the console's member page.
    assert decide(staff, "comment", comment, "reject", f"Because {payload}") == 302
    author = signed_in(app_no_csrf, "ana@example.com")
    assert_inert(author.get("/account/moderation").get_data(as_text=True), payload)
    assert_inert(staff.get(f"/manage/moderation/member/{ana.id}").get_data(as_text=True), payload)
    # The appeal text, on the queue and the member's page.
    action_id = actions(db)[-1]["id"]
    author.post(
        f"/account/moderation/{action_id}/appeal", data={f"appeal-{action_id}-body": payload}
    )
    assert_inert(staff.get("/manage/moderation").get_data(as_text=True), payload)
    assert_inert(author.get("/account/moderation").get_data(as_text=True), payload)
    # The moderator's edit and the reason shown on the refusal page of a suspended member.
    held = make_comment(db, board, ana.id, "Plain", status=HELD)
    staff.post(
        f"/manage/moderation/item/comment/{held}/edit", data={"body": payload, "reason": payload}
    )
    assert_inert(author.get("/account/moderation").get_data(as_text=True), payload)
    staff.post(f"/manage/moderation/member/{ana.id}/suspend", data={"suspend-reason": payload})
    refused = app_no_csrf.test_client().post(
        "/signin", data={"identifier": "ana@example.com", "password": PASSWORD}
    )
    assert_inert(refused.get_data(as_text=True), payload)
    # The notification body carries the reason as text; the store page renders it.
    assert any(payload in note["body"] for note in notes_for(db, ana.id))
    assert moderation.get_item(db, "comment", held) is not None


def csrf(html: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" type="hidden" value="([^"]+)"', html)
    assert found is not None, f"no {name} in the page"
    return found.group(1)


def test_console_and_member_forms_carry_working_csrf_tokens(
    app: Flask, db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    """With CSRF on, as in production: each prefixed form posts with the token it rendered."""
    ana = cast["ana"]
    comment = make_comment(db, make_board(db, ana.id), ana.id, "Hmm", status=HELD)
    staff = app.test_client()
    page = staff.get("/manage/signin").get_data(as_text=True)
    staff.post(
        "/manage/signin",
        data={
            "identifier": "sam@example.com",
            "password": PASSWORD,
            "csrf_token": csrf(page, "csrf_token"),
        },
    )
    queue = staff.get("/manage/moderation").get_data(as_text=True)
    prefix = f"comment-{comment}"
    response = staff.post(
        f"/manage/moderation/item/comment/{comment}",
        data={
            "action": "reject",
            f"{prefix}-reason": "No",
            f"{prefix}-csrf_token": csrf(queue, f"{prefix}-csrf_token"),
        },
    )
    assert response.status_code == 302
    member_page = staff.get(f"/manage/moderation/member/{ana.id}").get_data(as_text=True)
    response = staff.post(
        f"/manage/moderation/member/{ana.id}/silence",
        data={
            "silence-days": "1",
            "silence-reason": "Quiet",
            "silence-csrf_token": csrf(member_page, "silence-csrf_token"),
        },
    )
    assert response.status_code == 302
    # Without the token nothing happens.
    refused = staff.post(f"/manage/moderation/member/{ana.id}/ban", data={"ban-reason": "No token"})
    assert refused.status_code == 400 and not sanctions.is_banned(db, "ana@example.com")

    author = app.test_client()
    page = author.get("/signin").get_data(as_text=True)
    author.post(
        "/signin",
        data={
            "identifier": "ana@example.com",
            "password": PASSWORD,
            "csrf_token": csrf(page, "csrf_token"),
        },
    )
    notices = author.get("/account/moderation").get_data(as_text=True)
    action_id = actions(db)[0]["id"]
    field = f"appeal-{action_id}"
    response = author.post(
        f"/account/moderation/{action_id}/appeal",
        data={
            f"{field}-body": "Please",
            f"{field}-csrf_token": csrf(notices, f"{field}-csrf_token"),
        },
    )
    assert response.status_code == 302
    assert len(appeals.open_appeals(db)) == 1
