"""The friends page: requests both ways, blocks that tell the blocked nothing, visibility."""

from __future__ import annotations

import html
import re

import pytest
import sqlite_utils
from flask import Flask
from flask.testing import FlaskClient

from community import friends
from instore import members
from tests.conftest import PASSWORD, AuthActions

SENT = "If that member exists, they will see your request."
BLOCKED = "If that member exists, they are now blocked."


class Member:
    """A member signed in on their own phone (their own cookie jar)."""

    def __init__(
        self, app: Flask, db: sqlite_utils.Database, name: str, email: str | None = None
    ) -> None:
        self.email = email or f"{name.lower()}@example.com"
        self.record = members.create_member(
            db, display_name=name, password=PASSWORD, email=self.email
        )
        self.id = self.record.id
        self.name = name
        self.browser = app.test_client()
        signed_in = self.browser.post(
            "/signin", data={"identifier": self.email, "password": PASSWORD}
        )
        assert signed_in.status_code == 302

    def page(self) -> str:
        response = self.browser.get("/friends")
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def ask(self, identifier: str) -> str:
        """Send a request and return the sentence the member is shown."""
        response = self.browser.post(
            "/friends/ask", data={"ask-identifier": identifier}, follow_redirects=True
        )
        assert response.status_code == 200
        return notices(response.get_data(as_text=True))

    def act(self, other: Member, action: str) -> int:
        """Press a button beside ``other``; the page it leads to is read, as a phone would."""
        response = self.browser.post(f"/friends/{other.id}/{action}")
        if response.status_code == 302:
            self.browser.get(response.headers["Location"])
        return response.status_code

    def section(self, title: str) -> str:
        """The page's text from heading ``title`` up to the next heading."""
        match = re.search(rf"<h2>{title}</h2>(.*?)(?=<h2>|$)", self.page(), re.S)
        return match.group(1) if match else ""


def notices(page: str) -> str:
    return " ".join(html.unescape(n) for n in re.findall(r'class="notice"[^>]*>([^<]*)<', page))


@pytest.fixture
def people(app_no_csrf: Flask, db: sqlite_utils.Database) -> dict[str, Member]:
    return {name: Member(app_no_csrf, db, name) for name in ("Ana", "Ben", "Cleo")}


def test_request_send_decline_cancel_accept_remove(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    assert ana.ask(ben.email) == SENT
    assert "Ben" in ana.section("Requests you sent")
    assert "Ana" in ben.section("Requests for you")

    assert ben.act(ana, "decline") == 302
    assert friends.friendship(db, ana.id, ben.id) is None
    assert "Ben" not in ana.section("Requests you sent")

    assert ana.ask(ben.record.loyalty_number) == SENT  # by loyalty number too
    assert ana.act(ben, "cancel") == 302
    assert "Ana" not in ben.page()

    ana.ask(ben.email)
    assert ben.act(ana, "accept") == 302
    assert "Ben" in ana.section("Your friends") and "Ana" in ben.section("Your friends")
    assert friends.are_mutual_friends(db, ana.id, ben.id)

    assert ana.act(ben, "remove") == 302
    assert "Ben" not in ana.page() and "Ana" not in ben.page()


def test_actions_need_the_other_in_the_right_list(people: dict[str, Member]) -> None:
    ana, ben, cleo = people["Ana"], people["Ben"], people["Cleo"]
    ana.ask(ben.email)
    assert ana.act(ben, "accept") == 404  # only the one asked can accept
    assert cleo.act(ben, "remove") == 404
    assert cleo.act(ana, "block") == 404  # no ids from outside your lists
    assert ana.act(ben, "unblock") == 404
    assert ana.act(ben, "befriend") == 404
    assert ana.browser.post("/friends/99999/cancel").status_code == 404


def test_blocking_ends_the_friendship_and_tells_the_blocked_nothing(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    ana.ask(ben.email)
    ben.act(ana, "accept")
    assert ana.act(ben, "block") == 302
    assert not friends.are_mutual_friends(db, ana.id, ben.id)
    assert "Ben" in ana.section("Blocked") and "Ben" not in ana.section("Your friends")
    assert "Ana" not in ben.page()

    # Ben's request reads as sent and waits like any other (Cleo's, say); Ana never sees it.
    assert ben.ask(ana.email) == SENT
    ben.ask(people["Cleo"].email)
    sent = re.findall(r"<li.*?</li>", ben.section("Requests you sent"), re.S)
    to_ana, to_cleo = sent
    assert to_ana.replace("Ana", "X").replace(f"/{ana.id}/", "/N/") == to_cleo.replace(
        "Cleo", "X"
    ).replace(f"/{people['Cleo'].id}/", "/N/")
    assert "Ben" not in ana.section("Requests for you")
    assert ana.act(ben, "accept") == 404
    assert not friends.are_mutual_friends(db, ana.id, ben.id)

    # Unblocking drops the hidden request instead of springing it on Ana.
    assert ana.act(ben, "unblock") == 302
    assert friends.friendship(db, ana.id, ben.id) is None
    assert "Ben" not in ana.page()


def test_a_blocked_member_cannot_befriend_even_if_asked_back(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    ana.ask(ben.email)
    assert ana.act(ben, "block") == 302  # from the "sent" list
    ben.ask(ana.email)
    assert not friends.are_mutual_friends(db, ana.id, ben.id)
    response = ana.browser.post("/friends/ask", data={"ask-identifier": ben.email})
    assert response.status_code == 400
    assert "You have blocked this member. Unblock them first." in response.get_data(as_text=True)


def test_request_answer_never_says_who_exists_or_who_blocked(
    people: dict[str, Member],
) -> None:
    ana, ben, cleo = people["Ana"], people["Ben"], people["Cleo"]
    cleo.ask(ben.email)
    ben.act(cleo, "accept")
    ben.browser.post("/friends/block", data={"block-identifier": ana.email})
    answers = {
        "unknown": ana.ask("nobody@example.com"),
        "blocked me": ana.ask(ben.email),
        "fresh": ana.ask(cleo.email),
        "already asked": ana.ask(cleo.email),
    }
    cleo.act(ana, "accept")
    answers["already friends"] = ana.ask(cleo.email)
    assert set(answers.values()) == {SENT}, answers


def test_block_by_identifier(people: dict[str, Member], db: sqlite_utils.Database) -> None:
    ana, ben = people["Ana"], people["Ben"]
    for identifier in ("nobody@example.com", ben.record.loyalty_number):
        response = ana.browser.post(
            "/friends/block", data={"block-identifier": identifier}, follow_redirects=True
        )
        assert notices(response.get_data(as_text=True)) == BLOCKED
    assert friends.blockers_between(db, ana.id, ben.id) == {ana.id}
    assert "Ben" in ana.section("Blocked")


@pytest.mark.parametrize(
    ("url", "identifier", "message"),
    [
        ("/friends/ask", "", "Enter their email or loyalty number."),
        ("/friends/ask", "not an email", "Enter a valid email address"),
        ("/friends/ask", "ana@example.com", "That is your own account."),
        ("/friends/block", "1234", "That loyalty number is not valid"),
        ("/friends/block", "ana@example.com", "That is your own account."),
    ],
)
def test_bad_identifier_is_a_400_with_a_sentence(
    people: dict[str, Member], url: str, identifier: str, message: str
) -> None:
    prefix = "ask" if url.endswith("ask") else "block"
    response = people["Ana"].browser.post(url, data={f"{prefix}-identifier": identifier})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_visibility_settings_are_saved(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    ana, ben, cleo = people["Ana"], people["Ben"], people["Cleo"]
    for friend in (ben, cleo):
        ana.ask(friend.email)
        friend.act(ana, "accept")
    response = ana.browser.post(
        "/friends/visibility",
        data={"seen-visibility": "chosen", "seen-chosen": [str(ben.id)], "seen-ghost": "y"},
    )
    assert response.status_code == 302
    assert friends.friend_settings(db, ana.id) == friends.FriendSettings(
        "chosen", True, frozenset({ben.id})
    )
    page = ana.page()
    assert re.search(r'<input checked id="seen-visibility-1"[^>]*value="chosen"', page)
    assert re.search(rf'<input checked id="seen-chosen-0"[^>]*value="{ben.id}"', page)

    outsider = members.create_member(db, display_name="Dan", password=PASSWORD, email="d@e.com")
    for bad in (
        {"seen-visibility": "everyone"},
        {"seen-visibility": "chosen", "seen-chosen": [str(outsider.id)]},
        {"seen-visibility": "chosen", "seen-chosen": ["x"]},
    ):
        response = ana.browser.post("/friends/visibility", data=bad)
        assert response.status_code == 400
        assert 'class="error"' in response.get_data(as_text=True)
    assert friends.friend_settings(db, ana.id).chosen == {ben.id}

    ana.browser.post("/friends/visibility", data={"seen-visibility": "nobody"})
    assert friends.friend_settings(db, ana.id) == friends.FriendSettings(
        "nobody", False, frozenset()
    )


def test_consent_hint_shows_until_friend_visibility_is_allowed(
    people: dict[str, Member],
) -> None:
    ana = people["Ana"]
    hint = "Friends see you only if you allow it on your account page."
    assert hint in ana.page()
    ana.browser.post("/consents", data={"wifi_terms": "y", "friend_visibility": "y"})
    assert hint not in ana.page()


def test_display_names_render_inert(
    app_no_csrf: Flask, db: sqlite_utils.Database, people: dict[str, Member]
) -> None:
    ana = people["Ana"]
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    evil = Member(app_no_csrf, db, name, email="evil@example.com")
    evil.ask(ana.email)
    page = ana.page()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert" in page
    response = ana.browser.post(f"/friends/{evil.id}/accept", follow_redirects=True)
    text = response.get_data(as_text=True)
    assert "<script>alert" not in text and "&lt;script&gt;alert" in text


@pytest.mark.parametrize("url", ["/friends", "/friends/ask", "/friends/1/accept"])
def test_signed_out_goes_to_sign_in(client: FlaskClient, url: str) -> None:
    response = client.post(url) if url != "/friends" else client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/signin")


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_every_post_needs_csrf(app: Flask, db: sqlite_utils.Database) -> None:
    ana = members.create_member(db, display_name="Ana", password=PASSWORD, email="a@e.com")
    ben = members.create_member(db, display_name="Ben", password=PASSWORD, email="b@e.com")
    friends.befriend(db, ben.id, ana.id)
    browser = app.test_client()
    token = csrf_token(browser.get("/signin").get_data(as_text=True))
    browser.post(
        "/signin", data={"identifier": "a@e.com", "password": PASSWORD, "csrf_token": token}
    )
    posts = [
        ("/friends/ask", {"ask-identifier": "b@e.com"}),
        ("/friends/block", {"block-identifier": "b@e.com"}),
        ("/friends/visibility", {"seen-visibility": "nobody"}),
        (f"/friends/{ben.id}/accept", {}),
        (f"/friends/{ben.id}/block", {}),
    ]
    for url, data in posts:
        response = browser.post(url, data={**data, "csrf_token": "forged"})
        assert response.status_code == 400, url
        assert "This form has expired" in response.get_data(as_text=True)
    assert friends.friendship(db, ana.id, ben.id) == (ben.id, "pending")
    assert friends.blockers_between(db, ana.id, ben.id) == frozenset()

    page = browser.get("/friends").get_data(as_text=True)
    tokens = re.findall(r'name="(?:[a-z]+-)?csrf_token" type="hidden" value="([^"]+)"', page)
    tokens += re.findall(r'name="csrf_token" value="([^"]+)"', page)
    assert tokens, "the page's forms carry tokens"
    response = browser.post(f"/friends/{ben.id}/accept", data={"csrf_token": tokens[0]})
    assert response.status_code == 302
    assert friends.are_mutual_friends(db, ana.id, ben.id)


def test_asking_is_rate_limited_per_ip(client: FlaskClient, auth: AuthActions) -> None:
    """Trying identifiers one after another to find accounts soon gets "too many attempts"."""
    auth.go_online()
    statuses = [
        client.post("/friends/ask", data={"ask-identifier": f"x{n}@example.com"}).status_code
        for n in range(40)
    ]
    assert 429 in statuses


def community_news(db: sqlite_utils.Database, member: Member) -> list[tuple[str, str]]:
    rows = db.conn.execute(
        "SELECT title, json_extract(data, '$.link') FROM notifications"
        " WHERE member_id = ? AND kind = 'community' ORDER BY id",
        [member.id],
    )
    return [(str(title), str(link)) for title, link in rows]


def test_requests_and_acceptance_are_announced_in_the_feed(
    people: dict[str, Member], db: sqlite_utils.Database
) -> None:
    """A new request reaches the other member's feed once; accepting tells the one who asked;
    a request to someone who blocked the asker is announced to nobody."""
    ana, ben, cleo = people["Ana"], people["Ben"], people["Cleo"]
    ana.ask(ben.email)
    ana.ask(ben.email)  # a repeat is not news
    assert community_news(db, ben) == [("Ana wants to be friends", "/friends")]
    ben.act(ana, "accept")
    assert community_news(db, ana) == [("Ben accepted your friend request", "/friends")]

    cleo.ask(ana.email)
    ana.ask(cleo.email)  # Cleo's request was waiting: asking back accepts it
    assert community_news(db, cleo)[-1] == ("Ana accepted your friend request", "/friends")

    ben.browser.post("/friends/block", data={"block-identifier": cleo.email})
    before = community_news(db, ben)
    assert cleo.ask(ben.email) == SENT
    assert community_news(db, ben) == before
    page = ben.browser.get("/store").get_data(as_text=True)
    assert "Ana wants to be friends" in page and 'href="/friends"' in page
