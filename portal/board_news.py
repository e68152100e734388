"""Telling members about comments: a comment on their board, a reply to their comment.

``notify_published_comment`` is the one entry point, called in the transaction that publishes
the comment: the comment page when screening lets it show at once, and moderation when a
moderator approves a held one (a held comment tells nobody until then). Whom to tell is decided
by ``community.board_comments.news_for`` (never the author, nobody across a block, nobody who
could not open the board). Telling twice about the same comment is skipped, so moderation may
call this on every approval without checking whether the comment was ever published before.

A link to a comment (``comment_url``) is the board with the comment's anchor, and ``?around=``
when the comment's thread is no longer on the board's first page for the one who follows it
(the board shows its newest threads first; ``community.board_comments.comment_page``).
"""

from __future__ import annotations

import sqlite_utils
from flask import url_for
from flask_babel import gettext as _

from community.board_comments import news_for, on_latest_page
from portal.community_notes import notify


def comment_url(db: sqlite_utils.Database, board_id: int, comment_id: int, viewer_id: int) -> str:
    """Where a link to the comment lands on it, for this viewer: the board's page that holds
    it, with its anchor. Needs a request or app context."""
    around = None if on_latest_page(db, board_id, comment_id, viewer_id) else comment_id
    return url_for("boards.view", board_id=board_id, around=around, _anchor=f"c-{comment_id}")


def _already_told(db: sqlite_utils.Database, member_id: int, link: str) -> bool:
    """Whether this member already has the news with this link (one link per comment)."""
    row = db.conn.execute(
        """SELECT 1 FROM notifications WHERE member_id = ? AND kind = 'community'
           AND json_extract(data, '$.link') = ? LIMIT 1""",
        (member_id, link),
    ).fetchone()
    return row is not None


def notify_published_comment(db: sqlite_utils.Database, comment_id: int) -> int | None:
    """Tell the board's owner (a comment) or the replied-to author (a reply); returns the
    notification id, or None when nobody is to be told. Needs a request or app context (the
    link is built with ``url_for``); the caller owns the transaction."""
    news = news_for(db, comment_id)
    if news is None:
        return None
    link = comment_url(db, news.board.id, news.comment.id, news.member_id)
    if _already_told(db, news.member_id, link):
        return None
    name = news.comment.author_name or ""
    title = news.board.title
    if news.what == "comment":
        return notify(
            db,
            news.member_id,
            "comment",
            lambda: _("%(name)s commented on your board “%(title)s”", name=name, title=title),
            news.comment.body,
            link,
        )
    return notify(
        db,
        news.member_id,
        "reply",
        lambda: _("%(name)s replied to your comment on “%(title)s”", name=name, title=title),
        news.comment.body,
        link,
    )
