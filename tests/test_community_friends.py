"""The community tables' reads and writes: requests and acceptance, mutual friends, blocks,
visibility, ghost mode and the chosen friends — on a real SQLite file.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlite_utils

from community import friends
from community.friends import FriendSettings, FriendshipError
from instore import members
from instore.db import transaction

NOW = datetime(2025, 3, 12, 11, 0, tzinfo=UTC)


@pytest.fixture
def people(db: sqlite_utils.Database) -> dict[str, int]:
    """Four members by name: Ana, Ben, Cleo, Dan."""
    return {
        name: members.create_member(
            db, display_name=name, password="correct horse battery", email=f"{name}@example.com"
        ).id
        for name in ("Ana", "Ben", "Cleo", "Dan")
    }


def test_a_request_is_pending_until_accepted(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    assert friends.befriend(db, ana, ben, NOW) == "pending"
    assert friends.friendship(db, ben, ana) == (ana, "pending")
    assert friends.pending_requests(db, ben) == [ana]
    assert friends.pending_requests(db, ana) == []
    assert friends.mutual_friends(db, ana) == [] and not friends.are_mutual_friends(db, ana, ben)
    assert friends.befriend(db, ana, ben, NOW) == "pending"  # asking twice changes nothing
    assert not friends.accept_friend(db, ana, ben, NOW)  # only the one asked can accept
    assert friends.accept_friend(db, ben, ana, NOW)
    assert friends.are_mutual_friends(db, ana, ben) and friends.are_mutual_friends(db, ben, ana)
    assert friends.mutual_friends(db, ana) == [ben]
    assert friends.mutual_friends(db, ben) == [ana]
    assert friends.pending_requests(db, ben) == []
    assert friends.befriend(db, ben, ana, NOW) == "accepted"
    row = db.conn.execute(
        "SELECT status, created_at, updated_at FROM friendships WHERE requester_id = ?", (ana,)
    ).fetchall()
    assert row == [("accepted", "2025-03-12T11:00:00Z", "2025-03-12T11:00:00Z")]


def test_crossed_requests_make_one_friendship(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    friends.befriend(db, ana, ben)
    assert friends.befriend(db, ben, ana) == "accepted"
    assert db.conn.execute("SELECT COUNT(*) FROM friendships").fetchone()[0] == 1
    assert friends.mutual_friends(db, ben) == [ana]


def test_mutual_friends_lists_both_directions_in_order(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, ben, cleo, dan = (people[name] for name in ("Ana", "Ben", "Cleo", "Dan"))
    friends.befriend(db, cleo, ana)
    friends.befriend(db, ana, cleo)
    friends.befriend(db, ana, ben)
    friends.befriend(db, ben, ana)
    friends.befriend(db, dan, ana)  # pending: not a friend yet
    assert friends.mutual_friends(db, ana) == [ben, cleo]
    assert friends.pending_requests(db, ana) == [dan]


def test_unfriend_ends_requests_and_friendships_and_forgets_the_choice(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, ben, cleo = people["Ana"], people["Ben"], people["Cleo"]
    friends.befriend(db, ana, cleo)
    assert friends.unfriend(db, cleo, ana)  # declining a request
    assert friends.friendship(db, ana, cleo) is None
    friends.befriend(db, ana, ben)
    friends.befriend(db, ben, ana)
    friends.choose_visible_friends(db, ana, [ben])
    assert friends.unfriend(db, ben, ana)
    assert friends.mutual_friends(db, ana) == []
    assert friends.friend_settings(db, ana).chosen == frozenset()
    assert not friends.unfriend(db, ben, ana)


def test_you_cannot_befriend_yourself_or_a_stranger_id(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana = people["Ana"]
    with pytest.raises(FriendshipError, match="your own account"):
        friends.befriend(db, ana, ana)
    with pytest.raises(FriendshipError, match="no such member"):
        friends.befriend(db, ana, 999)
    assert db.conn.execute("SELECT COUNT(*) FROM friendships").fetchone()[0] == 0


def test_a_block_drops_requests_refuses_new_ones_and_keeps_a_friendship(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, ben, cleo = people["Ana"], people["Ben"], people["Cleo"]
    friends.befriend(db, ben, ana)
    friends.block(db, ana, ben, NOW)
    friends.block(db, ana, ben, NOW)  # twice is harmless
    assert friends.pending_requests(db, ana) == []
    assert friends.blockers_between(db, ana, ben) == {ana}
    assert friends.blockers_between(db, ben, ana) == {ana}
    with pytest.raises(FriendshipError, match="not accepting friend requests"):
        friends.befriend(db, ben, ana)
    with pytest.raises(FriendshipError, match="unblock them first"):
        friends.befriend(db, ana, ben)
    # A friendship outlives a block, so unblocking puts things back as they were.
    friends.befriend(db, ana, cleo)
    friends.befriend(db, cleo, ana)
    friends.block(db, cleo, ana)
    assert friends.mutual_friends(db, ana) == [cleo]
    assert friends.blockers_between(db, ana, cleo) == {cleo}
    friends.block(db, ana, cleo)
    assert friends.blockers_between(db, ana, cleo) == {ana, cleo}
    assert friends.unblock(db, cleo, ana) and friends.unblock(db, ana, cleo)
    assert not friends.unblock(db, ana, cleo)
    assert friends.blockers_between(db, ana, cleo) == frozenset()
    assert friends.are_mutual_friends(db, ana, cleo)
    with pytest.raises(FriendshipError, match="your own account"):
        friends.block(db, ana, ana)
    with pytest.raises(FriendshipError, match="no such member"):
        friends.block(db, ana, 999)


def test_settings_default_to_visible_to_all_and_not_ghost(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    settings = friends.friend_settings(db, people["Ana"])
    assert settings == FriendSettings("all", False, frozenset())
    assert settings.shows_to(people["Ben"])


def test_visibility_and_ghost_are_independent(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana = people["Ana"]
    friends.set_ghost(db, ana, True, NOW)
    assert friends.friend_settings(db, ana) == FriendSettings("all", True, frozenset())
    friends.set_visibility(db, ana, "nobody", NOW)
    assert friends.friend_settings(db, ana) == FriendSettings("nobody", True, frozenset())
    friends.set_ghost(db, ana, False, NOW)
    assert friends.friend_settings(db, ana) == FriendSettings("nobody", False, frozenset())
    with pytest.raises(FriendshipError, match="'everyone' is not one of: all, chosen, nobody"):
        friends.set_visibility(db, ana, "everyone")
    with pytest.raises(FriendshipError, match="no such member"):
        friends.set_ghost(db, 999, True)


def test_chosen_friends(db: sqlite_utils.Database, people: dict[str, int]) -> None:
    ana, ben, cleo, dan = (people[name] for name in ("Ana", "Ben", "Cleo", "Dan"))
    for friend in (ben, cleo):
        friends.befriend(db, ana, friend)
        friends.befriend(db, friend, ana)
    friends.set_visibility(db, ana, "chosen")
    friends.choose_visible_friends(db, ana, [ben])
    settings = friends.friend_settings(db, ana)
    assert settings.chosen == {ben}
    assert settings.shows_to(ben) and not settings.shows_to(cleo)
    friends.choose_visible_friends(db, ana, [cleo, cleo])  # replaces, duplicates are one
    assert friends.friend_settings(db, ana).chosen == {cleo}
    # Someone who is not a friend is refused, and the earlier choice stays whole.
    with pytest.raises(FriendshipError, match=f"not friends: {dan}"):
        friends.choose_visible_friends(db, ana, [ben, dan])
    assert friends.friend_settings(db, ana).chosen == {cleo}
    # The choice is kept across switching visibility away and back.
    friends.set_visibility(db, ana, "nobody")
    assert not friends.friend_settings(db, ana).shows_to(cleo)
    friends.set_visibility(db, ana, "chosen")
    assert friends.friend_settings(db, ana).shows_to(cleo)
    friends.choose_visible_friends(db, ana, [])
    assert friends.friend_settings(db, ana).chosen == frozenset()


def test_writes_join_the_callers_transaction(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    ana, ben = people["Ana"], people["Ben"]
    with pytest.raises(RuntimeError), transaction(db):
        friends.befriend(db, ana, ben)
        friends.block(db, ben, ana)
        raise RuntimeError("the page failed after writing")
    assert friends.friendship(db, ana, ben) is None
    assert friends.blockers_between(db, ana, ben) == frozenset()
    # A refused write inside a transaction undoes only itself.
    with transaction(db):
        friends.befriend(db, ana, ben)
        with pytest.raises(FriendshipError):
            friends.befriend(db, ana, 999)
    assert friends.friendship(db, ana, ben) == (ana, "pending")
