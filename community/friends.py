"""Friends, blocks and how a member shows to friends: the small reads and writes on those tables.

The offers worker reads these to decide friend-in-store notes, and the community pages build on
them, so the rules that keep the tables consistent live here once:

- A friendship is one row per pair, written by whoever asked. It is mutual only once
  ``accepted``; asking someone who already asked you accepts their request instead of leaving two
  crossed requests.
- A block is separate from the friendship and outlives it: blocking cancels pending requests and
  refuses new ones, but keeps an accepted friendship's row, so unblocking puts things back as they
  were. Everything that shows one member to another (the friend notes, the pages) checks
  ``blockers_between`` itself; ``mutual_friends`` does not hide blocked friends, so a reader can
  say "blocked" instead of pretending the friendship is gone. A blocked member is never told:
  their requests to the blocker are kept unseen (``ask_without_telling``) and dropped on unblock.
- Visibility (all / chosen / nobody) and ghost mode are per member, with the defaults of the
  schema when a member never set them; the friend_visibility consent is checked by readers, not
  stored here.

Writes take a ``now`` so tests control time; every multi-statement write is atomic on its own or
a savepoint inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from community.migrations import VISIBILITY_CHOICES
from instore.clock import to_iso, utcnow
from instore.db import atomic

# What a member shows as when they never chose: the schema's column defaults (see migrations).
DEFAULT_VISIBILITY = "all"
DEFAULT_GHOST = False


class FriendshipError(ValueError):
    """A friend action a member asked for that cannot be done; the message is meant for them."""


@dataclass(frozen=True)
class FriendSettings:
    """How one member shows to friends."""

    visibility: str  # one of VISIBILITY_CHOICES
    ghost: bool
    chosen: frozenset[int]  # the friends shown to when visibility is "chosen"

    def shows_to(self, friend_id: int) -> bool:
        """True when the visibility setting alone lets this friend see the member (not ghost)."""
        if self.visibility == "all":
            return True
        return self.visibility == "chosen" and friend_id in self.chosen


def _stamp(now: datetime | None) -> str:
    return to_iso(now if now is not None else utcnow())


def _check_pair(member_id: int, other_id: int) -> None:
    if member_id == other_id:
        raise FriendshipError("that is your own account")


# -- friendships ---------------------------------------------------------------------------------


def friendship(db: sqlite_utils.Database, member_id: int, other_id: int) -> tuple[int, str] | None:
    """The pair's friendship as (requester id, status), whichever of the two asked; or None.

    An accepted row wins over a pending one, should both directions ever exist.
    """
    row = db.conn.execute(
        """SELECT requester_id, status FROM friendships
           WHERE (requester_id = ? AND addressee_id = ?) OR (requester_id = ? AND addressee_id = ?)
           ORDER BY status = 'accepted' DESC LIMIT 1""",
        (member_id, other_id, other_id, member_id),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def are_mutual_friends(db: sqlite_utils.Database, member_id: int, other_id: int) -> bool:
    """True when the two have an accepted friendship (blocks are a separate question)."""
    found = friendship(db, member_id, other_id)
    return found is not None and found[1] == "accepted"


def befriend(
    db: sqlite_utils.Database, requester_id: int, addressee_id: int, now: datetime | None = None
) -> str:
    """Ask to be friends and return the pair's status, "pending" or "accepted".

    Asking someone whose own request is waiting accepts it: both want it, so neither should have
    to ask twice. Asking again changes nothing. Refused while either has blocked the other.
    """
    _check_pair(requester_id, addressee_id)
    stamp = _stamp(now)
    with atomic(db, "community_friends"):
        blockers = blockers_between(db, requester_id, addressee_id)
        if requester_id in blockers:
            raise FriendshipError("you have blocked this member; unblock them first")
        if blockers:
            raise FriendshipError("this member is not accepting friend requests from you")
        existing = friendship(db, requester_id, addressee_id)
        if existing is not None:
            asked_by, status = existing
            if status == "pending" and asked_by == addressee_id:
                accept_friend(db, requester_id, addressee_id, now)
                return "accepted"
            return status
        try:
            db.conn.execute(
                """INSERT INTO friendships (requester_id, addressee_id, status, created_at,
                                            updated_at)
                   VALUES (?, ?, 'pending', ?, ?)""",
                (requester_id, addressee_id, stamp, stamp),
            )
        except sqlite3.IntegrityError:
            # The foreign keys are the race-free "does this member exist" check.
            raise FriendshipError("there is no such member") from None
    return "pending"


def ask_without_telling(
    db: sqlite_utils.Database, requester_id: int, addressee_id: int, now: datetime | None = None
) -> str:
    """Ask as ``befriend`` does, but a request to someone who blocked the requester looks sent.

    The pages must never tell a member they are blocked, and a request that never shows as sent
    would: so it is kept as pending, where the blocker's pages do not show it (they hide anyone
    with a block between the two) and ``unblock`` drops it. To the requester it reads like any
    request not answered yet. Refused (with a message) only when the requester is the blocker.
    """
    _check_pair(requester_id, addressee_id)
    with atomic(db, "community_friends"):
        blockers = blockers_between(db, requester_id, addressee_id)
        if requester_id in blockers or not blockers:
            return befriend(db, requester_id, addressee_id, now)
        stamp = _stamp(now)
        db.conn.execute(
            """INSERT INTO friendships (requester_id, addressee_id, status, created_at,
                                        updated_at)
               VALUES (?, ?, 'pending', ?, ?)
               ON CONFLICT (requester_id, addressee_id) DO NOTHING""",
            (requester_id, addressee_id, stamp, stamp),
        )
    return "pending"


def accept_friend(
    db: sqlite_utils.Database, addressee_id: int, requester_id: int, now: datetime | None = None
) -> bool:
    """Accept ``requester_id``'s pending request to ``addressee_id``; False if there was none."""
    cursor = db.conn.execute(
        """UPDATE friendships SET status = 'accepted', updated_at = ?
           WHERE requester_id = ? AND addressee_id = ? AND status = 'pending'""",
        (_stamp(now), requester_id, addressee_id),
    )
    return cursor.rowcount > 0


def unfriend(db: sqlite_utils.Database, member_id: int, other_id: int) -> bool:
    """End the pair's friendship or request (cancel, decline or unfriend); False if none existed.

    Each one's "chosen" list loses the other too, so befriending again later does not silently
    bring back an old visibility choice.
    """
    with atomic(db, "community_friends"):
        cursor = db.conn.execute(
            """DELETE FROM friendships
               WHERE (requester_id = ? AND addressee_id = ?)
                  OR (requester_id = ? AND addressee_id = ?)""",
            (member_id, other_id, other_id, member_id),
        )
        db.conn.execute(
            """DELETE FROM friend_visible_to
               WHERE (member_id = ? AND friend_id = ?) OR (member_id = ? AND friend_id = ?)""",
            (member_id, other_id, other_id, member_id),
        )
    return cursor.rowcount > 0


def mutual_friends(db: sqlite_utils.Database, member_id: int) -> list[int]:
    """The ids of the member's accepted friends, ascending (blocked ones included, see above)."""
    rows = db.conn.execute(
        """SELECT addressee_id FROM friendships WHERE requester_id = ? AND status = 'accepted'
           UNION
           SELECT requester_id FROM friendships WHERE addressee_id = ? AND status = 'accepted'
           ORDER BY 1""",
        (member_id, member_id),
    ).fetchall()
    return [int(row[0]) for row in rows]


def pending_requests(db: sqlite_utils.Database, member_id: int) -> list[int]:
    """Who is waiting for this member to accept their request, oldest request first."""
    rows = db.conn.execute(
        """SELECT requester_id FROM friendships WHERE addressee_id = ? AND status = 'pending'
           ORDER BY created_at, requester_id""",
        (member_id,),
    ).fetchall()
    return [int(row[0]) for row in rows]


def sent_requests(db: sqlite_utils.Database, member_id: int) -> list[int]:
    """Whom this member asked and is still waiting for, oldest request first."""
    rows = db.conn.execute(
        """SELECT addressee_id FROM friendships WHERE requester_id = ? AND status = 'pending'
           ORDER BY created_at, addressee_id""",
        (member_id,),
    ).fetchall()
    return [int(row[0]) for row in rows]


# -- blocks --------------------------------------------------------------------------------------


def block(
    db: sqlite_utils.Database, blocker_id: int, blocked_id: int, now: datetime | None = None
) -> None:
    """Block a member: pending requests either way are dropped; blocking twice is harmless."""
    _check_pair(blocker_id, blocked_id)
    with atomic(db, "community_friends"):
        try:
            db.conn.execute(
                """INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)
                   ON CONFLICT (blocker_id, blocked_id) DO NOTHING""",
                (blocker_id, blocked_id, _stamp(now)),
            )
        except sqlite3.IntegrityError:
            raise FriendshipError("there is no such member") from None
        db.conn.execute(
            """DELETE FROM friendships WHERE status = 'pending'
               AND ((requester_id = ? AND addressee_id = ?)
                    OR (requester_id = ? AND addressee_id = ?))""",
            (blocker_id, blocked_id, blocked_id, blocker_id),
        )


def unblock(db: sqlite_utils.Database, blocker_id: int, blocked_id: int) -> bool:
    """Lift a block; False if there was none.

    A request the blocked member sent meanwhile (``ask_without_telling``) is dropped, not shown:
    it was made while blocked, and showing it now would tell the blocker nothing they asked for.
    """
    with atomic(db, "community_friends"):
        cursor = db.conn.execute(
            "DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?", (blocker_id, blocked_id)
        )
        if cursor.rowcount:
            db.conn.execute(
                """DELETE FROM friendships WHERE requester_id = ? AND addressee_id = ?
                   AND status = 'pending'""",
                (blocked_id, blocker_id),
            )
    return cursor.rowcount > 0


def blockers_between(db: sqlite_utils.Database, member_id: int, other_id: int) -> frozenset[int]:
    """Which of the two has blocked the other: empty, one id, or both ids."""
    rows = db.conn.execute(
        """SELECT blocker_id FROM blocks
           WHERE (blocker_id = ? AND blocked_id = ?) OR (blocker_id = ? AND blocked_id = ?)""",
        (member_id, other_id, other_id, member_id),
    ).fetchall()
    return frozenset(int(row[0]) for row in rows)


# -- how a member shows to friends ---------------------------------------------------------------


def friend_settings(db: sqlite_utils.Database, member_id: int) -> FriendSettings:
    """The member's visibility, ghost mode and chosen friends (the defaults when never set)."""
    row = db.conn.execute(
        "SELECT visibility, ghost FROM friend_settings WHERE member_id = ?", (member_id,)
    ).fetchone()
    chosen = db.conn.execute(
        "SELECT friend_id FROM friend_visible_to WHERE member_id = ?", (member_id,)
    ).fetchall()
    visibility, ghost = (DEFAULT_VISIBILITY, DEFAULT_GHOST) if row is None else row
    return FriendSettings(str(visibility), bool(ghost), frozenset(int(r[0]) for r in chosen))


def _upsert_setting(
    db: sqlite_utils.Database, member_id: int, column: str, value: str | int, now: datetime | None
) -> None:
    """Change one column of the member's settings row, creating it with the defaults if needed."""
    assert column in ("visibility", "ghost")  # a fixed name, never input: it is put in the SQL
    try:
        db.conn.execute(
            f"""INSERT INTO friend_settings (member_id, {column}, updated_at) VALUES (?, ?, ?)
                ON CONFLICT (member_id) DO UPDATE SET
                  {column} = excluded.{column}, updated_at = excluded.updated_at""",  # noqa: S608
            (member_id, value, _stamp(now)),
        )
    except sqlite3.IntegrityError:
        raise FriendshipError("there is no such member") from None


def set_visibility(
    db: sqlite_utils.Database, member_id: int, visibility: str, now: datetime | None = None
) -> None:
    """Show arrivals to all friends, only the chosen ones, or nobody; ghost mode is kept."""
    if visibility not in VISIBILITY_CHOICES:
        raise FriendshipError(
            f"visibility {visibility!r} is not one of: {', '.join(VISIBILITY_CHOICES)}"
        )
    _upsert_setting(db, member_id, "visibility", visibility, now)


def set_ghost(
    db: sqlite_utils.Database, member_id: int, ghost: bool, now: datetime | None = None
) -> None:
    """Turn ghost mode on (hidden from every friend, and told about none) or off."""
    _upsert_setting(db, member_id, "ghost", int(ghost), now)


def choose_visible_friends(
    db: sqlite_utils.Database, member_id: int, friend_ids: Iterable[int]
) -> None:
    """Replace the friends this member shows to under "chosen" visibility.

    Only mutual friends can be chosen: a list naming someone else is refused whole, so a page
    never saves half a choice. The choice applies while visibility is "chosen" (``set_visibility``)
    and is kept when the member switches to "all" or "nobody" and back.
    """
    chosen = set(friend_ids)
    strangers = sorted(chosen - set(mutual_friends(db, member_id)))
    if strangers:
        raise FriendshipError(
            f"only friends can be chosen; not friends: {', '.join(map(str, strangers))}"
        )
    with atomic(db, "community_friends"):
        db.conn.execute("DELETE FROM friend_visible_to WHERE member_id = ?", (member_id,))
        db.conn.executemany(
            "INSERT INTO friend_visible_to (member_id, friend_id) VALUES (?, ?)",
            [(member_id, friend_id) for friend_id in sorted(chosen)],
        )
