"""Board rules: who sees a board, items, comments and replies, reactions, news, shop in store."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlite_utils

from community import board_comments, boards, friends
from community.board_comments import add_comment, comment_threads, news_for
from community.boards import Board, BoardError, BoardNotFound
from community.screening import Limits, Refused
from instore import members
from instore.clock import to_iso, utcnow

# Not "new members" (who may post three times a minute): these tests post more than that. The
# posts are written an hour from now, so members created during the test are never "from the
# future" to screening.
LIMITS = Limits(new_member_days=0)
NOW = utcnow() + timedelta(hours=1)


def member(db: sqlite_utils.Database, name: str) -> int:
    return members.create_member(
        db, display_name=name, password="x" * 12, email=f"{name.lower()}@example.com"
    ).id


def product(
    db: sqlite_utils.Database, name: str, zone: str | None = None, active: bool = True
) -> int:
    cursor = db.conn.execute(
        """INSERT INTO products (sku, name, category, price_cents, zone, active, updated_at)
           VALUES (?, ?, 'tops', 1999, ?, ?, ?)""",
        (f"SKU-{name}", name, zone, int(active), to_iso(NOW)),
    )
    return int(cursor.lastrowid or 0)


def make_friends(db: sqlite_utils.Database, one: int, other: int) -> None:
    friends.befriend(db, one, other)
    friends.accept_friend(db, other, one)


def new_board(
    db: sqlite_utils.Database, owner: int, audience: str = "public", title: str = "Summer"
) -> Board:
    board_id = boards.create_board(db, owner, title, "", audience, NOW, LIMITS)
    found = boards.get_board(db, board_id)
    assert found is not None
    return found


def set_status(db: sqlite_utils.Database, table: str, item_id: int, status: str) -> None:
    assert table in ("boards", "board_comments")
    db.conn.execute(f"UPDATE {table} SET status = ? WHERE id = ?", (status, item_id))  # noqa: S608


def watch(db: sqlite_utils.Database, word: str, action: str) -> None:
    db.conn.execute(
        "INSERT INTO watched_words (word, action, created_at) VALUES (?, ?, ?)",
        (word, action, to_iso(NOW)),
    )


@pytest.fixture
def people(db: sqlite_utils.Database) -> dict[str, int]:
    """The owner, a mutual friend, a stranger, a friend the owner blocked, a friend who blocked
    the owner, and someone who only asked to be friends."""
    ids = {name: member(db, name) for name in ("Owner", "Friend", "Stranger", "Blocked", "Blocker")}
    ids["Asked"] = member(db, "Asked")
    for name in ("Friend", "Blocked", "Blocker"):
        make_friends(db, ids["Owner"], ids[name])
    friends.block(db, ids["Owner"], ids["Blocked"])
    friends.block(db, ids["Blocker"], ids["Owner"])
    friends.befriend(db, ids["Asked"], ids["Owner"])
    return ids


VIEWERS = ("Owner", "Friend", "Stranger", "Blocked", "Blocker", "Asked", None)
SEES = {
    "private": {"Owner"},
    "friends": {"Owner", "Friend"},
    "public": {"Owner", "Friend", "Stranger", "Asked"},
}


@pytest.mark.parametrize("audience", ["private", "friends", "public"])
@pytest.mark.parametrize("viewer", VIEWERS)
def test_visibility_matrix(
    db: sqlite_utils.Database, people: dict[str, int], audience: str, viewer: str | None
) -> None:
    board = new_board(db, people["Owner"], audience)
    viewer_id = people[viewer] if viewer else None
    expected = viewer in SEES[audience]
    assert boards.can_view(db, board, viewer_id) is expected
    if not expected:
        with pytest.raises(BoardNotFound):
            boards.visible_board(db, board.id, viewer_id)


@pytest.mark.parametrize("status", ["held", "hidden", "rejected"])
@pytest.mark.parametrize("viewer", VIEWERS)
def test_boards_not_visible_show_only_to_their_owner(
    db: sqlite_utils.Database, people: dict[str, int], status: str, viewer: str | None
) -> None:
    board = new_board(db, people["Owner"], "public")
    set_status(db, "boards", board.id, status)
    board = boards.get_board(db, board.id)  # type: ignore[assignment]
    assert boards.can_view(db, board, people[viewer] if viewer else None) is (viewer == "Owner")


def test_lists_follow_audience_blocks_and_status(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    owner, friend = people["Owner"], people["Friend"]
    public = new_board(db, owner, "public", "Public one")
    shared = new_board(db, owner, "friends", "For friends")
    new_board(db, owner, "private", "Mine only")
    held = new_board(db, owner, "public", "Held one")
    set_status(db, "boards", held.id, "held")

    assert [b.title for b in boards.my_boards(db, owner)] == [
        "Held one",
        "Mine only",
        "For friends",
        "Public one",
    ]
    assert {b.id for b in boards.friends_boards(db, friend)} == {public.id, shared.id}
    assert boards.friends_boards(db, people["Blocked"]) == []
    assert boards.friends_boards(db, people["Blocker"]) == []
    assert [b.id for b in boards.public_boards(db, people["Stranger"]).boards] == [public.id]
    assert boards.public_boards(db, people["Blocked"]).boards == []
    assert boards.public_boards(db, owner).boards == []  # one's own are under "mine"


def test_public_feed_is_newest_first_and_paged(db: sqlite_utils.Database) -> None:
    owner, reader = member(db, "Ana"), member(db, "Ben")
    ids = [
        boards.create_board(
            db, owner, f"Board {n}", "", "public", NOW + timedelta(minutes=n), LIMITS
        )
        for n in range(5)
    ]
    first = boards.public_boards(db, reader, page=1, page_size=2)
    assert [b.id for b in first.boards] == [ids[4], ids[3]] and first.has_more
    last = boards.public_boards(db, reader, page=3, page_size=2)
    assert [b.id for b in last.boards] == [ids[0]] and not last.has_more


# -- the owner's changes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "description", "audience", "says"),
    [
        ("", "", "public", "title"),
        ("   ", "", "public", "title"),
        ("x" * (boards.MAX_TITLE + 1), "", "public", "title"),
        ("Fine", "x" * (boards.MAX_DESCRIPTION + 1), "public", "description"),
        ("Fine", "", "everyone", "see the board"),
    ],
)
def test_bad_boards_are_refused_and_nothing_stored(
    db: sqlite_utils.Database, title: str, description: str, audience: str, says: str
) -> None:
    owner = member(db, "Ana")
    with pytest.raises(BoardError, match=says):
        boards.create_board(db, owner, title, description, audience, NOW, LIMITS)
    assert db.conn.execute("SELECT COUNT(*) FROM boards").fetchone()[0] == 0


def test_only_the_owner_changes_a_board(db: sqlite_utils.Database) -> None:
    owner, other = member(db, "Ana"), member(db, "Ben")
    board = new_board(db, owner)
    with pytest.raises(BoardNotFound):
        boards.edit_board(db, board.id, other, "Mine now", "", "public", NOW, LIMITS)
    with pytest.raises(BoardNotFound):
        boards.delete_board(db, board.id, other)
    with pytest.raises(BoardNotFound):
        boards.add_item(db, board.id, other, product(db, "Scarf"), "", None, NOW, LIMITS)
    assert boards.get_board(db, board.id) == board


def test_screening_censors_holds_and_blocks(db: sqlite_utils.Database) -> None:
    owner = member(db, "Ana")
    watch(db, "darn", "censor")
    watch(db, "casino", "require_approval")
    watch(db, "forbidden", "block")
    board = new_board(db, owner, title="A darn fine coat")
    assert board.title == "A ■■■ fine coat" and board.status == "visible"
    with pytest.raises(Refused, match="forbidden"):
        boards.create_board(db, owner, "forbidden fruit", "", "public", NOW, LIMITS)
    assert (
        boards.edit_board(db, board.id, owner, "Casino night", "", "public", NOW, LIMITS) == "held"
    )
    flags = db.conn.execute(
        "SELECT item_kind, item_id, reason FROM flags WHERE flagger_id IS NULL"
    ).fetchall()
    assert ("board", board.id, "watched_word") in flags


def test_edit_returns_a_hidden_board_to_the_queue(db: sqlite_utils.Database) -> None:
    owner = member(db, "Ana")
    board = new_board(db, owner)
    set_status(db, "boards", board.id, "hidden")
    assert boards.edit_board(db, board.id, owner, "Better", "", "public", NOW, LIMITS) == "held"
    assert boards.edit_board(db, board.id, owner, "Better", "", "public", NOW, LIMITS) == "held"
    set_status(db, "boards", board.id, "visible")
    assert boards.edit_board(db, board.id, owner, "Fine", "", "friends", NOW, LIMITS) == "visible"


def test_items_add_move_remove(db: sqlite_utils.Database) -> None:
    owner = member(db, "Ana")
    board = new_board(db, owner)
    scarf, boots = product(db, "Scarf"), product(db, "Boots")
    first = boards.add_item(db, board.id, owner, scarf, "  warm  ", None, NOW, LIMITS)
    second = boards.add_item(db, board.id, owner, boots, "", None, NOW, LIMITS)
    third = boards.add_item(db, board.id, owner, None, "my own", "boards/x.jpg", NOW, LIMITS)
    items = boards.board_items(db, board.id)
    assert [i.id for i in items] == [first, second, third]
    assert items[0].note == "warm" and items[0].product and items[0].product.name == "Scarf"
    assert items[2].product is None and items[2].photo_path == "boards/x.jpg"

    boards.move_item(db, board.id, owner, third, -1)
    boards.move_item(db, board.id, owner, first, -5)  # already first: stays
    assert [i.id for i in boards.board_items(db, board.id)] == [first, third, second]
    boards.move_item(db, board.id, owner, first, 1)
    assert [i.id for i in boards.board_items(db, board.id)] == [third, first, second]

    assert boards.remove_item(db, board.id, owner, third) == "boards/x.jpg"
    assert boards.remove_item(db, board.id, owner, first) is None
    with pytest.raises(BoardNotFound):
        boards.remove_item(db, board.id, owner, first)
    other = new_board(db, owner, title="Other")
    with pytest.raises(BoardNotFound):
        boards.move_item(db, other.id, owner, second, 1)


def test_bad_items_are_refused(db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = member(db, "Ana")
    board = new_board(db, owner)
    gone = product(db, "Old hat", active=False)
    with pytest.raises(BoardError, match="not in the catalogue"):
        boards.add_item(db, board.id, owner, 9999, "", None, NOW, LIMITS)
    with pytest.raises(BoardError, match="not in the catalogue"):
        boards.add_item(db, board.id, owner, gone, "", None, NOW, LIMITS)
    with pytest.raises(BoardError, match="or add a photo"):
        boards.add_item(db, board.id, owner, None, "just words", None, NOW, LIMITS)
    with pytest.raises(BoardError, match="note"):
        boards.add_item(db, board.id, owner, product(db, "Hat"), "x" * 301, None, NOW, LIMITS)
    monkeypatch.setattr(boards, "MAX_ITEMS", 2)
    for name in ("A", "B"):
        boards.add_item(db, board.id, owner, product(db, name), "", None, NOW, LIMITS)
    with pytest.raises(BoardError, match="at most 2 items"):
        boards.add_item(db, board.id, owner, product(db, "C"), "", None, NOW, LIMITS)
    assert len(boards.board_items(db, board.id)) == 2


def test_a_held_note_holds_the_board(db: sqlite_utils.Database) -> None:
    owner = member(db, "Ana")
    board = new_board(db, owner)
    watch(db, "casino", "require_approval")
    watch(db, "darn", "censor")
    boards.add_item(db, board.id, owner, product(db, "Hat"), "darn nice", None, NOW, LIMITS)
    assert boards.board_items(db, board.id)[0].note == "■■■ nice"
    assert boards.get_board(db, board.id).status == "visible"  # type: ignore[union-attr]
    boards.add_item(db, board.id, owner, product(db, "Cap"), "for the casino", None, NOW, LIMITS)
    assert boards.get_board(db, board.id).status == "held"  # type: ignore[union-attr]


def test_delete_board_takes_everything_and_returns_the_photos(db: sqlite_utils.Database) -> None:
    owner, friend = member(db, "Ana"), member(db, "Ben")
    board = new_board(db, owner)
    boards.add_item(db, board.id, owner, None, "", "boards/a.jpg", NOW, LIMITS)
    boards.add_item(db, board.id, owner, product(db, "Hat"), "", None, NOW, LIMITS)
    comment = add_comment(db, board.id, friend, "Nice", NOW, LIMITS)
    board_comments.toggle_reaction(db, board.id, friend, "love", NOW)
    db.conn.execute(
        """INSERT INTO flags (item_kind, item_id, flagger_id, reason, created_at)
           VALUES ('comment', ?, ?, 'spam', ?)""",
        (comment.id, owner, to_iso(NOW)),
    )
    assert boards.delete_board(db, board.id, owner) == ["boards/a.jpg"]
    for table in ("boards", "board_items", "board_comments", "board_reactions", "flags"):
        assert db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0  # noqa: S608


# -- comments ------------------------------------------------------------------------------------


def test_comments_and_one_level_of_replies(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    owner, friend = people["Owner"], people["Friend"]
    board = new_board(db, owner, "friends")
    top = add_comment(db, board.id, friend, "  Love the boots  ", NOW, LIMITS)
    assert top.body == "Love the boots" and top.status == "visible"
    reply = add_comment(db, board.id, owner, "Thanks!", NOW, LIMITS, parent_id=top.id)
    with pytest.raises(BoardError, match="not to a reply"):
        add_comment(db, board.id, friend, "Deeper", NOW, LIMITS, parent_id=reply.id)
    other = new_board(db, owner, "public", "Other")
    with pytest.raises(BoardNotFound):
        add_comment(db, other.id, friend, "Wrong board", NOW, LIMITS, parent_id=top.id)
    with pytest.raises(BoardNotFound):
        add_comment(db, board.id, friend, "No parent", NOW, LIMITS, parent_id=99999)
    threads = comment_threads(db, board, friend)
    assert [(t.comment.id if t.comment else None, [r.id for r in t.replies]) for t in threads] == [
        (top.id, [reply.id])
    ]


@pytest.mark.parametrize("body", ["", "   ", "x" * (board_comments.MAX_COMMENT + 1)])
def test_bad_comments_are_refused(db: sqlite_utils.Database, body: str) -> None:
    owner = member(db, "Ana")
    board = new_board(db, owner)
    with pytest.raises(BoardError):
        add_comment(db, board.id, owner, body, NOW, LIMITS)
    assert db.conn.execute("SELECT COUNT(*) FROM board_comments").fetchone()[0] == 0


@pytest.mark.parametrize("who", ["Blocked", "Blocker", "Stranger", "Asked"])
def test_who_may_not_see_may_not_comment_or_react(
    db: sqlite_utils.Database, people: dict[str, int], who: str
) -> None:
    board = new_board(db, people["Owner"], "friends")
    with pytest.raises(BoardNotFound):
        add_comment(db, board.id, people[who], "Hello", NOW, LIMITS)
    with pytest.raises(BoardNotFound):
        board_comments.toggle_reaction(db, board.id, people[who], "like", NOW)


def test_held_comments_show_only_to_their_author(db: sqlite_utils.Database) -> None:
    owner, ana, ben = member(db, "Owner"), member(db, "Ana"), member(db, "Ben")
    board = new_board(db, owner)
    watch(db, "casino", "require_approval")
    held = add_comment(db, board.id, ana, "Casino tonight?", NOW, LIMITS)
    assert held.status == "held"
    assert [t.comment for t in comment_threads(db, board, ana)] == [held]
    assert comment_threads(db, board, owner) == []
    with pytest.raises(BoardNotFound):  # nobody may reply to what they cannot see
        add_comment(db, board.id, ben, "Sure", NOW, LIMITS, parent_id=held.id)


def test_replies_under_a_comment_no_longer_shown_stay_readable(db: sqlite_utils.Database) -> None:
    owner, ana, ben = member(db, "Owner"), member(db, "Ana"), member(db, "Ben")
    board = new_board(db, owner)
    top = add_comment(db, board.id, ana, "First", NOW, LIMITS)
    reply = add_comment(db, board.id, ben, "Second", NOW, LIMITS, parent_id=top.id)
    set_status(db, "board_comments", top.id, "hidden")
    threads = comment_threads(db, board, owner)
    assert threads[0].comment is None and threads[0].replies == [reply]


def test_a_block_hides_comments_both_ways(db: sqlite_utils.Database) -> None:
    owner, ana, ben = member(db, "Owner"), member(db, "Ana"), member(db, "Ben")
    board = new_board(db, owner)
    add_comment(db, board.id, ana, "From Ana", NOW, LIMITS)
    from_ben = add_comment(db, board.id, ben, "From Ben", NOW, LIMITS)
    friends.block(db, ana, ben)
    assert [t.comment.body for t in comment_threads(db, board, ana) if t.comment] == ["From Ana"]
    assert [t.comment.body for t in comment_threads(db, board, ben) if t.comment] == ["From Ben"]
    with pytest.raises(BoardNotFound):
        add_comment(db, board.id, ana, "Reply", NOW, LIMITS, parent_id=from_ben.id)


def test_editing_returns_a_hidden_comment_to_the_queue(db: sqlite_utils.Database) -> None:
    owner, ana = member(db, "Owner"), member(db, "Ana")
    board = new_board(db, owner)
    comment = add_comment(db, board.id, ana, "First take", NOW, LIMITS)
    edited = board_comments.edit_comment(db, board.id, comment.id, ana, "Second", NOW, LIMITS)
    assert (edited.body, edited.status, edited.edited_at) == ("Second", "visible", to_iso(NOW))
    set_status(db, "board_comments", comment.id, "hidden")
    again = board_comments.edit_comment(db, board.id, comment.id, ana, "Third", NOW, LIMITS)
    assert again.status == "held"
    with pytest.raises(BoardNotFound):  # not the author, not even the board's owner
        board_comments.edit_comment(db, board.id, comment.id, owner, "Mine", NOW, LIMITS)


def test_who_may_delete_a_comment(db: sqlite_utils.Database) -> None:
    owner, ana, ben = member(db, "Owner"), member(db, "Ana"), member(db, "Ben")
    board = new_board(db, owner)
    by_ana = add_comment(db, board.id, ana, "Ana's", NOW, LIMITS)
    by_ben = add_comment(db, board.id, ben, "Ben's", NOW, LIMITS)
    reply = add_comment(db, board.id, ben, "Ben replies", NOW, LIMITS, parent_id=by_ana.id)
    with pytest.raises(BoardNotFound):
        board_comments.delete_comment(db, board.id, by_ana.id, ben)
    board_comments.delete_comment(db, board.id, by_ben.id, ben)  # the author
    board_comments.delete_comment(db, board.id, by_ana.id, owner)  # the board's owner
    for gone in (by_ana, by_ben, reply):  # replies go with their comment
        assert board_comments.get_comment(db, gone.id) is None


def test_news_goes_to_the_owner_or_the_replied_to_author(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    owner, friend = people["Owner"], people["Friend"]
    board = new_board(db, owner, "public")
    top = add_comment(db, board.id, friend, "Nice", NOW, LIMITS)
    news = news_for(db, top.id)
    assert news is not None and (news.member_id, news.what) == (owner, "comment")
    reply = add_comment(db, board.id, owner, "Thanks", NOW, LIMITS, parent_id=top.id)
    news = news_for(db, reply.id)
    assert news is not None and (news.member_id, news.what) == (friend, "reply")
    own = add_comment(db, board.id, owner, "My own words", NOW, LIMITS)
    assert news_for(db, own.id) is None
    self_reply = add_comment(db, board.id, friend, "And more", NOW, LIMITS, parent_id=top.id)
    assert news_for(db, self_reply.id) is None
    stranger = add_comment(db, board.id, people["Stranger"], "Hi", NOW, LIMITS)
    friends.block(db, owner, people["Stranger"])
    assert news_for(db, stranger.id) is None
    watch(db, "casino", "require_approval")
    held = add_comment(db, board.id, friend, "Casino?", NOW, LIMITS)
    assert news_for(db, held.id) is None
    set_status(db, "board_comments", held.id, "visible")  # a moderator approved it
    assert news_for(db, held.id) is not None


def test_no_reply_news_to_someone_who_can_no_longer_open_the_board(
    db: sqlite_utils.Database,
) -> None:
    owner, ana = member(db, "Owner"), member(db, "Ana")
    make_friends(db, owner, ana)
    board = new_board(db, owner, "friends")
    top = add_comment(db, board.id, ana, "Nice", NOW, LIMITS)
    friends.unfriend(db, owner, ana)
    reply = add_comment(db, board.id, owner, "Thanks", NOW, LIMITS, parent_id=top.id)
    assert news_for(db, reply.id) is None


# -- reactions -----------------------------------------------------------------------------------


def test_reactions_toggle_and_only_the_owner_sees_who(db: sqlite_utils.Database) -> None:
    owner, ana, ben = member(db, "Owner"), member(db, "Ana"), member(db, "Ben")
    board = new_board(db, owner)
    assert board_comments.toggle_reaction(db, board.id, ana, "love", NOW) is True
    assert board_comments.toggle_reaction(db, board.id, ben, "love", NOW) is True
    assert board_comments.toggle_reaction(db, board.id, ben, "want", NOW) is True
    assert board_comments.toggle_reaction(db, board.id, ben, "want", NOW) is False
    assert board_comments.reaction_counts(db, board) == {"like": 0, "love": 2, "want": 0}
    assert board_comments.my_reactions(db, board.id, ben) == {"love"}
    assert board_comments.reactors(db, board, owner)["love"] == ["Ana", "Ben"]
    assert board_comments.reactors(db, board, ana) == {}
    friends.block(db, owner, ben)
    assert board_comments.reaction_counts(db, board)["love"] == 1
    assert board_comments.reactors(db, board, owner)["love"] == ["Ana"]
    with pytest.raises(BoardError):
        board_comments.toggle_reaction(db, board.id, ana, "hate", NOW)


# -- shop in store -------------------------------------------------------------------------------


def zone(db: sqlite_utils.Database, name: str) -> int:
    cursor = db.conn.execute(
        "INSERT INTO zones (name, polygon, created_at) VALUES (?, '[[0,0],[1,0],[1,1]]', ?)",
        (name, to_iso(NOW)),
    )
    return int(cursor.lastrowid or 0)


def test_shop_in_store_groups_by_zone_with_the_current_zone_first(
    db: sqlite_utils.Database,
) -> None:
    owner, ana = member(db, "Owner"), member(db, "Ana")
    board = new_board(db, owner)
    for name, where in [
        ("Boots", "Shoes"),
        ("Bag", "Accessories"),
        ("Sandals", "shoes"),
        ("Mystery", None),
        ("Scarf", "Accessories"),
    ]:
        boards.add_item(db, board.id, owner, product(db, name, where), "", None, NOW, LIMITS)
    boards.add_item(db, board.id, owner, product(db, "Old", "Shoes"), "", None, NOW, LIMITS)
    db.conn.execute("UPDATE products SET active = 0 WHERE name = 'Old'")  # withdrawn since
    boards.add_item(db, board.id, owner, None, "photo only", "boards/p.jpg", NOW, LIMITS)

    def layout(plan: boards.ShopPlan) -> list[tuple[str | None, list[str], bool]]:
        return [
            (g.zone, [i.product.name for i in g.items if i.product], g.here) for g in plan.groups
        ]

    away = boards.shop_in_store(db, board, ana)
    assert away.current_zone is None
    assert layout(away) == [
        ("Accessories", ["Bag", "Scarf"], False),
        ("Shoes", ["Boots", "Sandals"], False),
        (None, ["Mystery"], False),
    ]
    shoes = zone(db, "Shoes")
    zone(db, "Accessories")
    db.conn.execute(
        """INSERT INTO presence_state (device, member_id, zone_id, entered_at, last_seen_at)
           VALUES (?, ?, ?, ?, ?)""",
        (f"m:{ana}", ana, shoes, to_iso(NOW), to_iso(NOW)),
    )
    here = boards.shop_in_store(db, board, ana)
    assert here.current_zone == "Shoes"
    assert layout(here)[0] == ("Shoes", ["Boots", "Sandals"], True)
    assert layout(here)[-1] == (None, ["Mystery"], False)
    assert boards.shop_in_store(db, board, owner).current_zone is None
