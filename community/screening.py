"""What happens to text a member writes before anyone else sees it.

Every community write (a board, a comment, a review, a suggestion, a profile) goes through
``screen`` before it is stored, and ``record`` after, in the same transaction:

1. a silenced or suspended member cannot post, and a new member is held to a few posts a minute
   and no links (``Refused``: the page shows the sentence and keeps what they typed);
2. the store's watched words: ``block`` refuses the text saying which word, ``censor`` masks
   the word, ``require_approval`` holds the item for review, ``flag`` shows it but queues it;
3. the machine score (alt-profanity-check): at or above the configured percent the item is held
   for a person to decide — the model is too often wrong to refuse anything on its own.

The limits come from the ``[community]`` settings, passed in as ``Limits`` so this module never
reads configuration itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlite_utils

from community.content import CONTENT_KINDS, HELD, VISIBLE
from instore.clock import from_iso, to_iso

# What a censored word becomes (Discourse shows the same blocks).
CENSOR_MASK = "■■■"
# A link as spammers write them: a scheme, or www., or a bare domain with a common ending.
LINK = re.compile(
    r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|net|org|info|biz|ru|cn|top|xyz|io|ly)\b", re.I
)
# Every member, however old, posts at most this many items a minute: no person types faster.
POSTS_PER_MINUTE = 10
# System flags (not a member's) say why the item was queued.
REASON_WATCHED_WORD = "watched_word"
REASON_MACHINE = "machine"


class Refused(ValueError):
    """The text cannot be posted as it is; the message tells the member what to change."""


@dataclass(frozen=True)
class Limits:
    """The ``[community]`` settings screening follows."""

    machine_hold_percent: int = 80
    new_member_days: int = 3
    new_member_posts_per_minute: int = 3
    new_member_links: int = 0

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Limits:
        return cls(
            machine_hold_percent=section["machine_hold_percent"],
            new_member_days=section["new_member_days"],
            new_member_posts_per_minute=section["new_member_posts_per_minute"],
            new_member_links=section["new_member_links"],
        )


@dataclass(frozen=True)
class Screening:
    """The text as it will be stored, the status it starts with, and why it was queued."""

    texts: dict[str, str]
    status: str
    reasons: tuple[tuple[str, str], ...] = ()  # (flag reason, note) for the review queue

    @property
    def queued(self) -> bool:
        return bool(self.reasons)


def standing_sanction(db: sqlite_utils.Database, member_id: int, now: datetime) -> str | None:
    """'suspend' or 'silence' when one is in force for the member, else None."""
    row = db.conn.execute(
        """SELECT kind FROM member_sanctions
           WHERE member_id = ? AND kind IN ('silence', 'suspend') AND lifted_at IS NULL
             AND starts_at <= ? AND (ends_at IS NULL OR ends_at > ?)
           ORDER BY kind = 'suspend' DESC LIMIT 1""",
        (member_id, to_iso(now), to_iso(now)),
    ).fetchone()
    return str(row[0]) if row else None


def posts_since(db: sqlite_utils.Database, member_id: int, since: datetime) -> int:
    """Items the member created since ``since``, of every kind that has a creation time."""
    total = 0
    for kind in CONTENT_KINDS.values():
        if kind.kind == "profile":
            continue
        total += db.conn.execute(
            f"SELECT COUNT(*) FROM {kind.table} WHERE {kind.author} = ? AND created_at >= ?",  # noqa: S608 - fixed names
            (member_id, to_iso(since)),
        ).fetchone()[0]
    return int(total)


def _is_new(db: sqlite_utils.Database, member_id: int, now: datetime, limits: Limits) -> bool:
    row = db.conn.execute("SELECT created_at FROM members WHERE id = ?", (member_id,)).fetchone()
    if row is None:
        return False
    return now - from_iso(row[0]) < timedelta(days=limits.new_member_days)


def _word_pattern(word: str) -> re.Pattern[str]:
    """The watched word as a whole word (or phrase), any case, with any spacing between words."""
    parts = [re.escape(part) for part in word.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)", re.IGNORECASE)


def watched_words(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    """(word, action) for every watched word, longest first so phrases win over their words."""
    rows = db.conn.execute("SELECT word, action FROM watched_words").fetchall()
    return sorted(((str(w), str(a)) for w, a in rows), key=lambda pair: -len(pair[0]))


@lru_cache(maxsize=1)
def _scorer() -> Callable[[list[str]], Any]:
    """alt-profanity-check's model, loaded on first use (it takes about two seconds)."""
    from profanity_check import predict_prob

    return predict_prob


def machine_score(text: str) -> float:
    """How likely the text is offensive, 0 to 1 (0 for empty text)."""
    if not text.strip():
        return 0.0
    return float(_scorer()([text])[0])


def _check_author(
    db: sqlite_utils.Database, member_id: int, texts: Iterable[str], now: datetime, limits: Limits
) -> None:
    standing = standing_sanction(db, member_id, now)
    if standing == "suspend":
        raise Refused("Your account is suspended, so you cannot post.")
    if standing == "silence":
        raise Refused("A moderator has made your account read-only for now, so you cannot post.")
    new = _is_new(db, member_id, now, limits)
    per_minute = limits.new_member_posts_per_minute if new else POSTS_PER_MINUTE
    if posts_since(db, member_id, now - timedelta(minutes=1)) >= per_minute:
        raise Refused("You are posting very fast. Wait a minute and try again.")
    if new:
        links = sum(len(LINK.findall(text)) for text in texts)
        if links > limits.new_member_links:
            raise Refused(
                "New members cannot post links yet. Remove the link, or post it "
                f"after your first {limits.new_member_days} days."
            )


def screen(
    db: sqlite_utils.Database,
    member_id: int,
    texts: Mapping[str, str],
    now: datetime,
    limits: Limits,
    *,
    check_author: bool = True,
) -> Screening:
    """Decide how ``texts`` (column → text) may be stored, or raise ``Refused``.

    ``check_author=False`` skips the per-member checks (a profile's bio is not a post: a silenced
    member may still tidy theirs; the rate limits count posts).
    """
    if check_author:
        _check_author(db, member_id, texts.values(), now, limits)
    cleaned = dict(texts)
    status = VISIBLE
    reasons: list[tuple[str, str]] = []
    for word, action in watched_words(db):
        pattern = _word_pattern(word)
        if not any(pattern.search(text) for text in cleaned.values()):
            continue
        if action == "block":
            raise Refused(f"“{word}” is not allowed here. Change it and post again.")
        if action == "censor":
            cleaned = {column: pattern.sub(CENSOR_MASK, text) for column, text in cleaned.items()}
        elif action == "require_approval":
            status = HELD
            reasons.append((REASON_WATCHED_WORD, f"needs approval: {word}"))
        else:
            reasons.append((REASON_WATCHED_WORD, f"flagged: {word}"))
    score = machine_score(" \n".join(cleaned.values()))
    if score * 100 >= limits.machine_hold_percent:
        status = HELD
        reasons.append((REASON_MACHINE, f"machine score {score:.2f}"))
    return Screening(cleaned, status, tuple(reasons))


def record(
    db: sqlite_utils.Database, kind: str, item_id: int, screening: Screening, now: datetime
) -> None:
    """Queue the stored item for review with the system's reasons (a no-op when there are none).

    Called in the same transaction as the insert or edit. The flags have no member (flagger_id
    NULL), so they never count towards the members' flags that hide an item.
    """
    for reason, note in screening.reasons:
        db.conn.execute(
            """INSERT INTO flags (item_kind, item_id, flagger_id, reason, note, created_at)
               VALUES (?, ?, NULL, ?, ?, ?)""",
            (kind, item_id, reason, note, to_iso(now)),
        )
