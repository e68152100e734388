"""Flags, hiding, the queue and decisions on items (``community.moderation``), the watched words
list (``community.watched_words``), and the pipeline end to end at the library level: a watched
word holds a comment until a moderator approves it; members' flags hide one, its author edits it,
it waits as held, and a moderator restores it.
"""

from __future__ import annotations

import pytest
import sqlite_utils

from community import friends, moderation, moderation_queue, watched_words
from community.content import HELD, HIDDEN, REJECTED, VISIBLE
from instore.clock import utcnow
from tests.moderation_helpers import (
    actions,
    author_edits,
    make_board,
    make_comment,
    make_member,
    post_comment,
    status_of,
)

THRESHOLD = 3


@pytest.fixture
def people(db: sqlite_utils.Database) -> dict[str, int]:
    """An author, four other members and a staff moderator."""
    names = ("Ana", "Ben", "Cam", "Dee", "Eve")
    found = {name: make_member(db, name).id for name in names}
    found["Sam"] = make_member(db, "Sam", role="staff").id
    return found


def flag(
    db: sqlite_utils.Database, who: int, kind: str, item_id: int, reason: str = "spam"
) -> bool:
    outcome = moderation.flag_item(db, who, kind, item_id, reason, "", utcnow(), THRESHOLD)
    return outcome.hidden


def test_members_flags_hide_an_item_at_the_threshold(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    board = make_board(db, people["Ana"])
    comment = make_comment(db, board, people["Ana"], "Buy cheap watches")
    assert flag(db, people["Ben"], "comment", comment) is False
    assert flag(db, people["Cam"], "comment", comment, "offensive") is False
    assert status_of(db, "comment", comment) == VISIBLE
    assert flag(db, people["Dee"], "comment", comment) is True
    assert status_of(db, "comment", comment) == HIDDEN
    # Once hidden, nobody else sees it, so nobody else can flag it.
    with pytest.raises(moderation.ItemNotFound):
        flag(db, people["Eve"], "comment", comment)


def test_system_flags_queue_an_item_but_never_count_towards_hiding(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    watched_words.add_word(db, "bargain", "flag", people["Sam"], utcnow())
    board = make_board(db, people["Ana"])
    comment = post_comment(db, board, people["Ana"], "A bargain, a real bargain")
    assert status_of(db, "comment", comment) == VISIBLE
    entry = moderation_queue.queue_entry(db, "comment", comment)
    assert entry is not None and [f.reason for f in entry.system_flags] == ["watched_word"]
    assert moderation.member_flag_count(db, "comment", comment) == 0
    flag(db, people["Ben"], "comment", comment)
    flag(db, people["Cam"], "comment", comment)
    assert status_of(db, "comment", comment) == VISIBLE  # 2 members + 1 system < 3


def test_a_member_flags_an_item_once(db: sqlite_utils.Database, people: dict[str, int]) -> None:
    comment = make_comment(db, make_board(db, people["Ana"]), people["Ana"])
    flag(db, people["Ben"], "comment", comment)
    with pytest.raises(moderation.AlreadyFlagged):
        flag(db, people["Ben"], "comment", comment, "other")
    assert moderation.member_flag_count(db, "comment", comment) == 1


def test_what_a_member_cannot_flag(db: sqlite_utils.Database, people: dict[str, int]) -> None:
    ana, ben = people["Ana"], people["Ben"]
    public = make_board(db, ana)
    private = make_board(db, ana, audience="private")
    for_friends = make_board(db, ana, audience="friends")
    held = make_comment(db, public, ana, status=HELD)
    cases = [
        (ana, "board", public),  # their own
        (ben, "board", private),
        (ben, "board", for_friends),  # not a friend
        (ben, "comment", held),  # not visible
        (ben, "board", 999),
        (ben, "poll", 1),  # not a kind of item
        (ben, "comment", make_comment(db, private, ana)),  # on a board they cannot see
    ]
    for who, kind, item_id in cases:
        with pytest.raises(moderation.ItemNotFound):
            flag(db, who, kind, item_id)
    friends.befriend(db, ben, ana)
    friends.accept_friend(db, ana, ben)
    flag(db, ben, "board", for_friends)
    assert moderation.member_flag_count(db, "board", for_friends) == 1


def test_blocks_hide_items_from_flagging_both_ways(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, ben, cam = people["Ana"], people["Ben"], people["Cam"]
    board = make_board(db, ana)
    friends.block(db, ana, ben)
    with pytest.raises(moderation.ItemNotFound):
        flag(db, ben, "board", board)
    bens = make_board(db, ben)
    with pytest.raises(moderation.ItemNotFound):
        flag(db, ana, "board", bens)
    # A comment by someone else on a board whose owner blocked the flagger is out of sight too.
    comment = make_comment(db, board, cam)
    with pytest.raises(moderation.ItemNotFound):
        flag(db, ben, "comment", comment)


@pytest.mark.parametrize(
    ("reason", "note", "sentence"),
    [
        ("rude", "", "Choose why you are reporting it."),
        ("spam", "x" * (moderation.MAX_NOTE + 1), "Keep the note under 500 characters."),
    ],
)
def test_bad_flags_are_refused_and_nothing_is_stored(
    db: sqlite_utils.Database, people: dict[str, int], reason: str, note: str, sentence: str
) -> None:
    comment = make_comment(db, make_board(db, people["Ana"]), people["Ana"])
    with pytest.raises(moderation.ModerationError, match=sentence):
        moderation.flag_item(db, people["Ben"], "comment", comment, reason, note, utcnow(), 3)
    assert db.conn.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == 0


def test_flagging_is_rate_limited_per_member(
    db: sqlite_utils.Database, people: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(moderation, "FLAGS_PER_HOUR", 2)
    board = make_board(db, people["Ana"])
    comments = [make_comment(db, board, people["Ana"], f"Comment {n}") for n in range(3)]
    flag(db, people["Ben"], "comment", comments[0])
    flag(db, people["Ben"], "comment", comments[1])
    with pytest.raises(moderation.TooManyFlags):
        flag(db, people["Ben"], "comment", comments[2])
    flag(db, people["Cam"], "comment", comments[2])  # the limit is per member


def test_the_queue_holds_held_hidden_and_flagged_items_oldest_first(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    board = make_board(db, people["Ana"])
    quiet = make_comment(db, board, people["Ana"], "Nothing wrong")
    held = make_comment(db, board, people["Ana"], "Held one", status=HELD)
    flagged = make_comment(db, board, people["Ana"], "Flagged once")
    rejected = make_comment(db, board, people["Ana"], "Gone", status=REJECTED)
    flag(db, people["Ben"], "comment", flagged)
    keys = [(e.item.kind, e.item.id) for e in moderation_queue.queue(db)]
    assert ("comment", held) in keys and ("comment", flagged) in keys
    assert ("comment", quiet) not in keys and ("comment", rejected) not in keys
    entry = next(e for e in moderation_queue.queue(db) if e.item.id == flagged)
    assert entry.item.author_name == "Ana" and entry.item.texts == {"body": "Flagged once"}
    assert [f.flagger_name for f in entry.member_flags] == ["Ben"]
    assert entry.reason_counts() == {"spam": 1}
    # The held comment was written earlier than the flag was filed: it has waited longest.
    assert keys.index(("comment", held)) < keys.index(("comment", flagged))


def test_approve_reject_and_edit_each_record_the_moderator_and_reason(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    sam, board = people["Sam"], make_board(db, people["Ana"])
    one = make_comment(db, board, people["Ana"], "One", status=HELD)
    two = make_comment(db, board, people["Ana"], "Two", status=HIDDEN)
    three = make_comment(db, board, people["Ana"], "Three damn it", status=HELD)
    moderation.approve(db, sam, "comment", one, "Fine", utcnow())
    moderation.reject(db, sam, "comment", two, "Spam link", utcnow())
    moderation.edit_and_approve(db, sam, "comment", three, {"body": "Three"}, "Language", utcnow())
    assert [status_of(db, "comment", i) for i in (one, two, three)] == [
        VISIBLE,
        REJECTED,
        VISIBLE,
    ]
    rows = actions(db)
    assert [(r["action"], r["moderator_id"], r["reason"], r["member_id"]) for r in rows] == [
        ("approve", sam, "Fine", people["Ana"]),
        ("reject", sam, "Spam link", people["Ana"]),
        ("edit", sam, "Language", people["Ana"]),
    ]
    assert rows[2]["detail"]["original"] == {"body": "Three damn it"}
    assert rows[2]["detail"]["edited"] == {"body": "Three"}
    body = db.conn.execute("SELECT body FROM board_comments WHERE id = ?", (three,)).fetchone()
    assert body[0] == "Three"


def test_decisions_refuse_what_does_not_make_sense(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    sam, board = people["Sam"], make_board(db, people["Ana"])
    held = make_comment(db, board, people["Ana"], "Held", status=HELD)
    with pytest.raises(moderation.ModerationError, match="Give a reason"):
        moderation.approve(db, sam, "comment", held, "   ", utcnow())
    with pytest.raises(moderation.ModerationError, match="under 500"):
        moderation.approve(db, sam, "comment", held, "x" * 501, utcnow())
    moderation.approve(db, sam, "comment", held, "Fine", utcnow())
    with pytest.raises(moderation.AlreadyDecided):
        moderation.approve(db, sam, "comment", held, "Fine again", utcnow())
    own = make_comment(db, board, sam, "Staff wrote this", status=HELD)
    with pytest.raises(moderation.ModerationError, match="another moderator"):
        moderation.approve(db, sam, "comment", own, "Mine", utcnow())
    with pytest.raises(moderation.ModerationError, match="unchanged"):
        moderation.edit_and_approve(db, sam, "comment", held, {"body": "Held"}, "x", utcnow())
    with pytest.raises(moderation.ItemNotFound):
        moderation.reject(db, sam, "comment", 999, "Gone", utcnow())
    assert [r["action"] for r in actions(db)] == ["approve"]


def test_watched_word_holds_a_comment_until_a_moderator_approves_it(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    watched_words.add_word(db, "Free  Money", "require_approval", people["Sam"], utcnow())
    board = make_board(db, people["Ana"])
    comment = post_comment(db, board, people["Ana"], "Get FREE money here")
    assert status_of(db, "comment", comment) == HELD
    entry = moderation_queue.queue_entry(db, "comment", comment)
    assert entry is not None
    assert [(f.reason, f.note) for f in entry.flags] == [
        ("watched_word", "needs approval: free money")
    ]
    moderation.approve(db, people["Sam"], "comment", comment, "Allowed this once", utcnow())
    assert status_of(db, "comment", comment) == VISIBLE
    assert moderation_queue.queue_entry(db, "comment", comment) is None
    resolutions = db.conn.execute("SELECT resolution FROM flags").fetchall()
    assert resolutions == [("approve",)]


def test_flagged_hidden_edited_then_restored(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    board = make_board(db, people["Ana"])
    comment = make_comment(db, board, people["Ana"], "You all look silly")
    for who in ("Ben", "Cam", "Dee"):
        flag(db, people[who], "comment", comment, "harassment")
    assert status_of(db, "comment", comment) == HIDDEN
    # The author sees it and edits it: back to the queue as held, the flags still open.
    assert author_edits(db, "comment", comment, {"body": "You all look great"}) == HELD
    entry = moderation_queue.queue_entry(db, "comment", comment)
    assert entry is not None and len(entry.member_flags) == 3
    moderation.approve(db, people["Sam"], "comment", comment, "Edited, fine now", utcnow())
    assert status_of(db, "comment", comment) == VISIBLE
    assert moderation.member_flag_count(db, "comment", comment) == 0
    assert moderation_queue.queue(db) == []


def test_every_kind_of_item_is_moderated_the_same_way(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, sam = people["Ana"], people["Sam"]
    now = "2024-01-01T00:00:00Z"
    db.conn.execute(
        "INSERT INTO products (id, sku, name, category, updated_at)"
        " VALUES (1, 'S1', 'Hat', 'hats', ?)",
        (now,),
    )
    db.conn.execute(
        "INSERT INTO product_reviews (product_id, author_id, rating, body, status, created_at)"
        " VALUES (1, ?, 4, 'Nice hat', 'held', ?)",
        (ana, now),
    )
    db.conn.execute(
        "INSERT INTO suggestions (author_id, body, status, created_at)"
        " VALUES (?, 'Open late', 'held', ?)",
        (ana, now),
    )
    db.conn.execute(
        "INSERT INTO member_profiles (member_id, bio, status, updated_at)"
        " VALUES (?, 'Hi', 'held', ?)",
        (ana, now),
    )
    board = make_board(db, ana, status=HELD)
    db.conn.commit()
    kinds = {(e.item.kind, e.item.id) for e in moderation_queue.queue(db)}
    assert kinds == {("review", 1), ("suggestion", 1), ("profile", ana), ("board", board)}
    for kind, item_id in sorted(kinds):
        moderation.approve(db, sam, kind, item_id, "Fine", utcnow())
        assert status_of(db, kind, item_id) == VISIBLE
    edited = moderation.edit_and_approve(
        db, sam, "board", board, {"title": "New title"}, "Tidy", utcnow()
    )
    assert edited.item.texts == {"title": "Summer outfit", "description": ""}


# -- watched words -------------------------------------------------------------------------------


def test_watched_words_are_lower_cased_single_spaced_and_unique(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    word_id = watched_words.add_word(db, "  Cheap   Pills ", "block", people["Sam"], utcnow())
    assert [(w.word, w.action) for w in watched_words.list_words(db)] == [("cheap pills", "block")]
    with pytest.raises(watched_words.WatchedWordError, match="already watched"):
        watched_words.add_word(db, "CHEAP PILLS", "censor", people["Sam"], utcnow())
    removed = watched_words.remove_word(db, word_id)
    assert removed is not None and removed.word == "cheap pills"
    assert watched_words.remove_word(db, word_id) is None
    assert watched_words.list_words(db) == []


@pytest.mark.parametrize(
    ("word", "action", "sentence"),
    [
        ("   ", "block", "Write the word"),
        ("x" * 61, "block", "under 60 characters"),
        ("spam", "delete", "Choose what happens"),
    ],
)
def test_bad_watched_words_are_refused(
    db: sqlite_utils.Database, word: str, action: str, sentence: str
) -> None:
    with pytest.raises(watched_words.WatchedWordError, match=sentence):
        watched_words.add_word(db, word, action, None, utcnow())
    assert watched_words.list_words(db) == []
