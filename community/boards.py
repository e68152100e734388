"""Boards ("ensembles"): a member's titled collection of catalogue products, photos and notes.

The rules every page relies on live here once:

- Who sees a board (``can_view``): its owner always; anyone else only while it is ``visible``
  (held, hidden and rejected boards are their owner's alone, as for every item members write),
  with no block between the two either way, and only as far as the audience allows: nobody else
  for ``private``, the owner's mutual friends for ``friends``, every member for ``public``.
  Anyone who may not see a board is told it does not exist (``BoardNotFound``), so an id cannot
  be used to learn that a private board is there.
- Only the owner changes a board. Title, description and each note go through
  ``community.screening`` in the write's transaction: a refused text raises ``Refused``, a
  censored one is stored masked, and a held one holds the whole board (a note is part of what the
  board shows, so it waits for a moderator with it). An edit takes ``status_after_edit``.
- "Shop this board in store" groups the board's products by the zone the catalogue names,
  putting the zone the member stands in (from the presence daemon's live state) first.

Comments and reactions are in ``community.board_comments``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from community import catalogue
from community.content import HELD, VISIBLE, status_after_edit
from community.friends import are_mutual_friends, blockers_between
from community.schema_social import BOARD_AUDIENCES
from community.screening import Limits, record, screen
from instore.clock import to_iso
from instore.db import atomic

# What a board's title fits in: a card's heading on a phone, two lines at most.
MAX_TITLE = 80
# A paragraph or two about the idea behind the board.
MAX_DESCRIPTION = 1000
# A note beside one item: a sentence or three ("goes with the blue scarf").
MAX_NOTE = 300
# Items on one board: an outfit is a handful, a wish list a few dozen; more is a catalogue copy,
# and the board page (all items at once, with photos) must stay light on a phone.
MAX_ITEMS = 60
# Boards per page of the public feed, and the most friends' boards the index lists.
PAGE_SIZE = 20
FRIENDS_BOARDS_SHOWN = 40
# The shop-in-store group for products the catalogue gives no zone.
NO_ZONE = None


class BoardError(ValueError):
    """A board change that cannot be done; the message is meant for the member."""


class BoardNotFound(BoardError):
    """No such board, or one this member may not see or change (the pages answer 404)."""

    def __init__(self, message: str = "That board does not exist.") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Board:
    """One board with its owner's display name and how many items it holds."""

    id: int
    owner_id: int
    owner_name: str
    title: str
    description: str
    audience: str
    status: str
    created_at: str
    updated_at: str
    item_count: int


@dataclass(frozen=True)
class BoardItem:
    """A product on a board (None: a photo of the owner's own), with their note and photo."""

    id: int
    board_id: int
    product: catalogue.Product | None
    note: str
    photo_path: str | None
    position: int


@dataclass(frozen=True)
class ZoneGroup:
    """The board's products in one zone; ``zone`` None is "ask staff" (the catalogue has none)."""

    zone: str | None
    items: list[BoardItem]
    here: bool  # the member is in this zone now


@dataclass(frozen=True)
class ShopPlan:
    """The board's products by zone, and the zone the member is in now (None: not in store)."""

    current_zone: str | None
    groups: list[ZoneGroup]


@dataclass(frozen=True)
class BoardPage:
    """One page of a board list."""

    boards: list[Board]
    page: int
    has_more: bool


_SELECT = """
    SELECT b.id, b.owner_id, m.display_name, b.title, b.description, b.audience, b.status,
           b.created_at, b.updated_at,
           (SELECT COUNT(*) FROM board_items AS i WHERE i.board_id = b.id)
    FROM boards AS b JOIN members AS m ON m.id = b.owner_id
"""
# No block either way between the board's owner and the viewer (bound twice as ?).
_NO_BLOCK = """NOT EXISTS (SELECT 1 FROM blocks
    WHERE (blocker_id = b.owner_id AND blocked_id = ?)
       OR (blocker_id = ? AND blocked_id = b.owner_id))"""
# The viewer's mutual friends (bound twice as ?).
_FRIENDS = """(
    SELECT addressee_id FROM friendships WHERE requester_id = ? AND status = 'accepted'
    UNION
    SELECT requester_id FROM friendships WHERE addressee_id = ? AND status = 'accepted')"""


def _board(row: tuple[Any, ...]) -> Board:
    return Board(*row)


def _clean(text: str | None, limit: int, what: str, required: bool = False) -> str:
    """Trimmed text within ``limit``, or a BoardError saying what to change."""
    text = (text or "").strip()
    if required and not text:
        raise BoardError(f"Write a {what}.")
    if len(text) > limit:
        raise BoardError(f"Keep the {what} under {limit} characters.")
    return text


def _audience(audience: str) -> str:
    if audience not in BOARD_AUDIENCES:
        raise BoardError("Choose who can see the board: only you, your friends, or everyone.")
    return audience


# -- reading and who sees what -------------------------------------------------------------------


def get_board(db: sqlite_utils.Database, board_id: int) -> Board | None:
    """The board whoever asks (staff, the owner's own checks); pages use ``visible_board``."""
    row = db.conn.execute(_SELECT + " WHERE b.id = ?", (board_id,)).fetchone()
    return None if row is None else _board(row)


def can_view(db: sqlite_utils.Database, board: Board, viewer_id: int | None) -> bool:
    """Whether ``viewer_id`` (None: not a signed-in member) may see the board (module docstring)."""
    if viewer_id is None:
        return False
    if viewer_id == board.owner_id:
        return True
    if board.status != VISIBLE or blockers_between(db, board.owner_id, viewer_id):
        return False
    if board.audience == "public":
        return True
    return board.audience == "friends" and are_mutual_friends(db, board.owner_id, viewer_id)


def visible_board(db: sqlite_utils.Database, board_id: int, viewer_id: int | None) -> Board:
    """The board if the viewer may see it; else ``BoardNotFound``, exactly as for a missing id."""
    board = get_board(db, board_id)
    if board is None or not can_view(db, board, viewer_id):
        raise BoardNotFound()
    return board


def own_board(db: sqlite_utils.Database, board_id: int, owner_id: int) -> Board:
    """The board if ``owner_id`` owns it; anyone else's reads as missing."""
    board = get_board(db, board_id)
    if board is None or board.owner_id != owner_id:
        raise BoardNotFound()
    return board


def my_boards(db: sqlite_utils.Database, owner_id: int) -> list[Board]:
    """All of a member's own boards, whatever their status, most recently changed first."""
    rows = db.conn.execute(
        _SELECT + " WHERE b.owner_id = ? ORDER BY b.updated_at DESC, b.id DESC", (owner_id,)
    ).fetchall()
    return [_board(row) for row in rows]


def friends_boards(
    db: sqlite_utils.Database, viewer_id: int, limit: int = FRIENDS_BOARDS_SHOWN
) -> list[Board]:
    """Visible boards of the viewer's mutual friends shared with friends or everyone, newest
    change first; friends with a block between them and the viewer are left out."""
    rows = db.conn.execute(
        _SELECT
        + f""" WHERE b.status = 'visible' AND b.audience IN ('friends', 'public')
              AND b.owner_id IN {_FRIENDS} AND {_NO_BLOCK}
           ORDER BY b.updated_at DESC, b.id DESC LIMIT ?""",
        (viewer_id, viewer_id, viewer_id, viewer_id, limit),
    ).fetchall()
    return [_board(row) for row in rows]


def public_boards(
    db: sqlite_utils.Database, viewer_id: int, page: int = 1, page_size: int = PAGE_SIZE
) -> BoardPage:
    """Other members' visible public boards, newest first, one page at a time (from 1)."""
    page = max(1, page)
    rows = db.conn.execute(
        _SELECT
        + f""" WHERE b.status = 'visible' AND b.audience = 'public' AND b.owner_id != ?
              AND {_NO_BLOCK}
           ORDER BY b.created_at DESC, b.id DESC LIMIT ? OFFSET ?""",
        (viewer_id, viewer_id, viewer_id, page_size + 1, (page - 1) * page_size),
    ).fetchall()
    boards = [_board(row) for row in rows[:page_size]]
    return BoardPage(boards, page, len(rows) > page_size)


def board_items(db: sqlite_utils.Database, board_id: int) -> list[BoardItem]:
    """The board's items in the owner's order, each with its catalogue product (if any)."""
    rows = db.conn.execute(
        """SELECT id, board_id, product_id, note, photo_path, position FROM board_items
           WHERE board_id = ? ORDER BY position, id""",
        (board_id,),
    ).fetchall()
    products = catalogue.products_by_ids(db, [row[2] for row in rows if row[2] is not None])
    return [
        BoardItem(row[0], row[1], products.get(row[2]) if row[2] else None, *row[3:])
        for row in rows
    ]


# -- the owner's changes -------------------------------------------------------------------------


def create_board(
    db: sqlite_utils.Database,
    owner_id: int,
    title: str,
    description: str,
    audience: str,
    now: datetime,
    limits: Limits,
) -> int:
    """Start a board; returns its id. Raises BoardError or screening's ``Refused``."""
    title = _clean(title, MAX_TITLE, "title", required=True)
    description = _clean(description, MAX_DESCRIPTION, "description")
    audience = _audience(audience)
    stamp = to_iso(now)
    with atomic(db, "boards_create"):
        screening = screen(db, owner_id, {"title": title, "description": description}, now, limits)
        cursor = db.conn.execute(
            """INSERT INTO boards (owner_id, title, description, audience, status, created_at,
                                   updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (
                owner_id,
                screening.texts["title"],
                screening.texts["description"],
                audience,
                screening.status,
                stamp,
                stamp,
            ),
        )
        board_id = int(cursor.lastrowid or 0)
        record(db, "board", board_id, screening, now)
    return board_id


def edit_board(
    db: sqlite_utils.Database,
    board_id: int,
    owner_id: int,
    title: str,
    description: str,
    audience: str,
    now: datetime,
    limits: Limits,
) -> str:
    """Change the title, description and audience; returns the board's status after the edit
    (a held, hidden or rejected board goes back to the review queue)."""
    title = _clean(title, MAX_TITLE, "title", required=True)
    description = _clean(description, MAX_DESCRIPTION, "description")
    audience = _audience(audience)
    with atomic(db, "boards_edit"):
        board = own_board(db, board_id, owner_id)
        screening = screen(db, owner_id, {"title": title, "description": description}, now, limits)
        status = status_after_edit(board.status, screening.status)
        db.conn.execute(
            """UPDATE boards SET title = ?, description = ?, audience = ?, status = ?,
                   updated_at = ?
               WHERE id = ?""",
            (
                screening.texts["title"],
                screening.texts["description"],
                audience,
                status,
                to_iso(now),
                board_id,
            ),
        )
        record(db, "board", board_id, screening, now)
    return status


def delete_board(db: sqlite_utils.Database, board_id: int, owner_id: int) -> list[str]:
    """Delete the board with its items, comments and reactions; returns the photos' upload paths
    for the caller to remove once the delete is committed."""
    with atomic(db, "boards_delete"):
        own_board(db, board_id, owner_id)
        photos = [
            str(row[0])
            for row in db.conn.execute(
                "SELECT photo_path FROM board_items WHERE board_id = ? AND photo_path IS NOT NULL",
                (board_id,),
            ).fetchall()
        ]
        # Flags on the board and its comments would point at rows that are gone (moderation's
        # log of decisions, moderation_actions, keeps its own copy).
        db.conn.execute(
            """DELETE FROM flags WHERE (item_kind = 'board' AND item_id = ?)
                 OR (item_kind = 'comment'
                     AND item_id IN (SELECT id FROM board_comments WHERE board_id = ?))""",
            (board_id, board_id),
        )
        db.conn.execute("DELETE FROM boards WHERE id = ?", (board_id,))
    return photos


def add_item(
    db: sqlite_utils.Database,
    board_id: int,
    owner_id: int,
    product_id: int | None,
    note: str,
    photo_path: str | None,
    now: datetime,
    limits: Limits,
) -> int:
    """Put a catalogue product and/or the owner's own photo on the board, with a note.

    Returns the item's id. The note is screened like the board's own text, and a held note
    holds the board (see the module docstring).
    """
    note = _clean(note, MAX_NOTE, "note")
    if product_id is None and not photo_path:
        raise BoardError("Choose a product from the catalogue or add a photo.")
    with atomic(db, "boards_add_item"):
        board = own_board(db, board_id, owner_id)
        if product_id is not None:
            product = catalogue.get_product(db, product_id)
            if product is None or not product.active:
                raise BoardError("That product is not in the catalogue.")
        count, last = db.conn.execute(
            "SELECT COUNT(*), COALESCE(MAX(position), 0) FROM board_items WHERE board_id = ?",
            (board_id,),
        ).fetchone()
        if count >= MAX_ITEMS:
            raise BoardError(
                f"A board holds at most {MAX_ITEMS} items. Remove one, or start another board."
            )
        screening = screen(db, owner_id, {"note": note}, now, limits)
        stamp = to_iso(now)
        cursor = db.conn.execute(
            """INSERT INTO board_items (board_id, product_id, note, photo_path, position,
                                        created_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (board_id, product_id, screening.texts["note"], photo_path, int(last) + 1, stamp),
        )
        status = HELD if screening.status == HELD else board.status
        db.conn.execute(
            "UPDATE boards SET status = ?, updated_at = ? WHERE id = ?", (status, stamp, board_id)
        )
        record(db, "board", board_id, screening, now)
    return int(cursor.lastrowid or 0)


def remove_item(
    db: sqlite_utils.Database, board_id: int, owner_id: int, item_id: int
) -> str | None:
    """Take an item off the board; returns its photo's upload path (None: it had none) for the
    caller to remove after the commit. An item of another board reads as missing."""
    with atomic(db, "boards_remove_item"):
        own_board(db, board_id, owner_id)
        row = db.conn.execute(
            "SELECT photo_path FROM board_items WHERE id = ? AND board_id = ?", (item_id, board_id)
        ).fetchone()
        if row is None:
            raise BoardNotFound("That item is not on this board.")
        db.conn.execute("DELETE FROM board_items WHERE id = ?", (item_id,))
    return None if row[0] is None else str(row[0])


def move_item(
    db: sqlite_utils.Database, board_id: int, owner_id: int, item_id: int, steps: int
) -> None:
    """Move an item ``steps`` places later (negative: earlier) in the board's order.

    The whole order is renumbered 1..n, so equal positions left by older writes cannot make a
    move a no-op. Moving past either end stops there.
    """
    with atomic(db, "boards_move_item"):
        own_board(db, board_id, owner_id)
        order = [
            int(row[0])
            for row in db.conn.execute(
                "SELECT id FROM board_items WHERE board_id = ? ORDER BY position, id", (board_id,)
            ).fetchall()
        ]
        if item_id not in order:
            raise BoardNotFound("That item is not on this board.")
        start = order.index(item_id)
        order.insert(max(0, min(len(order) - 1, start + steps)), order.pop(start))
        db.conn.executemany(
            "UPDATE board_items SET position = ? WHERE id = ?",
            [(position, item) for position, item in enumerate(order, start=1)],
        )


# -- shop this board in store --------------------------------------------------------------------


def current_zone(db: sqlite_utils.Database, member_id: int) -> str | None:
    """The zone the presence daemon places the member in right now, or None (not in store)."""
    row = db.conn.execute(
        """SELECT z.name FROM presence_state AS p JOIN zones AS z ON z.id = p.zone_id
           WHERE p.device = ?""",
        (f"m:{member_id}",),
    ).fetchone()
    return None if row is None else str(row[0])


def shop_in_store(db: sqlite_utils.Database, board: Board, viewer_id: int) -> ShopPlan:
    """The board's catalogue products grouped by zone, for a member walking the store.

    Zones match the catalogue's names without regard to case (the CSV is typed by hand); the
    group the member stands in comes first, then the others by name, then "ask staff" for
    products without a zone. Withdrawn products and photo-only items are left out: there is
    nothing on a shelf to find.
    """
    here = current_zone(db, viewer_id)
    groups: dict[str | None, tuple[str | None, list[BoardItem]]] = {}
    for item in board_items(db, board.id):
        if item.product is None or not item.product.active:
            continue
        zone = (item.product.zone or "").strip() or NO_ZONE
        key = zone.casefold() if zone else None
        if key not in groups:
            groups[key] = (zone, [])
        groups[key][1].append(item)
    here_key = here.casefold() if here else None

    def order(key: str | None) -> tuple[int, str]:
        if key is None:
            return (2, "")
        return (0 if key == here_key else 1, key)

    return ShopPlan(
        current_zone=here,
        groups=[
            ZoneGroup(groups[key][0], groups[key][1], key is not None and key == here_key)
            for key in sorted(groups, key=order)
        ],
    )
