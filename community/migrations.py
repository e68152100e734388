"""Tables the community package owns that other processes read: friendships, blocks, how a
member shows to friends, and stated interests.

The offers worker reads all four (friend-in-store notes, the personal price), so they exist before
the community pages that edit them; the pages extend this schema with their own steps.
"""

from __future__ import annotations

from community.schema_indexes import INDEX_MIGRATION
from community.schema_social import SOCIAL_MIGRATION
from instore import hookimpl
from instore.member_data import MemberTable
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
    Migration(
        "community",
        2,
        "the support inbox: threads, messages and canned replies",
        (
            # One question from a member and its conversation. waiting_since is when the
            # member's oldest unanswered message was posted (NULL once staff answered): the
            # inbox orders and measures the target by it. first_response_at and closed_at give
            # the first-response and resolution times; a member's reply reopens a closed thread.
            """CREATE TABLE support_threads (
                id INTEGER PRIMARY KEY,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                subject TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
                assignee_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
                created_at TEXT NOT NULL,
                waiting_since TEXT,
                first_response_at TEXT,
                closed_at TEXT,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX support_threads_member ON support_threads(member_id, id)",
            "CREATE INDEX support_threads_status ON support_threads(status, waiting_since)",
            # author_id NULL: the author's account is gone, the conversation stays readable.
            """CREATE TABLE support_messages (
                id INTEGER PRIMARY KEY,
                thread_id INTEGER NOT NULL REFERENCES support_threads(id) ON DELETE CASCADE,
                author_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
                from_staff INTEGER NOT NULL CHECK (from_staff IN (0, 1)),
                body TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX support_messages_thread ON support_messages(thread_id, id)",
            # Short answers staff reuse ("Our opening hours are ...").
            """CREATE TABLE support_canned_replies (
                id INTEGER PRIMARY KEY,
                title TEXT NOT NULL UNIQUE,
                body TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
        ),
    ),
    SOCIAL_MIGRATION,
    INDEX_MIGRATION,
]

# What a member wrote in public, when they chose on erasure to leave it as "deleted member".
_KEEP_AS_DELETED_MEMBER = "author_id = NULL"
# Rows that stay untouched when the member keeps their posts (a no-op SET clause).
_LEAVE_AS_IS = "item_id = item_id"


@hookimpl
def instore_migrations() -> list[Migration]:
    """The community package's schema steps."""
    return COMMUNITY_MIGRATIONS


@hookimpl
def member_data_tables() -> list[MemberTable]:
    """Friendships either side, blocks, friend visibility, interests and support threads."""
    return [
        MemberTable("friendships", "requester_id = :member_id OR addressee_id = :member_id"),
        MemberTable("blocks", "blocker_id = :member_id"),
        # Who blocked the member is the blocker's business: erased, never exported.
        MemberTable("blocks", "blocked_id = :member_id", export=False),
        MemberTable("friend_settings", "member_id = :member_id"),
        MemberTable("friend_visible_to", "member_id = :member_id"),
        MemberTable("friend_visible_to", "friend_id = :member_id", export=False),
        MemberTable("member_interests", "member_id = :member_id"),
        # The member's support questions with the whole conversation, staff answers included.
        MemberTable(
            "support_messages",
            "thread_id IN (SELECT id FROM support_threads WHERE member_id = :member_id)",
        ),
        MemberTable("support_threads", "member_id = :member_id"),
        # A staff member's answers in other members' threads stay, without saying who wrote them.
        MemberTable("support_messages", "author_id = :member_id", anonymise="author_id = NULL"),
        MemberTable(
            "support_threads",
            "assignee_id = :member_id",
            anonymise="assignee_id = NULL",
            export=False,
        ),
        # Profile (and its picture), boards with their items' photos, reactions, votes.
        MemberTable("member_profiles", "member_id = :member_id", file_column="avatar_path"),
        MemberTable(
            "board_items",
            "board_id IN (SELECT id FROM boards WHERE owner_id = :member_id)",
            file_column="photo_path",
        ),
        MemberTable("boards", "owner_id = :member_id"),
        MemberTable("board_reactions", "member_id = :member_id"),
        MemberTable("poll_votes", "member_id = :member_id"),
        # Staff answers under their reviews and suggestions go with them (and stay if those do);
        # declared first, while the subqueries still find the member's rows.
        MemberTable(
            "staff_answers",
            "(item_kind = 'review' AND item_id IN"
            " (SELECT id FROM product_reviews WHERE author_id = :member_id))"
            " OR (item_kind = 'suggestion' AND item_id IN"
            " (SELECT id FROM suggestions WHERE author_id = :member_id))",
            export=False,
            keepable=_LEAVE_AS_IS,
        ),
        # What they wrote where others read it: erased, or kept unsigned if they chose so.
        MemberTable("board_comments", "author_id = :member_id", keepable=_KEEP_AS_DELETED_MEMBER),
        MemberTable("product_reviews", "author_id = :member_id", keepable=_KEEP_AS_DELETED_MEMBER),
        MemberTable("suggestions", "author_id = :member_id", keepable=_KEEP_AS_DELETED_MEMBER),
        # Staff work stays for the store, without saying who did it.
        MemberTable("polls", "created_by = :member_id", anonymise="created_by = NULL"),
        MemberTable("staff_answers", "staff_id = :member_id", anonymise="staff_id = NULL"),
        MemberTable(
            "watched_words",
            "created_by = :member_id",
            anonymise="created_by = NULL",
            export=False,
        ),
        # Flags they raised; flags on their profile go with it.
        MemberTable("flags", "flagger_id = :member_id"),
        MemberTable("flags", "item_kind = 'profile' AND item_id = :member_id", export=False),
        # Moderation decisions about them are the store's records: shown to them, kept unnamed.
        MemberTable("moderation_actions", "member_id = :member_id", anonymise="member_id = NULL"),
        MemberTable(
            "moderation_actions",
            "moderator_id = :member_id",
            anonymise="moderator_id = NULL",
            export=False,
        ),
        MemberTable("member_sanctions", "member_id = :member_id"),
        # A ban outlives the account: its email and loyalty number still refuse a new sign-up.
        MemberTable("bans", "member_id = :member_id", anonymise="member_id = NULL"),
        MemberTable("appeals", "member_id = :member_id"),
        MemberTable(
            "appeals", "decided_by = :member_id", anonymise="decided_by = NULL", export=False
        ),
    ]
