"""The demo store's community is seeded once, through the pages' own rules (screening too)."""

from __future__ import annotations

import sqlite_utils

from community import boards
from community.demo import seed_demo_community
from community.screening import Limits, screen
from instore import members
from instore.clock import utcnow
from instore.demo import seed_demo
from offers.demo import seed_demo_offers
from presence.floorplan_demo import seed_demo_floorplan


def test_demo_community_is_seeded_once_and_feeds_the_moderation_queue(
    db: sqlite_utils.Database,
) -> None:
    seed_demo(db, "v1")
    seed_demo_floorplan(db)
    seed_demo_offers(db, "v1")
    assert seed_demo_community(db) is True
    q = db.conn.execute
    assert q("SELECT title, audience FROM boards ORDER BY id").fetchall() == [
        ("Weekend trail kit", "public"),
        ("Linen for summer", "friends"),
    ]
    assert q("SELECT COUNT(*) FROM board_items").fetchone()[0] == 6
    # The comment with a watched word needing approval waits in the queue with its reason.
    held = q("SELECT id, status FROM board_comments WHERE body LIKE '%scam%'").fetchall()
    assert [status for _id, status in held] == ["held"]
    reasons = q(
        "SELECT reason, note FROM flags WHERE item_kind = 'comment' AND item_id = ?", [held[0][0]]
    ).fetchall()
    assert reasons == [("watched_word", "needs approval: scam")]
    assert q("SELECT COUNT(*) FROM poll_votes").fetchone()[0] == 2
    assert q("SELECT COUNT(*) FROM staff_answers").fetchone()[0] == 1
    assert q("SELECT COUNT(*) FROM product_reviews WHERE status = 'visible'").fetchone()[0] == 1
    assert seed_demo_community(db) is False  # a restarted demo keeps what members did since
    assert q("SELECT COUNT(*) FROM boards").fetchone()[0] == 2


def test_a_demo_member_can_post_at_once_under_the_real_limits(db: sqlite_utils.Database) -> None:
    """The seed's posts are dated a day back and the demo accounts are regulars, so someone who
    signs in as Ana and comments, or as Ben and adds a link, is not refused as a fast newcomer."""
    seed_demo(db, "v1")
    seed_demo_floorplan(db)
    seed_demo_offers(db, "v1")
    seed_demo_community(db)
    ana = members.find_by_identifier(db, "ana@demo.store")
    ben = members.find_by_identifier(db, "ben@demo.store")
    assert ana and ben
    now = utcnow()
    for text in ("Great board!", "Another one", "And a third", "See www.example.com/boots"):
        screening = screen(db, ana.id, {"body": text}, now, Limits())
        assert screening.status == "visible"
    board = boards.create_board(db, ben.id, "New board", "", "public", now, Limits())
    assert board
