"""Community schema step 4: indexes for the moderation queue and long comment threads.

Measured on a busy store's community (``bench/community_pages.py``): the review queue asked for
each waiting item's open flags with ``item_kind = ? AND item_id = ? AND resolved_at IS NULL
ORDER BY created_at``, and SQLite answered it from ``flags_open`` (every open flag, in order) —
a walk over all open flags per item, quadratic in the queue's length. Finding what waits scanned
every item table for its few held and hidden rows.

- ``flags_item_open`` answers one item's open flags in order from the index alone; it starts
  with ``flags_item``'s columns, which is dropped (one index less to write on every flag).
- The ``*_waiting`` partial indexes hold only the rows that wait for a moderator (held or hidden),
  a handful among many thousands, so the queue finds them without reading the tables. SQLite
  uses a partial index only when the query's WHERE repeats the index's condition, so the queue
  (``community.moderation_queue``) writes it exactly as ``WAITING_CONDITION``.
- ``board_comments_parent`` finds a page's replies (and a deleted comment's replies for the
  cascade) without walking the board's other comments.
"""

from __future__ import annotations

from community.content import CONTENT_KINDS, HELD, HIDDEN
from instore.migrations import Migration

# The statuses that put an item in the review queue whatever its flags; the queue's SQL must
# say exactly this for SQLite to use the partial indexes below (see the docstring).
WAITING_CONDITION = f"status IN ('{HELD}', '{HIDDEN}')"

_WAITING_INDEXES = tuple(
    f"CREATE INDEX {kind.table}_waiting ON {kind.table}({kind.key}) WHERE {WAITING_CONDITION}"
    for kind in CONTENT_KINDS.values()
)

INDEX_MIGRATION = Migration(
    "community",
    4,
    "indexes for the moderation queue and paged board comments",
    (
        "CREATE INDEX flags_item_open ON flags(item_kind, item_id, resolved_at, created_at)",
        "DROP INDEX flags_item",
        *_WAITING_INDEXES,
        "CREATE INDEX board_comments_parent ON board_comments(parent_id)",
    ),
)
