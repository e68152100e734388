"""The demo store's community: a few boards, a comment, a review, a poll with votes, an answered
suggestion and watched words, so every community page — and the moderation queue — shows
something the first time it is opened.

Seeded once, through the same functions the pages use (screening included), by the demo members
``instore.demo`` creates.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlite_utils

from community import board_comments, boards, polls, reviews, suggestions
from community.catalogue import search_products
from community.feedback import add_answer
from community.screening import Limits
from instore import members
from instore.clock import to_iso, utcnow
from instore.db import transaction

log = logging.getLogger(__name__)

# The demo members are minutes old: without a looser limit the seed itself would be refused as a
# new member posting fast. The pages keep the store's real limits.
SEED_LIMITS = Limits(new_member_posts_per_minute=1000)
# How long before the demo starts its community's posts are dated.
SEED_POSTED_AGO = timedelta(days=1)
# The demo poll stays open this long from the demo's first start.
DEMO_POLL_OPEN = timedelta(days=14)
# The store's starting watched words: one of each action the moderation queue explains.
DEMO_WATCHED_WORDS: tuple[tuple[str, str], ...] = (
    ("cheap pills", "block"),
    ("darn", "censor"),
    ("scam", "require_approval"),
    ("refund", "flag"),
)


def _id(db: sqlite_utils.Database, email: str) -> int | None:
    found = members.find_by_identifier(db, email)
    return found.id if found else None


def _product(db: sqlite_utils.Database, sku: str) -> int | None:
    found = [p for p in search_products(db, sku) if p.sku == sku]
    return found[0].id if found else None


def seed_demo_community(db: sqlite_utils.Database, now: datetime | None = None) -> bool:
    """Seed the demo community once (when there are no boards yet); True if it did."""
    if db.conn.execute("SELECT 1 FROM boards LIMIT 1").fetchone():
        return False
    today = now or utcnow()
    # Posted a day ago: a visitor who signs in as a demo member and posts at once must not be
    # "posting very fast" because of what the seed wrote in their name a second earlier.
    now = today - SEED_POSTED_AGO
    ana, ben, chloe, sam, morgan = (
        _id(db, f"{name}@demo.store") for name in ("ana", "ben", "chloe", "staff", "manager")
    )
    if None in (ana, ben, chloe, sam, morgan):
        return False
    assert ana and ben and chloe and sam and morgan
    with transaction(db):
        db.conn.executemany(
            "INSERT OR IGNORE INTO watched_words (word, action, created_by, created_at)"
            " VALUES (?, ?, ?, ?)",
            [(word, action, morgan, to_iso(now)) for word, action in DEMO_WATCHED_WORDS],
        )
    trail = boards.create_board(
        db,
        ben,
        "Weekend trail kit",
        "What I take up the hills on Saturdays.",
        "public",
        now,
        SEED_LIMITS,
    )
    for sku, note in (("TR-200", "Half a size up"), ("TR-PACK", ""), ("TR-SOCK", "Best socks")):
        product = _product(db, sku)
        if product is not None:
            boards.add_item(db, trail, ben, product, note, None, now, SEED_LIMITS)
    summer = boards.create_board(
        db,
        chloe,
        "Linen for summer",
        "Holiday ideas — tell me what you think!",
        "friends",
        now,
        SEED_LIMITS,
    )
    for sku in ("LN-DRESS", "LN-SCARF", "AC-SUN"):
        product = _product(db, sku)
        if product is not None:
            boards.add_item(db, summer, chloe, product, "", None, now, SEED_LIMITS)
    board_comments.add_comment(
        db, trail, ana, "Love the vest! Does it fit a 1 l bottle?", now, SEED_LIMITS
    )
    # A comment with a watched word that needs approval: the moderation queue's first item.
    board_comments.add_comment(
        db, summer, ana, "That sunglasses deal was a scam last year.", now, SEED_LIMITS
    )
    shoe = _product(db, "TR-200")
    if shoe is not None:
        reviews.save_review(
            db,
            shoe,
            ana,
            5,
            "Comfortable from the first run, and they grip on wet rock.",
            now,
            SEED_LIMITS,
        )
    poll = polls.create_poll(
        db,
        "Which colour should we stock for the packable trail jacket?",
        ["Olive", "Navy", "Rust"],
        today + DEMO_POLL_OPEN,
        morgan,
        now,
    )
    chosen = polls.get_poll(db, poll)
    if chosen is not None:
        polls.vote(db, poll, chosen.options[0].id, ben, now)
        polls.vote(db, poll, chosen.options[2].id, chloe, now)
    idea = suggestions.post_suggestion(
        db, ben, "Could you open at 8 on Saturdays, before the park run?", now, SEED_LIMITS
    )
    add_answer(db, "suggestion", idea.id, sam, "From March we open at 8 every Saturday.", now)
    log.info("demo community seeded")
    return True
