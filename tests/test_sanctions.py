"""Measures against members (``community.sanctions``) and appeals (``community.appeals``):
warnings, silence that screening enforces, suspension that ends sign-ins and WiFi sessions, a ban
that outlives the account, lifting, and the one appeal per decision with its undoing — in the
library, then through the console's member page and the sign-in and sign-up pages.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from community import appeals, moderation, sanctions, screening
from community.content import HELD, REJECTED, VISIBLE
from instore import members, sessions
from instore.clock import utcnow
from tests.conftest import AuthActions
from tests.moderation_helpers import (
    LIMITS,
    PASSWORD,
    actions,
    audit,
    console_client,
    make_board,
    make_comment,
    make_member,
    notes_for,
    post_comment,
    status_of,
)

SIGN_UP_REFUSED = "This email or loyalty number cannot be used to sign up here."


@pytest.fixture
def cast(db: sqlite_utils.Database) -> dict[str, members.Member]:
    return {
        "ana": make_member(db, "Ana"),
        "ben": make_member(db, "Ben"),
        "sam": make_member(db, "Sam", role="staff"),
        "tia": make_member(db, "Tia", role="staff"),
        "max": make_member(db, "Max", role="manager"),
    }


@pytest.fixture
def staff(app_no_csrf: Flask, cast: dict[str, members.Member]) -> FlaskClient:
    return console_client(app_no_csrf, "sam@example.com")


def live_sessions(db: sqlite_utils.Database, member_id: int) -> list[int]:
    return [row["id"] for row in sessions.list_sessions(db) if row["member_id"] == member_id]


def test_silence_makes_the_member_read_only_until_it_ends_or_is_lifted(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    board = make_board(db, ana.id)
    now = utcnow()
    sanctions.silence(db, sam.id, ana.id, 2, "Cooling off", now)
    with pytest.raises(screening.Refused, match="read-only"):
        post_comment(db, board, ana.id, "Hello again", now)
    assert post_comment(db, board, ana.id, "Back", now + timedelta(days=2, seconds=1)) > 0
    sanction = sanctions.sanctions_of(db, ana.id)[0]
    assert sanction.ends_at is not None and sanction.kind == "silence"

    assert sanction.in_force(utcnow())
    sanctions.lift(db, sam.id, sanction.id, "Apologised", utcnow())
    assert post_comment(db, board, ana.id, "Thanks") > 0


def test_suspension_revokes_wifi_sessions_and_ends_sign_ins(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    phone = sessions.authorize_client(
        db, mac="02:00:00:00:00:aa", ip="192.0.2.10", member_id=ana.id, hours=4, idle_minutes=30
    )
    tablet = sessions.authorize_client(
        db, mac="02:00:00:00:00:bb", ip="192.0.2.11", member_id=ana.id, hours=4, idle_minutes=30
    )
    others = sessions.authorize_client(
        db, mac="02:00:00:00:00:cc", ip="192.0.2.12", member_id=sam.id, hours=4, idle_minutes=30
    )
    token = ana.login_token
    done = sanctions.suspend(db, sam.id, ana.id, 3, "Threats", utcnow())
    assert sorted(done.revoked_sessions) == sorted([phone.id, tablet.id])
    assert live_sessions(db, ana.id) == []
    assert live_sessions(db, sam.id) == [others.id]
    revoked = sessions.get_session(db, phone.id)
    assert revoked is not None and revoked.revoked_reason == sanctions.REVOKED_REASON
    assert members.get_by_login_token(db, token) is None  # every signed-in browser is out
    found = sanctions.suspension(db, ana.id, utcnow())
    assert found is not None and found.reason == "Threats" and found.ends_at is not None
    assert sanctions.suspension(db, ana.id, utcnow() + timedelta(days=3, seconds=1)) is None
    with pytest.raises(screening.Refused, match="suspended"):
        screening.screen(db, ana.id, {"body": "hi"}, utcnow(), LIMITS)


def test_an_open_ended_suspension_outranks_a_timed_one(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    sanctions.suspend(db, sam.id, ana.id, 2, "Short", utcnow())
    sanctions.suspend(db, sam.id, ana.id, None, "Until we talk", utcnow())
    found = sanctions.suspension(db, ana.id, utcnow())
    assert found is not None and found.ends_at is None and found.reason == "Until we talk"


def test_ban_refuses_the_email_and_loyalty_number_until_lifted(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    sanctions.ban(db, sam.id, ana.id, "Fraud", utcnow())
    assert sanctions.is_banned(db, "  ANA@Example.com ")
    assert sanctions.is_banned(db, ana.loyalty_number)
    spaced = " ".join(ana.loyalty_number[i : i + 4] for i in range(0, 12, 4))
    assert sanctions.is_banned(db, spaced)
    assert not sanctions.is_banned(db, "ben@example.com")
    sanction = sanctions.suspension(db, ana.id, utcnow())
    assert sanction is not None and sanction.ends_at is None and sanctions.is_ban(db, sanction)
    # Erasing the account leaves the ban: it is what refuses the next sign-up.
    db.conn.execute("DELETE FROM members WHERE id = ?", (ana.id,))
    db.conn.commit()
    assert sanctions.is_banned(db, "ana@example.com")
    ban_row = db.conn.execute("SELECT member_id, email FROM bans").fetchone()
    assert ban_row == (None, "ana@example.com")


def test_lifting_a_ban_allows_sign_up_again(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    sanctions.ban(db, sam.id, ana.id, "Mistake", utcnow())
    sanction = sanctions.suspension(db, ana.id, utcnow())
    assert sanction is not None
    sanctions.lift(db, sam.id, sanction.id, "Wrong member", utcnow())
    assert not sanctions.is_banned(db, "ana@example.com")
    assert sanctions.suspension(db, ana.id, utcnow()) is None
    with pytest.raises(sanctions.SanctionError, match="not standing"):
        sanctions.lift(db, sam.id, sanction.id, "Again", utcnow())


def test_who_may_sanction_whom(db: sqlite_utils.Database, cast: dict[str, members.Member]) -> None:
    sam, tia, mgr = cast["sam"], cast["tia"], cast["max"]
    with pytest.raises(sanctions.SanctionError, match="your own account"):
        sanctions.warn(db, sam.id, sam.id, "Me", utcnow())
    with pytest.raises(sanctions.SanctionError, match="higher role"):
        sanctions.suspend(db, sam.id, tia.id, 1, "Peer", utcnow())
    with pytest.raises(sanctions.SanctionError, match="higher role"):
        sanctions.ban(db, sam.id, mgr.id, "Boss", utcnow())
    sanctions.suspend(db, mgr.id, sam.id, 1, "Manager may", utcnow())
    with pytest.raises(sanctions.SanctionError, match="no longer exists"):
        sanctions.warn(db, sam.id, 9999, "Nobody", utcnow())


@pytest.mark.parametrize("days", [0, -1, 366])
def test_days_must_be_one_to_a_year(
    db: sqlite_utils.Database, cast: dict[str, members.Member], days: int
) -> None:
    with pytest.raises(sanctions.SanctionError, match="1 to 365"):
        sanctions.silence(db, cast["sam"].id, cast["ana"].id, days, "x", utcnow())
    with pytest.raises(sanctions.SanctionError, match="1 to 365"):
        sanctions.suspend(db, cast["sam"].id, cast["ana"].id, days, "x", utcnow())
    assert sanctions.sanctions_of(db, cast["ana"].id) == []


def test_every_measure_is_an_action_with_moderator_and_reason(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    sanctions.warn(db, sam.id, ana.id, "Be kind", utcnow())
    sanctions.silence(db, sam.id, ana.id, 1, "Quiet", utcnow())
    sanctions.suspend(db, sam.id, ana.id, None, "Out", utcnow())
    standing = sanctions.suspension(db, ana.id, utcnow())
    assert standing is not None
    sanctions.lift(db, sam.id, standing.id, "Back in", utcnow())
    sanctions.ban(db, sam.id, ana.id, "Gone", utcnow())
    rows = actions(db)
    assert [(r["action"], r["reason"]) for r in rows] == [
        ("warn", "Be kind"),
        ("silence", "Quiet"),
        ("suspend", "Out"),
        ("lift", "Back in"),
        ("ban", "Gone"),
    ]
    assert {r["moderator_id"] for r in rows} == {sam.id}
    assert {r["member_id"] for r in rows} == {ana.id}


# -- appeals -------------------------------------------------------------------------------------


def test_a_decision_can_be_appealed_once(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    action_id = sanctions.warn(db, sam.id, ana.id, "Rude", utcnow())
    appeal_id = appeals.appeal(db, ana.id, action_id, "I was quoting someone", utcnow())
    with pytest.raises(sanctions.AlreadyAppealed):
        appeals.appeal(db, ana.id, action_id, "Please", utcnow())
    with pytest.raises(LookupError):  # someone else's decision
        appeals.appeal(db, sam.id, action_id, "Mine?", utcnow())
    with pytest.raises(sanctions.SanctionError, match="Write why"):
        appeals.appeal(db, ana.id, action_id, "  ", utcnow())
    assert [a.id for a in appeals.open_appeals(db)] == [appeal_id]
    found, __ = appeals.decide_appeal(db, sam.id, appeal_id, "upheld", "Still rude", utcnow())
    assert found.body == "I was quoting someone"
    assert appeals.open_appeals(db) == []
    with pytest.raises(sanctions.SanctionError, match="already been answered"):
        appeals.decide_appeal(db, sam.id, appeal_id, "overturned", "Changed my mind", utcnow())
    notice = appeals.notices(db, ana.id)[0]
    assert notice.appeal is not None and notice.appeal.outcome == "upheld"
    assert notice.appeal.answer == "Still rude"


def test_approvals_and_lifts_are_not_appealable(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    held = make_comment(db, make_board(db, ana.id), ana.id, status=HELD)
    decision = moderation.approve(db, sam.id, "comment", held, "Fine", utcnow())
    with pytest.raises(LookupError):
        appeals.appeal(db, ana.id, decision.action_id, "Why?", utcnow())


def test_overturning_restores_a_rejected_item(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    comment = make_comment(db, make_board(db, ana.id), ana.id, "Fair point")
    decision = moderation.reject(db, sam.id, "comment", comment, "Off topic", utcnow())
    assert status_of(db, "comment", comment) == REJECTED
    appeal_id = appeals.appeal(db, ana.id, decision.action_id, "It is on topic", utcnow())
    appeals.decide_appeal(db, cast["tia"].id, appeal_id, "overturned", "Agreed", utcnow())
    assert status_of(db, "comment", comment) == VISIBLE
    assert actions(db)[-1]["action"] == "appeal_overturned"
    assert actions(db)[-1]["moderator_id"] == cast["tia"].id


def test_overturning_an_edit_puts_the_authors_words_back(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    comment = make_comment(db, make_board(db, ana.id), ana.id, "Original words", status=HELD)
    decision = moderation.edit_and_approve(
        db, sam.id, "comment", comment, {"body": "Moderated words"}, "Tone", utcnow()
    )
    appeal_id = appeals.appeal(db, ana.id, decision.action_id, "Keep mine", utcnow())
    appeals.decide_appeal(db, sam.id, appeal_id, "overturned", "Fair", utcnow())
    body = db.conn.execute("SELECT body FROM board_comments WHERE id = ?", (comment,)).fetchone()
    assert body[0] == "Original words"


def test_overturning_a_suspension_or_ban_lifts_it(
    db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana, sam = cast["ana"], cast["sam"]
    done = sanctions.ban(db, sam.id, ana.id, "Spam ring", utcnow())
    appeal_id = appeals.appeal(db, ana.id, done.action_id, "Not me", utcnow())
    appeals.decide_appeal(db, sam.id, appeal_id, "overturned", "Sorry", utcnow())
    assert sanctions.suspension(db, ana.id, utcnow()) is None
    assert not sanctions.is_banned(db, "ana@example.com")
    with pytest.raises(sanctions.SanctionError, match="uphold or overturn"):
        appeals.decide_appeal(db, sam.id, appeal_id, "maybe", "Hmm", utcnow())


# -- through the console and the sign-in pages ---------------------------------------------------


def test_silence_from_the_console_refuses_posting_with_a_sentence(
    db: sqlite_utils.Database, cast: dict[str, members.Member], staff: FlaskClient
) -> None:
    ana = cast["ana"]
    response = staff.post(
        f"/manage/moderation/member/{ana.id}/silence",
        data={"silence-days": "3", "silence-reason": "Flame war"},
    )
    assert response.status_code == 302
    with pytest.raises(screening.Refused) as refused:
        post_comment(db, make_board(db, cast["ben"].id), ana.id, "One more thing")
    assert str(refused.value) == (
        "A moderator has made your account read-only for now, so you cannot post."
    )
    assert notes_for(db, ana.id)[-1]["title"] == (
        "A moderator made your account read-only for 3 days."
    )
    bad = staff.post(
        f"/manage/moderation/member/{ana.id}/silence",
        data={"silence-days": "0", "silence-reason": "x"},
    )
    assert bad.status_code == 400 and "1 to 365" in bad.get_data(as_text=True)


def test_suspension_signs_the_member_out_and_takes_their_phone_off_the_wifi(
    app_no_csrf: Flask,
    client: FlaskClient,
    auth: AuthActions,
    db: sqlite_utils.Database,
    cast: dict[str, members.Member],
) -> None:
    zoe = auth.go_online("zoe@example.com")
    (session_row,) = [r for r in sessions.list_sessions(db) if r["member_id"] == zoe.id]
    assert client.get("/account").status_code == 200
    staff = console_client(app_no_csrf, "sam@example.com")
    response = staff.post(
        f"/manage/moderation/member/{zoe.id}/suspend",
        data={"suspend-days": "7", "suspend-reason": "Threatened staff"},
    )
    assert response.status_code == 302
    assert [r for r in sessions.list_sessions(db) if r["member_id"] == zoe.id] == []
    revoked = sessions.get_session(db, session_row["id"])
    assert revoked is not None and revoked.revoked_reason == sanctions.REVOKED_REASON
    # Their browser is signed out at its next request.
    response = client.get("/account")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]
    after = audit(db)[-1]
    assert after["action"] == "moderation.suspend" and after["actor_id"] == cast["sam"].id
    assert f"[{session_row['id']}]" in after["after"]


def test_a_suspended_member_cannot_sign_in_and_may_appeal_there_once(
    app_no_csrf: Flask, db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    ana = cast["ana"]
    done = sanctions.suspend(db, cast["sam"].id, ana.id, None, "Spam ring", utcnow())
    client = app_no_csrf.test_client()
    wrong = client.post("/signin", data={"identifier": "ana@example.com", "password": "nope"})
    assert "Spam ring" not in wrong.get_data(as_text=True)  # the reason needs the password
    refused = client.post("/signin", data={"identifier": "ana@example.com", "password": PASSWORD})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 403
    assert "This account is suspended" in page and "Spam ring" in page
    assert client.get("/account").status_code == 302  # not signed in
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', page)
    assert token is not None

    sent = client.post("/appeal", data={"token": token.group(1), "body": "I am not a bot"})
    assert sent.status_code == 200 and "Your appeal is sent." in sent.get_data(as_text=True)
    again = client.post("/appeal", data={"token": token.group(1), "body": "Please"})
    assert again.status_code == 400 and "already appealed" in again.get_data(as_text=True)
    (appeal,) = appeals.open_appeals(db)
    assert (appeal.action_id, appeal.body) == (done.action_id, "I am not a bot")
    forged = client.post("/appeal", data={"token": token.group(1) + "x", "body": "Hi"})
    assert forged.status_code == 400 and "expired" in forged.get_data(as_text=True)

    later = client.post("/signin", data={"identifier": "ana@example.com", "password": PASSWORD})
    assert "A moderator has not answered yet." in later.get_data(as_text=True)
    appeals.decide_appeal(db, cast["sam"].id, appeal.id, "overturned", "Sorry", utcnow())
    back = client.post("/signin", data={"identifier": "ana@example.com", "password": PASSWORD})
    assert back.status_code == 302


def test_a_suspended_staff_member_cannot_sign_in_to_the_console(
    app_no_csrf: Flask, db: sqlite_utils.Database, cast: dict[str, members.Member]
) -> None:
    manager = console_client(app_no_csrf, "max@example.com")
    response = manager.post(
        f"/manage/moderation/member/{cast['sam'].id}/suspend",
        data={"suspend-reason": "Leaked data"},
    )
    assert response.status_code == 302
    refused = app_no_csrf.test_client().post(
        "/manage/signin", data={"identifier": "sam@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 403 and "Leaked data" in refused.get_data(as_text=True)
    # Staff cannot suspend a manager, nor themselves.
    staff = console_client(app_no_csrf, "max@example.com")
    own = staff.post(f"/manage/moderation/member/{cast['max'].id}/ban", data={"ban-reason": "Me"})
    assert own.status_code == 400 and "your own account" in own.get_data(as_text=True)


def test_ban_refuses_sign_up_with_the_email_or_the_loyalty_number(
    app_no_csrf: Flask,
    db: sqlite_utils.Database,
    cast: dict[str, members.Member],
    staff: FlaskClient,
) -> None:
    ana = cast["ana"]
    response = staff.post(f"/manage/moderation/member/{ana.id}/ban", data={"ban-reason": "Fraud"})
    assert response.status_code == 302
    db.conn.execute("DELETE FROM members WHERE id = ?", (ana.id,))  # erased: the ban stays
    db.conn.commit()
    for identifier in ("Ana@Example.com", ana.loyalty_number):
        signup = app_no_csrf.test_client().post(
            "/signup",
            data={"display_name": "Ana2", "identifier": identifier, "password": PASSWORD},
        )
        page = signup.get_data(as_text=True)
        assert SIGN_UP_REFUSED in page, identifier
        assert "Fraud" not in page and "banned" not in page.lower()
    assert members.find_by_identifier(db, "ana@example.com") is None
    ok = app_no_csrf.test_client().post(
        "/signup",
        data={"display_name": "Ben2", "identifier": "ben2@example.com", "password": PASSWORD},
    )
    assert ok.status_code == 302


def test_lift_from_the_member_page(
    db: sqlite_utils.Database, cast: dict[str, members.Member], staff: FlaskClient
) -> None:
    ana = cast["ana"]
    sanctions.suspend(db, cast["sam"].id, ana.id, 2, "Cool off", utcnow())
    (standing,) = sanctions.sanctions_of(db, ana.id)
    page = staff.get(f"/manage/moderation/member/{ana.id}").get_data(as_text=True)
    assert "Cool off" in page and "in force" in page
    url = f"/manage/moderation/member/{ana.id}/sanction/{standing.id}/lift"
    assert staff.post(url, data={f"lift-{standing.id}-reason": ""}).status_code == 400
    assert staff.post(url, data={f"lift-{standing.id}-reason": "Talked"}).status_code == 302
    assert sanctions.suspension(db, ana.id, utcnow()) is None
    other = f"/manage/moderation/member/{cast['ben'].id}/sanction/{standing.id}/lift"
    assert staff.post(other, data={f"lift-{standing.id}-reason": "x"}).status_code == 404
    assert staff.get("/manage/moderation/member/9999").status_code == 404
