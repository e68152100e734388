"""The support inbox: a member asks the store, staff answer, the thread closes (and may reopen).

A thread is one question and its conversation. What the inbox needs is kept on the thread row so
the queue is one query:

- ``waiting_since`` is when the member's oldest unanswered message was posted; a staff reply
  clears it, the member's next message sets it again. The queue puts threads waiting longer than
  the store's target first, then the longest waiting.
- ``first_response_at`` is the first staff reply (first-response time = it minus ``created_at``);
  ``closed_at`` the last close (resolution time = it minus ``created_at``). A member's reply to a
  closed thread reopens it and clears ``closed_at``.

Notifying the member of a reply is the portal's job (the notifications table is the offers
package's); this module only keeps the conversation. Writes take a ``now`` so tests control time.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from instore.clock import from_iso, to_iso
from instore.db import atomic

# A subject fits one line of the inbox on a tablet; a message is a question, not an essay.
MAX_SUBJECT = 120
MAX_MESSAGE = 2000
# Canned replies are picked from a short list by title.
MAX_CANNED_TITLE = 60
MAX_CANNED_REPLIES = 50
# New threads a member may start per hour: enough for real questions, too few to flood the
# inbox staff read by hand. Replies in an existing thread are not limited.
NEW_THREADS_PER_HOUR = 5
THREAD_RATE_WINDOW = timedelta(hours=1)


class SupportError(ValueError):
    """A support action that cannot be done; the message is meant for the person asking."""


class TooManyThreads(SupportError):
    """The member started ``NEW_THREADS_PER_HOUR`` threads within the last hour."""


@dataclass(frozen=True)
class Thread:
    """One support question and where it stands."""

    id: int
    member_id: int
    subject: str
    status: str  # "open" or "closed"
    assignee_id: int | None
    created_at: str
    waiting_since: str | None
    first_response_at: str | None
    closed_at: str | None
    updated_at: str
    member_name: str = ""
    assignee_name: str | None = None

    @property
    def first_response_time(self) -> timedelta | None:
        """From the question to the first staff reply; None until there is one."""
        return _between(self.created_at, self.first_response_at)

    @property
    def resolution_time(self) -> timedelta | None:
        """From the question to its (last) close; None while open."""
        return _between(self.created_at, self.closed_at)

    def waiting_for(self, now: datetime) -> timedelta | None:
        """How long the member has been waiting for staff; None when staff spoke last."""
        return None if self.waiting_since is None else now - from_iso(self.waiting_since)

    def breaches(self, target: timedelta, now: datetime) -> bool:
        """True when an open thread has waited longer than the store's target."""
        waited = self.waiting_for(now)
        return self.status == "open" and waited is not None and waited > target


@dataclass(frozen=True)
class Message:
    """One message in a thread, from the member or from staff."""

    id: int
    thread_id: int
    author_id: int | None
    from_staff: bool
    body: str
    created_at: str
    author_name: str | None = None


@dataclass(frozen=True)
class CannedReply:
    id: int
    title: str
    body: str


def _between(start: str, end: str | None) -> timedelta | None:
    return None if end is None else from_iso(end) - from_iso(start)


def _clean(text: str, limit: int, what: str) -> str:
    """Trimmed text within ``limit``, or a SupportError saying what is wrong."""
    text = (text or "").strip()
    if not text:
        raise SupportError(f"Write the {what}.")
    if len(text) > limit:
        raise SupportError(f"Keep the {what} under {limit} characters.")
    return text


_THREAD_SELECT = """
    SELECT t.id, t.member_id, t.subject, t.status, t.assignee_id, t.created_at, t.waiting_since,
           t.first_response_at, t.closed_at, t.updated_at, m.display_name, a.display_name
    FROM support_threads AS t
    JOIN members AS m ON m.id = t.member_id
    LEFT JOIN members AS a ON a.id = t.assignee_id
"""


def _thread(row: tuple[Any, ...]) -> Thread:
    return Thread(*row)


def threads_started_since(db: sqlite_utils.Database, member_id: int, since: datetime) -> int:
    """How many threads the member started at or after ``since`` (the rate limit counts these)."""
    row = db.conn.execute(
        "SELECT COUNT(*) FROM support_threads WHERE member_id = ? AND created_at >= ?",
        (member_id, to_iso(since)),
    ).fetchone()
    return int(row[0])


def open_thread(
    db: sqlite_utils.Database, member_id: int, subject: str, body: str, now: datetime
) -> int:
    """Start a thread with the member's first message; returns its id.

    Raises TooManyThreads past ``NEW_THREADS_PER_HOUR`` and SupportError for empty or long text.
    """
    subject = _clean(subject, MAX_SUBJECT, "subject")
    body = _clean(body, MAX_MESSAGE, "question")
    stamp = to_iso(now)
    with atomic(db, "support_open"):
        if threads_started_since(db, member_id, now - THREAD_RATE_WINDOW) >= NEW_THREADS_PER_HOUR:
            raise TooManyThreads(
                f"You have asked {NEW_THREADS_PER_HOUR} questions in the last hour. "
                "Please add to one of them, or ask again later."
            )
        cursor = db.conn.execute(
            """INSERT INTO support_threads (member_id, subject, created_at, waiting_since,
                                            updated_at)
               VALUES (?, ?, ?, ?, ?)""",
            (member_id, subject, stamp, stamp, stamp),
        )
        thread_id = int(cursor.lastrowid or 0)
        _add_message(db, thread_id, member_id, False, body, stamp)
    return thread_id


def _add_message(
    db: sqlite_utils.Database,
    thread_id: int,
    author_id: int | None,
    from_staff: bool,
    body: str,
    stamp: str,
) -> int:
    cursor = db.conn.execute(
        """INSERT INTO support_messages (thread_id, author_id, from_staff, body, created_at)
           VALUES (?, ?, ?, ?, ?)""",
        (thread_id, author_id, int(from_staff), body, stamp),
    )
    return int(cursor.lastrowid or 0)


def get_thread(db: sqlite_utils.Database, thread_id: int) -> Thread | None:
    """One thread by id (staff), or None."""
    row = db.conn.execute(_THREAD_SELECT + " WHERE t.id = ?", (thread_id,)).fetchone()
    return None if row is None else _thread(row)


def member_thread(db: sqlite_utils.Database, thread_id: int, member_id: int) -> Thread | None:
    """The thread if it is this member's own; someone else's reads as missing."""
    thread = get_thread(db, thread_id)
    return thread if thread is not None and thread.member_id == member_id else None


def member_threads(db: sqlite_utils.Database, member_id: int) -> list[Thread]:
    """A member's threads, most recently active first."""
    rows = db.conn.execute(
        _THREAD_SELECT + " WHERE t.member_id = ? ORDER BY t.updated_at DESC, t.id DESC",
        (member_id,),
    ).fetchall()
    return [_thread(row) for row in rows]


def messages(db: sqlite_utils.Database, thread_id: int) -> list[Message]:
    """A thread's conversation, oldest first."""
    rows = db.conn.execute(
        """SELECT s.id, s.thread_id, s.author_id, s.from_staff, s.body, s.created_at,
                  m.display_name
           FROM support_messages AS s LEFT JOIN members AS m ON m.id = s.author_id
           WHERE s.thread_id = ? ORDER BY s.id""",
        (thread_id,),
    ).fetchall()
    return [Message(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6]) for r in rows]


def _require(db: sqlite_utils.Database, thread_id: int) -> Thread:
    thread = get_thread(db, thread_id)
    if thread is None:
        raise SupportError("That support thread does not exist.")
    return thread


def member_reply(
    db: sqlite_utils.Database, thread_id: int, member_id: int, body: str, now: datetime
) -> int:
    """Add the member's message; a closed thread reopens and waits for staff again."""
    body = _clean(body, MAX_MESSAGE, "message")
    stamp = to_iso(now)
    with atomic(db, "support_member_reply"):
        thread = _require(db, thread_id)
        if thread.member_id != member_id:
            raise SupportError("That support thread does not exist.")
        message_id = _add_message(db, thread_id, member_id, False, body, stamp)
        db.conn.execute(
            """UPDATE support_threads SET status = 'open', closed_at = NULL,
                   waiting_since = COALESCE(waiting_since, ?), updated_at = ?
               WHERE id = ?""",
            (stamp, stamp, thread_id),
        )
    return message_id


def staff_reply(
    db: sqlite_utils.Database, thread_id: int, staff_id: int, body: str, now: datetime
) -> int:
    """Add a staff answer: the member is no longer waiting; the first one sets the FRT."""
    body = _clean(body, MAX_MESSAGE, "reply")
    stamp = to_iso(now)
    with atomic(db, "support_staff_reply"):
        _require(db, thread_id)
        message_id = _add_message(db, thread_id, staff_id, True, body, stamp)
        db.conn.execute(
            """UPDATE support_threads SET waiting_since = NULL,
                   first_response_at = COALESCE(first_response_at, ?), updated_at = ?
               WHERE id = ?""",
            (stamp, stamp, thread_id),
        )
    return message_id


def assign(
    db: sqlite_utils.Database, thread_id: int, assignee_id: int | None, now: datetime
) -> None:
    """Give the thread to one staff member (None: back to the shared inbox)."""
    with atomic(db, "support_assign"):
        _require(db, thread_id)
        db.conn.execute(
            "UPDATE support_threads SET assignee_id = ?, updated_at = ? WHERE id = ?",
            (assignee_id, to_iso(now), thread_id),
        )


def close(db: sqlite_utils.Database, thread_id: int, now: datetime) -> None:
    """Close the thread: it leaves the queue and its resolution time is fixed (until reopened)."""
    stamp = to_iso(now)
    with atomic(db, "support_close"):
        thread = _require(db, thread_id)
        if thread.status == "closed":
            raise SupportError("That thread is already closed.")
        db.conn.execute(
            """UPDATE support_threads SET status = 'closed', closed_at = ?, waiting_since = NULL,
                   updated_at = ?
               WHERE id = ?""",
            (stamp, stamp, thread_id),
        )


def inbox(db: sqlite_utils.Database, target: timedelta, now: datetime) -> list[Thread]:
    """Open threads: those waiting past ``target`` first, then the longest waiting, then the
    ones staff answered last (oldest activity first)."""
    rows = db.conn.execute(
        _THREAD_SELECT + " WHERE t.status = 'open'",
    ).fetchall()
    threads = [_thread(row) for row in rows]

    def order(thread: Thread) -> tuple[int, int, str, int]:
        waiting = thread.waiting_since is not None
        return (
            0 if thread.breaches(target, now) else 1,
            0 if waiting else 1,
            thread.waiting_since or thread.updated_at,
            thread.id,
        )

    return sorted(threads, key=order)


def median_times(db: sqlite_utils.Database) -> tuple[timedelta | None, timedelta | None]:
    """The median first-response and resolution times over every thread that has one."""
    rows = db.conn.execute(
        "SELECT created_at, first_response_at, closed_at FROM support_threads"
    ).fetchall()
    first = [
        (from_iso(answered) - from_iso(created)).total_seconds()
        for created, answered, _closed in rows
        if answered is not None
    ]
    resolved = [
        (from_iso(closed) - from_iso(created)).total_seconds()
        for created, _answered, closed in rows
        if closed is not None
    ]
    return (
        timedelta(seconds=statistics.median(first)) if first else None,
        timedelta(seconds=statistics.median(resolved)) if resolved else None,
    )


def canned_replies(db: sqlite_utils.Database) -> list[CannedReply]:
    """The store's canned replies, by title."""
    rows = db.conn.execute(
        "SELECT id, title, body FROM support_canned_replies ORDER BY title COLLATE NOCASE"
    ).fetchall()
    return [CannedReply(*row) for row in rows]


def get_canned_reply(db: sqlite_utils.Database, canned_id: int) -> CannedReply | None:
    row = db.conn.execute(
        "SELECT id, title, body FROM support_canned_replies WHERE id = ?", (canned_id,)
    ).fetchone()
    return None if row is None else CannedReply(*row)


def add_canned_reply(db: sqlite_utils.Database, title: str, body: str, now: datetime) -> int:
    """Save a reusable answer; titles are unique so the picker is unambiguous."""
    title = _clean(title, MAX_CANNED_TITLE, "title")
    body = _clean(body, MAX_MESSAGE, "reply")
    with atomic(db, "support_canned_add"):
        (count,) = db.conn.execute("SELECT COUNT(*) FROM support_canned_replies").fetchone()
        if count >= MAX_CANNED_REPLIES:
            raise SupportError(
                f"There are already {MAX_CANNED_REPLIES} canned replies; delete one first."
            )
        if db.conn.execute(
            "SELECT 1 FROM support_canned_replies WHERE title = ?", (title,)
        ).fetchone():
            raise SupportError("A canned reply with that title already exists.")
        cursor = db.conn.execute(
            "INSERT INTO support_canned_replies (title, body, created_at) VALUES (?, ?, ?)",
            (title, body, to_iso(now)),
        )
    return int(cursor.lastrowid or 0)


def delete_canned_reply(db: sqlite_utils.Database, canned_id: int) -> bool:
    """Remove a canned reply; False if there was none with that id."""
    cursor = db.conn.execute("DELETE FROM support_canned_replies WHERE id = ?", (canned_id,))
    return cursor.rowcount > 0
