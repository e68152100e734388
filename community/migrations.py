"""Tables the community package owns that other processes read: friendships, blocks, how a
member shows to friends, and stated interests.

The offers worker reads all four (friend-in-store notes, the personal price), so they exist before
the community pages that edit them; the pages extend this schema with their own steps.
"""

from __future__ import annotations

from instore import hookimpl
from instore.migrations import Migration

# Who sees a member arrive in the store: every friend, only the friends chosen, or nobody.
VISIBILITY_CHOICES: tuple[str, ...] = ("all", "chosen", "nobody")

_VISIBILITY_SQL = ", ".join(f"'{choice}'" for choice in VISIBILITY_CHOICES)

COMMUNITY_MIGRATIONS: list[Migration] = [
    Migration(
        "community",
        1,
        "friendships, blocks, friend visibility and interests",
        (
            # One row per pair, written by whoever asked; "accepted" makes them mutual friends.
            """CREATE TABLE friendships (
                requester_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                addressee_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted')),
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (requester_id, addressee_id),
                CHECK (requester_id != addressee_id)
            )""",
            "CREATE INDEX friendships_addressee ON friendships(addressee_id, status)",
            """CREATE TABLE blocks (
                blocker_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                blocked_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                created_at TEXT NOT NULL,
                PRIMARY KEY (blocker_id, blocked_id)
            )""",
            "CREATE INDEX blocks_blocked ON blocks(blocked_id)",
            # No row means the defaults: visible to all friends (still only with the
            # friend_visibility consent) and not in ghost mode.
            f"""CREATE TABLE friend_settings (
                member_id INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
                visibility TEXT NOT NULL DEFAULT 'all' CHECK (visibility IN ({_VISIBILITY_SQL})),
                ghost INTEGER NOT NULL DEFAULT 0 CHECK (ghost IN (0, 1)),
                updated_at TEXT NOT NULL
            )""",
            # The friends a member with visibility "chosen" shows to.
            """CREATE TABLE friend_visible_to (
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                friend_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                PRIMARY KEY (member_id, friend_id)
            )""",
            # Lower-case words from the store's categories; the personal price and audiences
            # read them.
            """CREATE TABLE member_interests (
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                interest TEXT NOT NULL,
                PRIMARY KEY (member_id, interest)
            )""",
        ),
    ),
]


@hookimpl
def instore_migrations() -> list[Migration]:
    """The community package's schema steps."""
    return COMMUNITY_MIGRATIONS
