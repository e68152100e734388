"""The review queue a page at a time: the longest waiting first across pages and kinds, the count
of all that wait, bad page numbers read as the nearest page, a decision returns to its page, and
reading a page costs the same few queries however long the queue is.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlite_utils
from flask import Flask

from community import moderation, moderation_queue
from community.content import HELD
from instore.clock import to_iso, utcnow
from instore.db import transaction
from tests.moderation_helpers import console_client, make_board, make_comment, make_member

PER_PAGE = 3  # the tests' page: short, so a few items make several pages


@pytest.fixture(autouse=True)
def short_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moderation_queue, "QUEUE_PAGE", PER_PAGE)


def held_comments(db: sqlite_utils.Database, count: int, author: str = "Ana") -> list[int]:
    """``count`` held comments by a new member, the first written longest ago (an hour apart)."""
    ana = make_member(db, author)
    board = make_board(db, ana.id)
    ids = [make_comment(db, board, ana.id, f"Held {n}", status=HELD) for n in range(count)]
    with transaction(db):
        for n, comment in enumerate(ids):
            written = to_iso(utcnow() - timedelta(hours=count - n))
            db.conn.execute(
                "UPDATE board_comments SET created_at = ? WHERE id = ?", (written, comment)
            )
    return ids


def shown(page: str) -> list[int]:
    return [int(found) for found in re.findall(r'id="queue-comment-(\d+)"', page)]


def test_pages_follow_the_waiting_order_across_kinds(db: sqlite_utils.Database) -> None:
    comments = held_comments(db, 7)
    ben = make_member(db, "Ben")
    # A visible comment reported now waits from the report: last. A held board older than all.
    board = make_board(db, ben.id, "Old held board", status=HELD)
    with transaction(db):
        db.conn.execute(
            "UPDATE boards SET updated_at = ? WHERE id = ?",
            (to_iso(utcnow() - timedelta(days=2)), board),
        )
    reported = make_comment(db, make_board(db, ben.id), ben.id, "Reported")
    ana = db.conn.execute("SELECT id FROM members WHERE display_name = 'Ana'").fetchone()[0]
    moderation.flag_item(db, ana, "comment", reported, "spam", "", utcnow(), 3)

    first = moderation_queue.queue_page(db, 1)
    assert (first.total, first.page, first.pages) == (9, 1, 3)
    keys = [(e.item.kind, e.item.id) for e in first.entries]
    assert keys == [("board", board), ("comment", comments[0]), ("comment", comments[1])]
    assert first.entries[0].item.author_name == "Ben"
    everything = [
        (e.item.kind, e.item.id)
        for number in (1, 2, 3)
        for e in moderation_queue.queue_page(db, number).entries
    ]
    assert everything == [("board", board)] + [("comment", c) for c in [*comments, reported]]
    last = moderation_queue.queue_page(db, 3).entries[-1]
    assert [f.flagger_name for f in last.member_flags] == ["Ana"]
    # Before the first page reads as the first, past the last as the last.
    assert moderation_queue.queue_page(db, 0).page == 1
    assert moderation_queue.queue_page(db, 99).page == 3


def test_a_page_costs_the_same_queries_however_long_the_queue(db: sqlite_utils.Database) -> None:
    def statements_for_a_page() -> int:
        seen: list[str] = []
        db.conn.set_trace_callback(seen.append)
        try:
            moderation_queue.queue_page(db, 1)
        finally:
            db.conn.set_trace_callback(None)
        return len([sql for sql in seen if sql.lstrip().startswith("SELECT")])

    held_comments(db, PER_PAGE)
    few = statements_for_a_page()
    held_comments(db, 40, "Bea")
    assert statements_for_a_page() == few <= 4  # count, page, its items, their flags


def test_the_console_pages_the_queue(app_no_csrf: Flask, db: sqlite_utils.Database) -> None:
    comments = held_comments(db, 7)
    make_member(db, "Sam", role="staff")
    staff = console_client(app_no_csrf, "sam@example.com")

    page = staff.get("/manage/moderation").get_data(as_text=True)
    assert shown(page) == comments[:3]
    assert "7 waiting" in page and "Page 1 of 3" in page
    assert 'href="/manage/moderation?page=2" rel="next"' in page and 'rel="prev"' not in page

    page = staff.get("/manage/moderation?page=2").get_data(as_text=True)
    assert shown(page) == comments[3:6]
    assert 'href="/manage/moderation" rel="prev"' in page
    assert 'href="/manage/moderation?page=3" rel="next"' in page
    # The decision forms on page 2 come back to page 2.
    assert f'action="/manage/moderation/item/comment/{comments[3]}?page=2"' in page

    last = staff.get("/manage/moderation?page=3").get_data(as_text=True)
    assert shown(last) == comments[6:] and 'rel="next"' not in last
    # Not a number, or no such page: the nearest page, as the console's other lists do.
    for query, expected in (("abc", comments[:3]), ("-1", comments[:3]), ("0", comments[:3])):
        response = staff.get(f"/manage/moderation?page={query}")
        assert response.status_code == 200 and shown(response.get_data(as_text=True)) == expected
    assert shown(staff.get("/manage/moderation?page=99").get_data(as_text=True)) == comments[6:]
    assert (
        shown(staff.get("/manage/moderation?page=" + "9" * 40).get_data(as_text=True))
        == (comments[:3])
    )

    response = staff.post(
        f"/manage/moderation/item/comment/{comments[3]}?page=2",
        data={"action": "approve", f"comment-{comments[3]}-reason": "Fine"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/manage/moderation?page=2"
    page = staff.get("/manage/moderation?page=2").get_data(as_text=True)
    assert "6 waiting" in page and shown(page) == comments[4:7]
    # A refused decision shows the same page again with the reason asked for.
    response = staff.post(
        f"/manage/moderation/item/comment/{comments[4]}?page=2",
        data={"action": "approve", f"comment-{comments[4]}-reason": ""},
    )
    assert response.status_code == 400 and shown(response.get_data(as_text=True)) == comments[4:7]


def test_an_empty_queue_is_one_page_with_nothing_in_it(
    app_no_csrf: Flask, db: sqlite_utils.Database
) -> None:
    empty = moderation_queue.queue_page(db, 5)
    assert (empty.entries, empty.total, empty.page, empty.pages) == ([], 0, 1, 1)
    make_member(db, "Sam", role="staff")
    page = console_client(app_no_csrf, "sam@example.com").get("/manage/moderation?page=4")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="queue-empty"' in text and "0 waiting" in text
    assert 'class="pager"' not in text
