"""The store's watched words: what staff add, remove and list (screening applies them).

A word (or a phrase of a few words) is kept lower-case with single spaces, which is how
``community.screening`` matches it (any case, any spacing); two spellings of the same word would
be one rule written twice, so the word is unique. Its action is one of Discourse's: block,
censor, require approval, flag.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from community.schema_social import WATCHED_WORD_ACTIONS
from instore.clock import to_iso
from instore.db import transaction

# Long enough for a short phrase, short enough to be a word and not a sentence.
MAX_WORD = 60


class WatchedWordError(ValueError):
    """A watched word that cannot be saved; the message says what to change."""


@dataclass(frozen=True)
class WatchedWord:
    id: int
    word: str
    action: str
    created_by: int | None
    created_by_name: str | None
    created_at: str


def normalize_word(text: str) -> str:
    """The word as it is stored and matched: trimmed, lower-case, single spaces."""
    return " ".join(text.split()).lower()


def clean_word(text: str) -> str:
    word = normalize_word(text)
    if not word:
        raise WatchedWordError("Write the word or phrase to watch for.")
    if len(word) > MAX_WORD:
        raise WatchedWordError(f"Keep the word under {MAX_WORD} characters.")
    return word


def list_words(db: sqlite_utils.Database) -> list[WatchedWord]:
    """Every watched word, alphabetically."""
    rows = db.query(
        """SELECT w.*, m.display_name AS created_by_name FROM watched_words w
           LEFT JOIN members m ON m.id = w.created_by ORDER BY w.word"""
    )
    return [WatchedWord(**row) for row in rows]


def get_word(db: sqlite_utils.Database, word_id: int) -> WatchedWord | None:
    rows = list(
        db.query(
            """SELECT w.*, m.display_name AS created_by_name FROM watched_words w
               LEFT JOIN members m ON m.id = w.created_by WHERE w.id = ?""",
            [word_id],
        )
    )
    return WatchedWord(**rows[0]) if rows else None


def add_word(
    db: sqlite_utils.Database, text: str, action: str, created_by: int | None, now: datetime
) -> int:
    """Watch for ``text`` with ``action``; the new row's id."""
    word = clean_word(text)
    if action not in WATCHED_WORD_ACTIONS:
        raise WatchedWordError("Choose what happens to a post with this word.")
    try:
        with transaction(db):
            cursor = db.conn.execute(
                """INSERT INTO watched_words (word, action, created_by, created_at)
                   VALUES (?, ?, ?, ?)""",
                (word, action, created_by, to_iso(now)),
            )
    except sqlite3.IntegrityError:
        # The UNIQUE constraint is the race-free "already watched" check.
        raise WatchedWordError(
            f"“{word}” is already watched. Remove it first to change it."
        ) from None
    return int(cursor.lastrowid or 0)


def remove_word(db: sqlite_utils.Database, word_id: int) -> WatchedWord | None:
    """Stop watching for the word; what was removed, or None when it was not there."""
    with transaction(db):
        found = get_word(db, word_id)
        if found is not None:
            db.conn.execute("DELETE FROM watched_words WHERE id = ?", (word_id,))
    return found
