"""Comments and reactions on boards: what others say about a board, and who is told.

- Anyone who may see a board (``boards.can_view``) may comment on it and react to it; a member
  with a block either way with the owner cannot see it, so cannot do either.
- One level of replies: a reply answers a top-level comment, never another reply, so a thread
  stays readable on a phone. A reply to a comment the member cannot see (held, hidden, or by
  someone with a block between them) is refused as if the comment did not exist.
- A comment is screened like every text (``community.screening``); its author edits it (an edit
  takes ``status_after_edit``) and deletes it; the board's owner may delete any comment on their
  board. Deleting a comment deletes its replies (the schema's cascade): a reply alone reads as
  an answer to nothing.
- Who reads what: a visible comment is shown to whoever sees the board, except across a block;
  any other status only to its author. A thread whose first comment a viewer may not see still
  shows the replies they may see, under a "not shown" line, so others' words do not vanish.
  ``shown_to`` says it for one comment; ``_shown_sql`` says the same in SQL, so a page of
  threads is chosen and read in a few statements, not one block check per comment.
- A board page shows ``COMMENT_THREADS_SHOWN`` threads, the newest, oldest first as they were
  written; earlier and newer ones are pages by comment id (``before`` / ``after``, not OFFSET:
  a page stays put while new comments arrive), and ``around`` is the page that holds a comment
  a link points at.
- ``news_for`` names who is told about a published comment (the owner of the board, or the
  author of the comment replied to), never the author themself, nobody across a block, nobody
  who could not open the board.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from community.boards import Board, BoardError, BoardNotFound, can_view, get_board, visible_board
from community.content import VISIBLE, status_after_edit
from community.friends import blockers_between
from community.schema_social import REACTIONS
from community.screening import Limits, record, screen
from instore.clock import to_iso
from instore.db import atomic

# A comment is a few sentences; longer thoughts belong on a board of one's own.
MAX_COMMENT = 1000
# Threads (a top-level comment with its replies) a board page shows at once: a long scroll on a
# phone. A busy board has hundreds, and rendering them all was most of its page's time; the
# rest are an "Earlier comments" tap away.
COMMENT_THREADS_SHOWN = 30


@dataclass(frozen=True)
class Comment:
    """One comment; ``author_id`` None is a member who erased their account and left it."""

    id: int
    board_id: int
    author_id: int | None
    author_name: str | None
    parent_id: int | None
    body: str
    status: str
    created_at: str
    edited_at: str | None


@dataclass(frozen=True)
class CommentThread:
    """A top-level comment (None: not shown to this viewer) and the replies they may see."""

    comment: Comment | None
    replies: list[Comment] = field(default_factory=list)


@dataclass(frozen=True)
class CommentPage:
    """One page of a board's threads, oldest first; ``earlier`` is the ``before`` of the page
    of earlier threads and ``newer`` the ``after`` of the newer ones (None: there are none)."""

    threads: list[CommentThread]
    earlier: int | None = None
    newer: int | None = None


@dataclass(frozen=True)
class News:
    """Whom to tell about a published comment, and as what ("comment" or "reply")."""

    member_id: int
    what: str
    board: Board
    comment: Comment


_SELECT = """
    SELECT c.id, c.board_id, c.author_id, m.display_name, c.parent_id, c.body, c.status,
           c.created_at, c.edited_at
    FROM board_comments AS c LEFT JOIN members AS m ON m.id = c.author_id
"""


def _comment(row: tuple[Any, ...]) -> Comment:
    return Comment(*row)


def _body(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise BoardError("Write your comment.")
    if len(text) > MAX_COMMENT:
        raise BoardError(f"Keep your comment under {MAX_COMMENT} characters.")
    return text


def get_comment(db: sqlite_utils.Database, comment_id: int) -> Comment | None:
    """One comment by id, whoever asks (moderation, the checks below)."""
    row = db.conn.execute(_SELECT + " WHERE c.id = ?", (comment_id,)).fetchone()
    return None if row is None else _comment(row)


def shown_to(db: sqlite_utils.Database, comment: Comment, viewer_id: int) -> bool:
    """Whether the viewer sees this comment (on a board they may see; see the module docstring)."""
    if comment.author_id == viewer_id:
        return True
    if comment.status != VISIBLE:
        return False
    return comment.author_id is None or not blockers_between(db, comment.author_id, viewer_id)


# The members with a block either way with the viewer (bound: :viewer); SQLite reads it once per
# statement, however many comments ask.
_BLOCKED = """(SELECT blocked_id FROM blocks WHERE blocker_id = :viewer
    UNION ALL SELECT blocker_id FROM blocks WHERE blocked_id = :viewer)"""


def _shown_sql(alias: str) -> str:
    """``shown_to`` in SQL, for the comment ``alias`` and the viewer ``:viewer``."""
    return (
        f"({alias}.author_id = :viewer OR ({alias}.status = '{VISIBLE}' "
        f"AND ({alias}.author_id IS NULL OR {alias}.author_id NOT IN {_BLOCKED})))"
    )


# The board's top-level comments whose thread the viewer sees: the comment, or a reply to it
# (bound: :board, :viewer).
_THREADS = f"""SELECT c.id FROM board_comments AS c
    WHERE c.board_id = :board AND c.parent_id IS NULL
    AND ({_shown_sql("c")} OR EXISTS (SELECT 1 FROM board_comments AS r
                                     WHERE r.parent_id = c.id AND {_shown_sql("r")}))"""  # noqa: S608


def _thread_ids(
    db: sqlite_utils.Database,
    board_id: int,
    viewer_id: int,
    limit: int,
    before: int | None = None,
    after: int | None = None,
) -> list[int]:
    """Ids of up to ``limit`` threads the viewer sees: the newest (below ``before`` if given,
    newest first), or the oldest above ``after`` (oldest first)."""
    values = {"board": board_id, "viewer": viewer_id, "limit": limit}
    if after is not None:
        sql = f"{_THREADS} AND c.id > :after ORDER BY c.id LIMIT :limit"
        values["after"] = after
    elif before is not None:
        sql = f"{_THREADS} AND c.id < :before ORDER BY c.id DESC LIMIT :limit"
        values["before"] = before
    else:
        sql = f"{_THREADS} ORDER BY c.id DESC LIMIT :limit"
    return [int(row[0]) for row in db.conn.execute(sql, values)]


def _threads(db: sqlite_utils.Database, ids: list[int], viewer_id: int) -> list[CommentThread]:
    """These threads (ascending ids) with the replies the viewer sees, in one statement."""
    rows = db.conn.execute(
        f"""SELECT c.id, c.board_id, c.author_id, m.display_name, c.parent_id, c.body,
                   c.status, c.created_at, c.edited_at, {_shown_sql("c")}
            FROM board_comments AS c LEFT JOIN members AS m ON m.id = c.author_id
            WHERE c.id IN (SELECT value FROM json_each(:ids))
               OR c.parent_id IN (SELECT value FROM json_each(:ids))
            ORDER BY c.id""",  # noqa: S608 - fixed SQL, values bound
        {"ids": json.dumps(ids), "viewer": viewer_id},
    ).fetchall()
    threads = {thread_id: CommentThread(None) for thread_id in ids}
    for *values, shown in rows:
        comment = _comment(tuple(values))
        if not shown:
            continue
        if comment.parent_id is None:
            threads[comment.id] = CommentThread(comment, threads[comment.id].replies)
        else:
            threads[comment.parent_id].replies.append(comment)
    return [thread for thread in threads.values() if thread.comment is not None or thread.replies]


def thread_of(db: sqlite_utils.Database, board_id: int, comment_id: int) -> int | None:
    """The id of the thread (its top-level comment) the comment is in, if it is on this board."""
    row = db.conn.execute(
        "SELECT COALESCE(parent_id, id) FROM board_comments WHERE id = ? AND board_id = ?",
        (comment_id, board_id),
    ).fetchone()
    return None if row is None else int(row[0])


def _thread_on_latest_page(
    db: sqlite_utils.Database, board_id: int, viewer_id: int, thread: int
) -> bool:
    """Whether fewer than a page of the threads the viewer sees are newer than ``thread``."""
    newer = _thread_ids(db, board_id, viewer_id, COMMENT_THREADS_SHOWN, after=thread)
    return len(newer) < COMMENT_THREADS_SHOWN


def on_latest_page(
    db: sqlite_utils.Database, board_id: int, comment_id: int, viewer_id: int
) -> bool:
    """Whether the board's first page, as this viewer sees it, holds the comment's thread (or
    the comment is not there to find): a link to it needs no ``around`` then."""
    thread = thread_of(db, board_id, comment_id)
    return thread is None or _thread_on_latest_page(db, board_id, viewer_id, thread)


def comment_page(
    db: sqlite_utils.Database,
    board: Board,
    viewer_id: int,
    *,
    before: int | None = None,
    after: int | None = None,
    around: int | None = None,
) -> CommentPage:
    """A page of the board's threads as the viewer sees them, oldest first, replies in order.

    The newest ``COMMENT_THREADS_SHOWN`` threads; or those before the thread ``before``; or
    after the thread ``after``; or, for ``around`` (a comment a link points at), the latest
    page if it holds that comment's thread, else the page that starts with it. An id that leads
    nowhere (no such comment, past the last thread) reads as the latest page.
    """
    shown = COMMENT_THREADS_SHOWN
    if around is not None:
        thread = thread_of(db, board.id, around)
        if thread is not None and not _thread_on_latest_page(db, board.id, viewer_id, thread):
            after = thread - 1
    if after is not None:
        ids = _thread_ids(db, board.id, viewer_id, shown + 1, after=after)
        if ids:
            newer = ids[shown - 1] if len(ids) > shown else None
            ids = ids[:shown]
            earlier = bool(_thread_ids(db, board.id, viewer_id, 1, before=ids[0]))
            return CommentPage(_threads(db, ids, viewer_id), ids[0] if earlier else None, newer)
    elif before is not None:
        ids = _thread_ids(db, board.id, viewer_id, shown + 1, before=before)
        if ids:
            earlier_id = ids[shown - 1] if len(ids) > shown else None
            ids = sorted(ids[:shown])
            newer = bool(_thread_ids(db, board.id, viewer_id, 1, after=ids[-1]))
            return CommentPage(_threads(db, ids, viewer_id), earlier_id, ids[-1] if newer else None)
    ids = _thread_ids(db, board.id, viewer_id, shown + 1)
    earlier_id = ids[shown - 1] if len(ids) > shown else None
    return CommentPage(_threads(db, sorted(ids[:shown]), viewer_id), earlier_id)


def comment_threads(db: sqlite_utils.Database, board: Board, viewer_id: int) -> list[CommentThread]:
    """The board's latest page of comments as the viewer sees them: the newest
    ``COMMENT_THREADS_SHOWN`` threads, oldest first, replies in order."""
    return comment_page(db, board, viewer_id).threads


def add_comment(
    db: sqlite_utils.Database,
    board_id: int,
    author_id: int,
    body: str,
    now: datetime,
    limits: Limits,
    parent_id: int | None = None,
) -> Comment:
    """Comment on a board, or reply to a top-level comment on it; returns the stored comment.

    Raises ``BoardNotFound`` (no board the author may see, or no such comment to reply to),
    BoardError (empty, too long, a reply to a reply) or screening's ``Refused``.
    """
    body = _body(body)
    with atomic(db, "board_comment_add"):
        board = visible_board(db, board_id, author_id)
        if parent_id is not None:
            parent = get_comment(db, parent_id)
            if parent is None or parent.board_id != board.id or not shown_to(db, parent, author_id):
                raise BoardNotFound("That comment does not exist.")
            if parent.parent_id is not None:
                raise BoardError("You can reply to a comment, not to a reply.")
        screening = screen(db, author_id, {"body": body}, now, limits)
        cursor = db.conn.execute(
            """INSERT INTO board_comments (board_id, author_id, parent_id, body, status,
                                           created_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (
                board.id,
                author_id,
                parent_id,
                screening.texts["body"],
                screening.status,
                to_iso(now),
            ),
        )
        comment_id = int(cursor.lastrowid or 0)
        record(db, "comment", comment_id, screening, now)
        stored = get_comment(db, comment_id)
    assert stored is not None
    return stored


def _own_comment(
    db: sqlite_utils.Database, board_id: int, comment_id: int, author_id: int
) -> Comment:
    comment = get_comment(db, comment_id)
    if comment is None or comment.board_id != board_id or comment.author_id != author_id:
        raise BoardNotFound("That comment does not exist.")
    return comment


def edit_comment(
    db: sqlite_utils.Database,
    board_id: int,
    comment_id: int,
    author_id: int,
    body: str,
    now: datetime,
    limits: Limits,
) -> Comment:
    """The author rewrites their comment on a board they still see; returns it as stored.

    A held, hidden or rejected comment goes back to the review queue (``status_after_edit``).
    """
    body = _body(body)
    with atomic(db, "board_comment_edit"):
        visible_board(db, board_id, author_id)
        comment = _own_comment(db, board_id, comment_id, author_id)
        screening = screen(db, author_id, {"body": body}, now, limits)
        db.conn.execute(
            "UPDATE board_comments SET body = ?, status = ?, edited_at = ? WHERE id = ?",
            (
                screening.texts["body"],
                status_after_edit(comment.status, screening.status),
                to_iso(now),
                comment.id,
            ),
        )
        record(db, "comment", comment.id, screening, now)
        stored = get_comment(db, comment.id)
    assert stored is not None
    return stored


def can_delete(board: Board, comment: Comment, member_id: int) -> bool:
    """The comment's author, or the owner of the board it is on."""
    return comment.board_id == board.id and member_id in (comment.author_id, board.owner_id)


def delete_comment(
    db: sqlite_utils.Database, board_id: int, comment_id: int, member_id: int
) -> None:
    """Delete a comment (and its replies) as its author or as the board's owner.

    The author may delete theirs even from a board they can no longer open (unfriended since):
    their own words stay theirs to take back. Anyone else reads as "no such comment".
    """
    with atomic(db, "board_comment_delete"):
        board = get_board(db, board_id)
        comment = get_comment(db, comment_id)
        if board is None or comment is None or not can_delete(board, comment, member_id):
            raise BoardNotFound("That comment does not exist.")
        db.conn.execute(
            """DELETE FROM flags WHERE item_kind = 'comment'
               AND item_id IN (SELECT id FROM board_comments WHERE id = ? OR parent_id = ?)""",
            (comment.id, comment.id),
        )
        db.conn.execute("DELETE FROM board_comments WHERE id = ?", (comment.id,))


def news_for(db: sqlite_utils.Database, comment_id: int) -> News | None:
    """Who should be told about this comment now that it is published, or None.

    A top-level comment tells the board's owner ("comment"); a reply tells the author of the
    comment it answers ("reply"). Nobody is told while the comment is not visible, about their
    own words, across a block with the author, or when they could not open the board.
    """
    comment = get_comment(db, comment_id)
    if comment is None or comment.status != VISIBLE or comment.author_id is None:
        return None
    board = get_board(db, comment.board_id)
    if board is None:
        return None
    if comment.parent_id is None:
        recipient, what = board.owner_id, "comment"
    else:
        parent = get_comment(db, comment.parent_id)
        if parent is None or parent.author_id is None:
            return None
        recipient, what = parent.author_id, "reply"
    if recipient == comment.author_id or blockers_between(db, recipient, comment.author_id):
        return None
    if not can_view(db, board, recipient):
        return None
    return News(recipient, what, board, comment)


# -- reactions -----------------------------------------------------------------------------------


def toggle_reaction(
    db: sqlite_utils.Database, board_id: int, member_id: int, reaction: str, now: datetime
) -> bool:
    """Add the member's reaction to a board they may see, or take it back; True when it is on."""
    if reaction not in REACTIONS:
        raise BoardError("That is not a reaction.")
    with atomic(db, "board_react"):
        board = visible_board(db, board_id, member_id)
        removed = db.conn.execute(
            "DELETE FROM board_reactions WHERE board_id = ? AND member_id = ? AND reaction = ?",
            (board.id, member_id, reaction),
        ).rowcount
        if removed:
            return False
        try:
            db.conn.execute(
                """INSERT INTO board_reactions (board_id, member_id, reaction, created_at)
                   VALUES (?, ?, ?, ?)""",
                (board.id, member_id, reaction, to_iso(now)),
            )
        except sqlite3.IntegrityError:
            raise BoardNotFound() from None
    return True


# Reactors with no block either way with the board's owner (bound: owner id twice).
_REACTOR_UNBLOCKED = """NOT EXISTS (SELECT 1 FROM blocks
    WHERE (blocker_id = ? AND blocked_id = r.member_id)
       OR (blocker_id = r.member_id AND blocked_id = ?))"""


def reaction_counts(db: sqlite_utils.Database, board: Board) -> dict[str, int]:
    """How many members gave each reaction (every kind, 0 included), blocked reactors left out."""
    rows = db.conn.execute(
        f"""SELECT r.reaction, COUNT(*) FROM board_reactions AS r
            WHERE r.board_id = ? AND {_REACTOR_UNBLOCKED} GROUP BY r.reaction""",  # noqa: S608
        (board.id, board.owner_id, board.owner_id),
    ).fetchall()
    counts = dict.fromkeys(REACTIONS, 0)
    counts.update({str(kind): int(count) for kind, count in rows})
    return counts


def my_reactions(db: sqlite_utils.Database, board_id: int, member_id: int) -> frozenset[str]:
    """The reactions this member has given the board."""
    rows = db.conn.execute(
        "SELECT reaction FROM board_reactions WHERE board_id = ? AND member_id = ?",
        (board_id, member_id),
    ).fetchall()
    return frozenset(str(row[0]) for row in rows)


def reactors(db: sqlite_utils.Database, board: Board, viewer_id: int) -> dict[str, list[str]]:
    """Who gave each reaction, by display name, earliest first; only the owner may know.

    Anyone else gets an empty mapping: reactions are a note to the owner, not a public list.
    """
    if viewer_id != board.owner_id:
        return {}
    rows = db.conn.execute(
        f"""SELECT r.reaction, m.display_name FROM board_reactions AS r
            JOIN members AS m ON m.id = r.member_id
            WHERE r.board_id = ? AND {_REACTOR_UNBLOCKED}
            ORDER BY r.created_at, r.member_id""",  # noqa: S608
        (board.id, board.owner_id, board.owner_id),
    ).fetchall()
    found: dict[str, list[str]] = {kind: [] for kind in REACTIONS}
    for kind, name in rows:
        found[str(kind)].append(str(name))
    return found
