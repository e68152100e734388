"""Community news in the member's feed: a friend request, a comment on their board, a reply to
their comment, a staff answer to their review or suggestion, a moderator's decision about
something they wrote.

Each is a 'community' notification (the offers package owns the table; the portal writes it in the
same transaction as the comment or answer, as it does for support answers), so it arrives live on
the store page and by Web Push like any other. ``data`` carries what it is about and a link inside
this site; the title is written in the recipient's language, not the author's.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils
from flask_babel import force_locale

from instore import members
from instore.clock import utcnow
from offers.notifications import create_notification
from portal.i18n import LANGUAGES

# What community news can be about (``data.what``), for the feed's styling and for tests.
NEWS_KINDS: tuple[str, ...] = ("friend_request", "comment", "reply", "answer", "moderation")
# The feed shows the start of what was written; the link opens all of it.
EXCERPT_CHARS = 140


def excerpt(text: str) -> str:
    """The start of ``text`` for a notification body."""
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def notify(
    db: sqlite_utils.Database,
    member_id: int,
    what: str,
    title: Callable[[], str],
    body: str,
    link: str,
) -> int | None:
    """Write the news for ``member_id``; ``title`` is called in their language.

    ``link`` must be a path on this site (it is put in an ``href`` by the feed). Returns the
    notification id, or None when the member no longer exists. The caller owns the transaction.
    """
    if what not in NEWS_KINDS:
        raise ValueError(f"unknown community news {what!r}")
    if not link.startswith("/") or link.startswith("//"):
        raise ValueError("a community notification links inside this site")
    member = members.get_member(db, member_id)
    if member is None:
        return None
    language = (member.locale or "en").split("-")[0].lower()
    with force_locale(language if language in LANGUAGES else "en"):
        heading = title()
    return create_notification(
        db,
        member_id=member.id,
        kind="community",
        title=heading,
        body=excerpt(body),
        now=utcnow(),
        data={"what": what, "link": link},
    )
