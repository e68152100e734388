"""The kinds of item members write, and where each is stored.

Moderation works on any of them the same way (hold, hide, restore, reject, edit, flag), so it
needs to know, per kind, the table, the author column and the text a moderator reads and may
edit. The feature modules (boards, feedback, profiles) own their rows; this is the one map of
them, so a new kind of post is one entry here, not a branch in every moderation function.
"""

from __future__ import annotations

from dataclasses import dataclass

from community.schema_social import FLAGGABLE_KINDS, ITEM_STATUSES

VISIBLE, HELD, HIDDEN, REJECTED = ITEM_STATUSES


@dataclass(frozen=True)
class ContentKind:
    """One kind of member-written item.

    ``key`` is the row's id column; ``author`` the member column; ``texts`` the columns a
    moderator reads and may edit, in the order shown; ``stamp`` the column an edit sets.
    """

    kind: str
    table: str
    key: str
    author: str
    texts: tuple[str, ...]
    stamp: str


CONTENT_KINDS: dict[str, ContentKind] = {
    kind.kind: kind
    for kind in (
        ContentKind("board", "boards", "id", "owner_id", ("title", "description"), "updated_at"),
        ContentKind("comment", "board_comments", "id", "author_id", ("body",), "edited_at"),
        ContentKind("review", "product_reviews", "id", "author_id", ("body",), "edited_at"),
        ContentKind("suggestion", "suggestions", "id", "author_id", ("body",), "edited_at"),
        ContentKind("profile", "member_profiles", "member_id", "member_id", ("bio",), "updated_at"),
    )
}

assert tuple(CONTENT_KINDS) == FLAGGABLE_KINDS, "every flaggable kind needs its table here"


def content_kind(kind: str) -> ContentKind:
    """The kind's storage; KeyError for a kind that does not exist (a 404 to the caller)."""
    return CONTENT_KINDS[kind]


def status_after_edit(current: str, screened: str) -> str:
    """The status an item takes when its author edits it.

    Held by the new text's screening → held. An item that was held, hidden by flags or
    rejected goes back to the review queue (held) rather than showing again on the author's
    word; a visible one stays visible.
    """
    if screened == HELD or current in (HELD, HIDDEN, REJECTED):
        return HELD
    return VISIBLE
