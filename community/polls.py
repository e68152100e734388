"""Staff polls ("which colour should we stock?"): members vote, everyone sees the results after.

- Staff write the question and 2 to 8 answers, optionally with a closing time; they may close a
  poll early or delete it. Staff text is not screened (see ``community.feedback``).
- A member has one vote per poll (the table's key). Like Discourse, they may change it while the
  poll is open: a vote is a choice, not a one-shot form, and changing it still counts one person
  once. A closed poll (closed by hand, or past its closing time) refuses votes.
- Results (votes and percent per answer) show to a member once they have voted or the poll has
  closed, so the early numbers do not sway the rest; the console always shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from community.feedback import FeedbackError, NotFound
from instore.clock import from_iso, to_iso
from instore.db import atomic

# A question is one line on a phone; an answer is a few words a radio button can carry.
MAX_QUESTION = 200
MAX_OPTION = 80
# Fewer than two answers is not a choice; more than eight no one reads on a phone.
MIN_OPTIONS, MAX_OPTIONS = 2, 8
# The member list shows this many polls, newest first: old ones are history, not news.
POLLS_LISTED = 50


class PollClosed(FeedbackError):
    """The poll no longer takes votes."""


@dataclass(frozen=True)
class PollOption:
    id: int
    label: str
    votes: int


@dataclass(frozen=True)
class Poll:
    id: int
    question: str
    created_at: str
    closes_at: str | None
    closed_at: str | None
    options: tuple[PollOption, ...]
    my_vote: int | None  # the reader's option id, if they voted

    @property
    def total(self) -> int:
        return sum(option.votes for option in self.options)

    def percent(self, option: PollOption) -> int:
        """The option's share of the votes in whole percent (0 with no votes yet)."""
        return round(100 * option.votes / self.total) if self.total else 0

    def is_open(self, now: datetime) -> bool:
        if self.closed_at is not None:
            return False
        return self.closes_at is None or from_iso(self.closes_at) > now

    def shows_results(self, now: datetime) -> bool:
        """Whether a member sees the counts: once they voted, or once the poll closed."""
        return self.my_vote is not None or not self.is_open(now)


def check_poll(question: str, options: Iterable[str]) -> tuple[str, list[str]]:
    """The question and answers cleaned up (blank answers dropped); FeedbackError says why not."""
    question = question.strip()
    if not question:
        raise FeedbackError("Write the question.")
    if len(question) > MAX_QUESTION:
        raise FeedbackError(f"Keep the question under {MAX_QUESTION} characters.")
    cleaned = [option.strip() for option in options if option.strip()]
    if not MIN_OPTIONS <= len(cleaned) <= MAX_OPTIONS:
        raise FeedbackError(f"Give {MIN_OPTIONS} to {MAX_OPTIONS} answers, one per line.")
    for option in cleaned:
        if len(option) > MAX_OPTION:
            raise FeedbackError(f"Keep each answer under {MAX_OPTION} characters.")
    if len({option.casefold() for option in cleaned}) < len(cleaned):
        raise FeedbackError("Two answers are the same; make each one different.")
    return question, cleaned


def create_poll(
    db: sqlite_utils.Database,
    question: str,
    options: Iterable[str],
    closes_at: datetime | None,
    staff_id: int,
    now: datetime,
) -> int:
    """Open a poll; FeedbackError for bad text or a closing time that has already passed."""
    question, cleaned = check_poll(question, options)
    if closes_at is not None and closes_at <= now:
        raise FeedbackError("The closing time has already passed; pick a later one.")
    with atomic(db, "feedback_poll"):
        cursor = db.conn.execute(
            """INSERT INTO polls (question, created_by, created_at, closes_at)
               VALUES (?, ?, ?, ?)""",
            (question, staff_id, to_iso(now), None if closes_at is None else to_iso(closes_at)),
        )
        poll_id = int(cursor.lastrowid or 0)
        db.conn.executemany(
            "INSERT INTO poll_options (poll_id, label, position) VALUES (?, ?, ?)",
            [(poll_id, label, position) for position, label in enumerate(cleaned)],
        )
    return poll_id


def _polls(db: sqlite_utils.Database, rows: list[Any], viewer_id: int | None) -> list[Poll]:
    """Polls from their rows, with each option's votes and the viewer's vote."""
    ids = [int(row[0]) for row in rows]
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    options: dict[int, list[PollOption]] = {poll_id: [] for poll_id in ids}
    for poll_id, option_id, label, votes in db.conn.execute(
        f"""SELECT o.poll_id, o.id, o.label,
                   (SELECT COUNT(*) FROM poll_votes v WHERE v.option_id = o.id)
            FROM poll_options o WHERE o.poll_id IN ({marks})
            ORDER BY o.position, o.id""",  # noqa: S608 - placeholders only
        ids,
    ).fetchall():
        options[int(poll_id)].append(PollOption(int(option_id), str(label), int(votes)))
    mine: dict[int, int] = {}
    if viewer_id is not None:
        mine = {
            int(poll_id): int(option_id)
            for poll_id, option_id in db.conn.execute(
                f"""SELECT poll_id, option_id FROM poll_votes
                    WHERE member_id = ? AND poll_id IN ({marks})""",  # noqa: S608 - placeholders
                [viewer_id, *ids],
            ).fetchall()
        }
    return [
        Poll(
            id=int(row[0]),
            question=str(row[1]),
            created_at=str(row[2]),
            closes_at=row[3],
            closed_at=row[4],
            options=tuple(options[int(row[0])]),
            my_vote=mine.get(int(row[0])),
        )
        for row in rows
    ]


_POLL_COLUMNS = "id, question, created_at, closes_at, closed_at"


def get_poll(db: sqlite_utils.Database, poll_id: int, viewer_id: int | None = None) -> Poll | None:
    rows = db.conn.execute(
        f"SELECT {_POLL_COLUMNS} FROM polls WHERE id = ?",  # noqa: S608 - fixed columns
        (poll_id,),
    ).fetchall()
    found = _polls(db, rows, viewer_id)
    return found[0] if found else None


def list_polls(
    db: sqlite_utils.Database, viewer_id: int | None, now: datetime, limit: int = POLLS_LISTED
) -> list[Poll]:
    """The newest polls, the open ones first."""
    rows = db.conn.execute(
        f"""SELECT {_POLL_COLUMNS} FROM polls
            ORDER BY (closed_at IS NULL AND (closes_at IS NULL OR closes_at > ?)) DESC, id DESC
            LIMIT ?""",  # noqa: S608 - fixed columns
        (to_iso(now), limit),
    ).fetchall()
    return _polls(db, rows, viewer_id)


def vote(
    db: sqlite_utils.Database, poll_id: int, option_id: int, member_id: int, now: datetime
) -> None:
    """Record (or change) the member's vote; PollClosed once closed, NotFound for no such poll."""
    with atomic(db, "feedback_vote"):
        poll = get_poll(db, poll_id)
        if poll is None:
            raise NotFound("There is no such poll.")
        if not poll.is_open(now):
            raise PollClosed("This poll is closed, so it takes no more votes.")
        if option_id not in {option.id for option in poll.options}:
            raise FeedbackError("Choose one of the answers.")
        db.conn.execute(
            """INSERT INTO poll_votes (poll_id, option_id, member_id, created_at)
               VALUES (?, ?, ?, ?)
               ON CONFLICT (poll_id, member_id) DO UPDATE SET
                 option_id = excluded.option_id, created_at = excluded.created_at""",
            (poll_id, option_id, member_id, to_iso(now)),
        )


def close_poll(db: sqlite_utils.Database, poll_id: int, now: datetime) -> bool:
    """Stop the votes now; False when the poll was not open (or does not exist)."""
    with atomic(db, "feedback_poll_close"):
        poll = get_poll(db, poll_id)
        if poll is None or not poll.is_open(now):
            return False
        db.conn.execute("UPDATE polls SET closed_at = ? WHERE id = ?", (to_iso(now), poll_id))
    return True


def delete_poll(db: sqlite_utils.Database, poll_id: int) -> bool:
    """Remove the poll with its answers and votes."""
    return db.conn.execute("DELETE FROM polls WHERE id = ?", (poll_id,)).rowcount > 0
