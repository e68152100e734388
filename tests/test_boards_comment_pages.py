"""A board's comments a page at a time: the newest threads first shown, earlier and newer pages by
comment id, only the threads a viewer may see counted, a link to an old comment (a notification,
the redirect after a reply or an edit) landing on the page that holds it, and a page read in the
same few statements however many comments the board has.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlite_utils
from flask import Flask

from community import board_comments, boards, friends
from community.board_comments import CommentPage, comment_page
from community.boards import Board
from instore.clock import to_iso, utcnow
from tests.test_boards_pages import Member, notifications

SHOWN = 3  # the tests' page: a few comments make several pages


@pytest.fixture(autouse=True)
def short_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board_comments, "COMMENT_THREADS_SHOWN", SHOWN)


def write(
    db: sqlite_utils.Database,
    board_id: int,
    author: int,
    body: str,
    parent: int | None = None,
    status: str = "visible",
) -> int:
    """A comment stored as it is (no screening: these tests are about what shows where)."""
    cursor = db.conn.execute(
        """INSERT INTO board_comments (board_id, author_id, parent_id, body, status, created_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (board_id, author, parent, body, status, to_iso(utcnow() - timedelta(hours=1))),
    )
    db.conn.commit()
    return int(cursor.lastrowid or 0)


def board_of(db: sqlite_utils.Database, board_id: int) -> Board:
    found = boards.get_board(db, board_id)
    assert found is not None
    return found


def tops(page: CommentPage) -> list[int]:
    return [t.comment.id if t.comment else -1 for t in page.threads]


@pytest.fixture
def people(app_no_csrf: Flask, db: sqlite_utils.Database) -> dict[str, Member]:
    """Ana owns the board; Ben and Cleo comment; Dan has blocked Ben."""
    found = {name: Member(app_no_csrf, db, name) for name in ("Ana", "Ben", "Cleo", "Dan")}
    friends.block(db, found["Dan"].id, found["Ben"].id)
    return found


@pytest.fixture
def threads(people: dict[str, Member], db: sqlite_utils.Database) -> tuple[int, list[int]]:
    """Ana's public board with eight threads by Cleo, the second with a reply by Ben."""
    board_id = people["Ana"].new_board("Busy", "public")
    ids = [write(db, board_id, people["Cleo"].id, f"Thread {n}") for n in range(8)]
    write(db, board_id, people["Ben"].id, "A reply", parent=ids[1])
    return board_id, ids


def test_pages_go_back_and_forth_by_comment_id(
    db: sqlite_utils.Database, people: dict[str, Member], threads: tuple[int, list[int]]
) -> None:
    board, t = board_of(db, threads[0]), threads[1]
    viewer = people["Ana"].id
    latest = comment_page(db, board, viewer)
    assert (tops(latest), latest.earlier, latest.newer) == (t[5:8], t[5], None)
    middle = comment_page(db, board, viewer, before=t[5])
    assert (tops(middle), middle.earlier, middle.newer) == (t[2:5], t[2], t[4])
    first = comment_page(db, board, viewer, before=t[2])
    assert (tops(first), first.earlier, first.newer) == (t[0:2], None, t[1])
    assert [r.body for r in first.threads[1].replies] == ["A reply"]
    newer = comment_page(db, board, viewer, after=t[1])
    assert (tops(newer), newer.earlier, newer.newer) == (t[2:5], t[2], t[4])
    assert tops(comment_page(db, board, viewer, after=t[4])) == t[5:8]
    # Ids that lead nowhere read as the latest page.
    for nowhere in ({"before": t[0]}, {"after": t[7]}, {"around": 10**6}):
        assert comment_page(db, board, viewer, **nowhere) == latest
    assert board_comments.comment_threads(db, board, viewer) == latest.threads


def test_around_a_comment_is_the_page_that_holds_its_thread(
    db: sqlite_utils.Database, people: dict[str, Member], threads: tuple[int, list[int]]
) -> None:
    board, t = board_of(db, threads[0]), threads[1]
    viewer = people["Ana"].id
    (reply,) = [r.id for r in comment_page(db, board, viewer, before=t[2]).threads[1].replies]
    held = comment_page(db, board, viewer, around=reply)
    assert (tops(held), held.earlier, held.newer) == (t[1:4], t[1], t[3])
    # A comment on the latest page: the latest page itself.
    assert comment_page(db, board, viewer, around=t[6]) == comment_page(db, board, viewer)
    assert board_comments.on_latest_page(db, board.id, t[5], viewer)
    assert not board_comments.on_latest_page(db, board.id, t[4], viewer)
    assert not board_comments.on_latest_page(db, board.id, reply, viewer)
    # Another board's comment is not found here.
    other = people["Ana"].new_board("Other", "public")
    assert comment_page(db, board_of(db, other), viewer, around=t[1]).threads == []


def test_only_the_threads_a_viewer_sees_fill_a_page(
    db: sqlite_utils.Database, people: dict[str, Member], threads: tuple[int, list[int]]
) -> None:
    board, t = board_of(db, threads[0]), threads[1]
    ben, dan = people["Ben"].id, people["Dan"].id
    blocked = write(db, board.id, ben, "Dan blocked me")
    held = write(db, board.id, people["Cleo"].id, "Casino", status="held")
    # Ben sees his own; Dan, who blocked him, does not, and the latest page stays full.
    assert tops(comment_page(db, board, ben))[-1] == blocked
    assert blocked not in tops(comment_page(db, board, dan))
    assert tops(comment_page(db, board, dan)) == t[5:8]
    assert tops(comment_page(db, board, people["Cleo"].id))[-1] == held
    # A thread whose first comment Dan may not see still shows him the replies he may see.
    by_ben = write(db, board.id, ben, "Mine")
    write(db, board.id, people["Cleo"].id, "Answer to Ben", parent=by_ben)
    page = comment_page(db, board, dan)
    assert page.threads[-1].comment is None
    assert [r.body for r in page.threads[-1].replies] == ["Answer to Ben"]
    # ...and never Ben's reply in a thread he can see.
    second = comment_page(db, board, dan, before=t[2]).threads[1]
    assert second.comment is not None and second.replies == []


def test_a_page_costs_the_same_statements_however_many_comments(
    db: sqlite_utils.Database, people: dict[str, Member], threads: tuple[int, list[int]]
) -> None:
    board = board_of(db, threads[0])

    def statements() -> int:
        seen: list[str] = []
        db.conn.set_trace_callback(seen.append)
        try:
            comment_page(db, board, people["Dan"].id)
        finally:
            db.conn.set_trace_callback(None)
        return len(seen)

    few = statements()
    for n in range(60):
        top = write(db, board.id, people["Cleo"].id, f"More {n}")
        write(db, board.id, people["Ben"].id, f"Reply {n}", parent=top)
    assert statements() == few == 2  # the page's thread ids, then their comments


def test_the_board_page_links_earlier_and_newer_comments(
    people: dict[str, Member], threads: tuple[int, list[int]]
) -> None:
    board_id, t = threads
    ana = people["Ana"]
    status, page = ana.get(f"/boards/{board_id}")
    assert status == 200
    assert [f'id="c-{i}"' in page for i in t] == [False] * 5 + [True] * 3
    earlier = f'href="/boards/{board_id}?before={t[5]}#comments" rel="prev">Earlier comments'
    assert earlier in page and "Newer comments" not in page and "No comments yet" not in page
    page = ana.get(f"/boards/{board_id}?before={t[5]}")[1]
    assert [f'id="c-{i}"' in page for i in t] == [
        False,
        False,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert f'href="/boards/{board_id}?after={t[4]}#comments" rel="next">Newer comments' in page
    page = ana.get(f"/boards/{board_id}?before={t[2]}")[1]
    assert "Earlier comments" not in page and "A reply" in page
    # Junk, or a number past SQLite's integers, reads as no paging at all.
    for junk in ("abc", "-3", "9" * 30, ""):
        status, page = ana.get(f"/boards/{board_id}?before={junk}&after={junk}&around={junk}")
        assert status == 200 and f'id="c-{t[7]}"' in page and f'id="c-{t[4]}"' not in page


def test_a_notification_about_an_old_comment_links_to_its_page(
    people: dict[str, Member], db: sqlite_utils.Database, threads: tuple[int, list[int]]
) -> None:
    board_id, t = threads
    ana, cleo = people["Ana"], people["Cleo"]
    # Ana answers Cleo's oldest thread: Cleo's news, and Ana's redirect, go to its page.
    response = ana.comment(board_id, "Still have it?", parent_id=t[0])
    reply = max(r[0] for r in db.conn.execute("SELECT id FROM board_comments"))
    link = f"/boards/{board_id}?around={reply}#c-{reply}"
    assert response.status_code == 302 and response.headers["Location"].endswith(link)
    (news,) = notifications(db, cleo.id)
    assert news["what"] == "reply" and news["link"] == link
    status, page = cleo.get(link.split("#")[0])
    assert status == 200 and f'id="c-{reply}"' in page and "Still have it?" in page
    assert f'id="c-{t[0]}"' in page and f'id="c-{t[7]}"' not in page
    # A comment on the first page needs no more than its anchor.
    response = cleo.comment(board_id, "Newest")
    assert "around=" not in response.headers["Location"]
    (news,) = notifications(db, ana.id)
    assert news["link"].startswith(f"/boards/{board_id}#c-")


def test_editing_or_failing_a_reply_in_an_old_thread_stays_on_its_page(
    people: dict[str, Member], db: sqlite_utils.Database, threads: tuple[int, list[int]]
) -> None:
    board_id, t = threads
    cleo = people["Cleo"]
    response = cleo.post(f"/boards/{board_id}/comments/{t[0]}/edit", {"body": "Thread 0, edited"})
    assert response.headers["Location"].endswith(f"/boards/{board_id}?around={t[0]}#c-{t[0]}")
    # An empty reply to an old thread: that page again, the reply form open with the reason.
    response = people["Ben"].comment(board_id, "   ", parent_id=t[0])
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and f'id="c-{t[0]}"' in page
    assert '<details class="reply" open>' in page and "Write your comment." in page
