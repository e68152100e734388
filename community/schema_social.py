"""Community schema step 3: profiles, the product catalogue, boards, feedback and moderation.

One step for all of them because they point at each other: a board holds catalogue products, a
review rates one, and every text members write carries the same moderation ``status`` so one
review queue and one flag table can hold, hide and restore any of them (``community.content``
names which table and columns each kind of item is).
"""

from __future__ import annotations

from instore.migrations import Migration

# Where an item members wrote stands. visible: everyone it is shared with sees it. held: a
# watched word or the machine score sent it to review before anyone sees it. hidden: enough
# members flagged it; only its author (told why) and staff see it until a moderator decides.
# rejected: a moderator took it down; its author still sees it, marked, and may appeal.
ITEM_STATUSES: tuple[str, ...] = ("visible", "held", "hidden", "rejected")
# Who can see a board: its owner only, the owner's mutual friends, or every member.
BOARD_AUDIENCES: tuple[str, ...] = ("private", "friends", "public")
# The reactions a board can get, one of each per member.
REACTIONS: tuple[str, ...] = ("like", "love", "want")
# What members can flag, and why.
FLAGGABLE_KINDS: tuple[str, ...] = ("board", "comment", "review", "suggestion", "profile")
FLAG_REASONS: tuple[str, ...] = ("spam", "offensive", "harassment", "other")
# What a watched word does to text that contains it (Discourse's actions).
WATCHED_WORD_ACTIONS: tuple[str, ...] = ("block", "censor", "require_approval", "flag")
# Standing measures against a member; a ban is kept apart (it outlives the account).
SANCTION_KINDS: tuple[str, ...] = ("warning", "silence", "suspend")
APPEAL_OUTCOMES: tuple[str, ...] = ("upheld", "overturned")


def _among(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


_STATUS = f"status TEXT NOT NULL DEFAULT 'visible' CHECK (status IN ({_among(ITEM_STATUSES)}))"

SOCIAL_MIGRATION = Migration(
    "community",
    3,
    "profiles, product catalogue, boards, reviews, polls, suggestions and moderation",
    (
        # The display name stays on members (every page shows it); the profile adds what the
        # community shows. avatar_path is relative to the uploads directory.
        f"""CREATE TABLE member_profiles (
            member_id INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
            bio TEXT NOT NULL DEFAULT '',
            avatar_path TEXT,
            {_STATUS},
            updated_at TEXT NOT NULL
        )""",
        # The store's catalogue, imported from CSV. category is lower-case: the categories are
        # the interests members choose from. zone is a zone's name on the floor plan (kept as a
        # name so an import does not depend on zone ids); image_path is under uploads.
        """CREATE TABLE products (
            id INTEGER PRIMARY KEY,
            sku TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            category TEXT NOT NULL,
            price_cents INTEGER CHECK (price_cents IS NULL OR price_cents >= 0),
            zone TEXT,
            description TEXT NOT NULL DEFAULT '',
            image_path TEXT,
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX products_category ON products(category, name)",
        f"""CREATE TABLE boards (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            audience TEXT NOT NULL DEFAULT 'private'
                CHECK (audience IN ({_among(BOARD_AUDIENCES)})),
            {_STATUS},
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX boards_owner ON boards(owner_id, id)",
        "CREATE INDEX boards_audience ON boards(audience, status, id)",
        # A product on a board with the owner's note and, optionally, their own photo.
        """CREATE TABLE board_items (
            id INTEGER PRIMARY KEY,
            board_id INTEGER NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
            product_id INTEGER REFERENCES products(id) ON DELETE SET NULL,
            note TEXT NOT NULL DEFAULT '',
            photo_path TEXT,
            position INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX board_items_board ON board_items(board_id, position, id)",
        # parent_id: a reply to another comment on the same board. author_id NULL: the author
        # erased their account and chose to leave their words as "deleted member".
        f"""CREATE TABLE board_comments (
            id INTEGER PRIMARY KEY,
            board_id INTEGER NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
            author_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
            parent_id INTEGER REFERENCES board_comments(id) ON DELETE CASCADE,
            body TEXT NOT NULL,
            {_STATUS},
            created_at TEXT NOT NULL,
            edited_at TEXT
        )""",
        "CREATE INDEX board_comments_board ON board_comments(board_id, id)",
        "CREATE INDEX board_comments_author ON board_comments(author_id)",
        f"""CREATE TABLE board_reactions (
            board_id INTEGER NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            reaction TEXT NOT NULL CHECK (reaction IN ({_among(REACTIONS)})),
            created_at TEXT NOT NULL,
            PRIMARY KEY (board_id, member_id, reaction)
        )""",
        "CREATE INDEX board_reactions_member ON board_reactions(member_id)",
        f"""CREATE TABLE product_reviews (
            id INTEGER PRIMARY KEY,
            product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
            author_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
            rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
            body TEXT NOT NULL DEFAULT '',
            {_STATUS},
            created_at TEXT NOT NULL,
            edited_at TEXT
        )""",
        "CREATE INDEX product_reviews_product ON product_reviews(product_id, id)",
        # One review per member and product (NULL authors, the erased ones, may repeat).
        "CREATE UNIQUE INDEX product_reviews_one ON product_reviews(product_id, author_id)",
        # Staff ask; members vote once. closes_at NULL: open until closed by hand (closed_at).
        """CREATE TABLE polls (
            id INTEGER PRIMARY KEY,
            question TEXT NOT NULL,
            created_by INTEGER REFERENCES members(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            closes_at TEXT,
            closed_at TEXT
        )""",
        """CREATE TABLE poll_options (
            id INTEGER PRIMARY KEY,
            poll_id INTEGER NOT NULL REFERENCES polls(id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            position INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX poll_options_poll ON poll_options(poll_id, position)",
        """CREATE TABLE poll_votes (
            poll_id INTEGER NOT NULL REFERENCES polls(id) ON DELETE CASCADE,
            option_id INTEGER NOT NULL REFERENCES poll_options(id) ON DELETE CASCADE,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            PRIMARY KEY (poll_id, member_id)
        )""",
        "CREATE INDEX poll_votes_option ON poll_votes(option_id)",
        "CREATE INDEX poll_votes_member ON poll_votes(member_id)",
        f"""CREATE TABLE suggestions (
            id INTEGER PRIMARY KEY,
            author_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
            body TEXT NOT NULL,
            {_STATUS},
            created_at TEXT NOT NULL,
            edited_at TEXT
        )""",
        "CREATE INDEX suggestions_author ON suggestions(author_id)",
        # A staff member's public answer under a review or a suggestion.
        """CREATE TABLE staff_answers (
            id INTEGER PRIMARY KEY,
            item_kind TEXT NOT NULL CHECK (item_kind IN ('review', 'suggestion')),
            item_id INTEGER NOT NULL,
            staff_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            edited_at TEXT
        )""",
        "CREATE INDEX staff_answers_item ON staff_answers(item_kind, item_id, id)",
        "CREATE INDEX staff_answers_staff ON staff_answers(staff_id)",
        # This store's watched words (one box is one store). word is lower-case; a phrase of
        # several words matches as a whole.
        f"""CREATE TABLE watched_words (
            id INTEGER PRIMARY KEY,
            word TEXT NOT NULL UNIQUE,
            action TEXT NOT NULL CHECK (action IN ({_among(WATCHED_WORD_ACTIONS)})),
            created_by INTEGER REFERENCES members(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL
        )""",
        # A member's flag on an item; flagger_id NULL is the system (a watched word's "flag" or
        # the machine score). resolved_at is set when a moderator decided on the item.
        f"""CREATE TABLE flags (
            id INTEGER PRIMARY KEY,
            item_kind TEXT NOT NULL CHECK (item_kind IN ({_among(FLAGGABLE_KINDS)})),
            item_id INTEGER NOT NULL,
            flagger_id INTEGER REFERENCES members(id) ON DELETE CASCADE,
            reason TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            resolved_at TEXT,
            resolution TEXT
        )""",
        "CREATE INDEX flags_item ON flags(item_kind, item_id)",
        "CREATE INDEX flags_open ON flags(resolved_at, created_at)",
        "CREATE UNIQUE INDEX flags_one_per_member ON flags(item_kind, item_id, flagger_id)",
        # Every moderation decision: who, on what, about whom, why. Kept for the store's records;
        # an erased member's rows lose their ids, not their existence.
        """CREATE TABLE moderation_actions (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            moderator_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
            action TEXT NOT NULL,
            item_kind TEXT,
            item_id INTEGER,
            member_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX moderation_actions_member ON moderation_actions(member_id, id)",
        "CREATE INDEX moderation_actions_item ON moderation_actions(item_kind, item_id)",
        # A warning, or a silence/suspension until ends_at (NULL: until lifted).
        f"""CREATE TABLE member_sanctions (
            id INTEGER PRIMARY KEY,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ({_among(SANCTION_KINDS)})),
            reason TEXT NOT NULL,
            action_id INTEGER REFERENCES moderation_actions(id) ON DELETE SET NULL,
            starts_at TEXT NOT NULL,
            ends_at TEXT,
            lifted_at TEXT
        )""",
        "CREATE INDEX member_sanctions_member ON member_sanctions(member_id, kind)",
        # A ban outlives the account it expelled: the email and loyalty number (normalised as
        # sign-up normalises them) are what a new sign-up is checked against.
        """CREATE TABLE bans (
            id INTEGER PRIMARY KEY,
            member_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
            email TEXT,
            loyalty_number TEXT,
            reason TEXT NOT NULL,
            action_id INTEGER REFERENCES moderation_actions(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            lifted_at TEXT
        )""",
        "CREATE INDEX bans_email ON bans(email)",
        "CREATE INDEX bans_loyalty ON bans(loyalty_number)",
        # One appeal per decision; a moderator upholds or overturns it.
        f"""CREATE TABLE appeals (
            id INTEGER PRIMARY KEY,
            action_id INTEGER NOT NULL REFERENCES moderation_actions(id) ON DELETE CASCADE,
            member_id INTEGER REFERENCES members(id) ON DELETE CASCADE,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            decided_at TEXT,
            decided_by INTEGER REFERENCES members(id) ON DELETE SET NULL,
            outcome TEXT CHECK (outcome IS NULL OR outcome IN ({_among(APPEAL_OUTCOMES)})),
            answer TEXT NOT NULL DEFAULT '',
            UNIQUE (action_id)
        )""",
        "CREATE INDEX appeals_open ON appeals(decided_at, id)",
    ),
)
