"""Member profiles: the display name, a short bio, a picture and the interests a member chose.

The bio is text other members read, so it is screened like a post (``community.screening``,
without the posting limits: a silenced member may still tidy their profile) and carries the
moderation status of ``member_profiles``. An edit of a bio that was held, hidden or rejected
goes back to review, as every item does (``status_after_edit``); so does a new picture, because
a moderator judged the profile as a whole. Until a moderator lets it show, other members see
only the display name.

Interests are chosen from the catalogue's categories and replace the member's set in
``member_interests``, where the offers' personal price reads them.

Who may open a profile: any signed-in member, except across a block either way, which answers
exactly like an unknown id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import EllipsisType

import sqlite_utils

from community import images
from community.catalogue import categories
from community.content import VISIBLE, status_after_edit
from community.friends import blockers_between
from community.screening import Limits, Screening, record, screen
from instore import members
from instore.clock import to_iso
from instore.db import atomic

# Long enough for a few sentences about oneself; a profile is not a blog.
MAX_BIO = 500
# The sign-up form's limit on names (portal.forms MAX_NAME).
MAX_DISPLAY_NAME = 60


class ProfileError(ValueError):
    """A profile change that cannot be made; the message is meant for the member."""


@dataclass(frozen=True)
class Profile:
    """What a profile holds; ``status`` is the bio's and picture's moderation status."""

    member_id: int
    display_name: str
    bio: str
    avatar_path: str | None
    status: str

    @property
    def shown(self) -> bool:
        """True when other members may see the bio and picture."""
        return self.status == VISIBLE


@dataclass(frozen=True)
class BoardLink:
    """A board listed on its owner's profile."""

    id: int
    title: str


def get_profile(db: sqlite_utils.Database, member_id: int) -> Profile | None:
    """The member's profile (empty when they never edited it), or None for no such member."""
    row = db.conn.execute(
        """SELECT m.display_name, p.bio, p.avatar_path, p.status
           FROM members m LEFT JOIN member_profiles p ON p.member_id = m.id
           WHERE m.id = ?""",
        (member_id,),
    ).fetchone()
    if row is None:
        return None
    name, bio, avatar, status = row
    return Profile(member_id, name, bio or "", avatar, status or VISIBLE)


def viewable_profile(db: sqlite_utils.Database, member_id: int, viewer_id: int) -> Profile | None:
    """The profile ``viewer_id`` may open: None for an unknown member or a block either way."""
    if member_id != viewer_id and blockers_between(db, member_id, viewer_id):
        return None
    return get_profile(db, member_id)


def interests(db: sqlite_utils.Database, member_id: int) -> list[str]:
    """The member's chosen interests, sorted."""
    rows = db.conn.execute(
        "SELECT interest FROM member_interests WHERE member_id = ? ORDER BY interest",
        (member_id,),
    ).fetchall()
    return [str(row[0]) for row in rows]


def set_interests(db: sqlite_utils.Database, member_id: int, chosen: Iterable[str]) -> None:
    """Replace the member's interests with ``chosen``, each one of the catalogue's categories."""
    wanted = sorted({interest.strip().lower() for interest in chosen})
    offered = set(categories(db))
    unknown = [interest for interest in wanted if interest not in offered]
    if unknown:
        raise ProfileError("Choose your interests from the store's categories.")
    with atomic(db, "profile_interests"):
        db.conn.execute("DELETE FROM member_interests WHERE member_id = ?", (member_id,))
        db.conn.executemany(
            "INSERT INTO member_interests (member_id, interest) VALUES (?, ?)",
            [(member_id, interest) for interest in wanted],
        )


def _check_name(display_name: str) -> str:
    name = " ".join(display_name.split())
    if not name:
        raise ProfileError("Enter a name.")
    if len(name) > MAX_DISPLAY_NAME:
        raise ProfileError(f"Keep your name under {MAX_DISPLAY_NAME + 1} characters.")
    return name


def _write_profile(
    db: sqlite_utils.Database,
    member_id: int,
    now: datetime,
    *,
    bio: str | None = None,
    avatar_path: str | EllipsisType | None = ...,
    status: str,
) -> None:
    """Insert or update the profile row; only the given fields change (``...``: keep)."""
    db.conn.execute(
        """INSERT INTO member_profiles (member_id, bio, avatar_path, status, updated_at)
           VALUES (?, '', NULL, ?, ?)
           ON CONFLICT(member_id) DO UPDATE SET status = excluded.status,
                                                updated_at = excluded.updated_at""",
        (member_id, status, to_iso(now)),
    )
    if bio is not None:
        db.conn.execute("UPDATE member_profiles SET bio = ? WHERE member_id = ?", (bio, member_id))
    if avatar_path is not ...:
        db.conn.execute(
            "UPDATE member_profiles SET avatar_path = ? WHERE member_id = ?",
            (avatar_path, member_id),
        )


def save_profile(
    db: sqlite_utils.Database,
    member_id: int,
    *,
    display_name: str,
    bio: str,
    chosen_interests: Iterable[str],
    now: datetime,
    limits: Limits,
) -> Profile:
    """Save name, bio and interests together; raises ``ProfileError`` or ``screening.Refused``.

    The bio is screened only when it changed, so renaming oneself does not send an approved bio
    back to review.
    """
    name = _check_name(display_name)
    bio = bio.strip().replace("\r\n", "\n")
    if len(bio) > MAX_BIO:
        raise ProfileError(f"Keep your bio under {MAX_BIO + 1} characters.")
    with atomic(db, "profile_save"):
        before = get_profile(db, member_id)
        if before is None:
            raise ProfileError("That account no longer exists.")
        members.set_display_name(db, member_id, name)
        set_interests(db, member_id, chosen_interests)
        if bio != before.bio:
            screening: Screening = screen(
                db, member_id, {"bio": bio}, now, limits, check_author=False
            )
            status = status_after_edit(before.status, screening.status)
            _write_profile(db, member_id, now, bio=screening.texts["bio"], status=status)
            record(db, "profile", member_id, screening, now)
    after = get_profile(db, member_id)
    assert after is not None
    return after


def set_avatar(
    db: sqlite_utils.Database, uploads_dir: Path, member_id: int, data: bytes, now: datetime
) -> Profile:
    """Store a new picture (re-encoded, metadata dropped) and remove the one it replaces.

    Raises ``images.ImageRefused`` with the sentence for the member.
    """
    path = images.store_upload(uploads_dir, "avatars", data, images.AVATAR_SIDE)
    try:
        with atomic(db, "profile_avatar"):
            before = get_profile(db, member_id)
            if before is None:
                raise ProfileError("That account no longer exists.")
            status = status_after_edit(before.status, VISIBLE)
            _write_profile(db, member_id, now, avatar_path=path, status=status)
    except BaseException:
        images.remove_upload(uploads_dir, path)
        raise
    images.remove_upload(uploads_dir, before.avatar_path)
    after = get_profile(db, member_id)
    assert after is not None
    return after


def remove_avatar(
    db: sqlite_utils.Database, uploads_dir: Path, member_id: int, now: datetime
) -> None:
    """Drop the member's picture (a profile without one shows their initial)."""
    before = get_profile(db, member_id)
    if before is None or before.avatar_path is None:
        return
    with atomic(db, "profile_avatar_remove"):
        db.conn.execute(
            "UPDATE member_profiles SET avatar_path = NULL, updated_at = ? WHERE member_id = ?",
            (to_iso(now), member_id),
        )
    images.remove_upload(uploads_dir, before.avatar_path)


def visible_boards(db: sqlite_utils.Database, owner_id: int, viewer_id: int) -> list[BoardLink]:
    """The owner's boards the viewer may open, newest first.

    The owner sees all their own boards; anyone else the visible public ones, and the visible
    friends-only ones when the two are friends. Blocks are the caller's check (the profile itself
    is not shown across one).
    """
    if owner_id == viewer_id:
        rows = db.conn.execute(
            "SELECT id, title FROM boards WHERE owner_id = ? ORDER BY id DESC", (owner_id,)
        ).fetchall()
    else:
        rows = db.conn.execute(
            """SELECT id, title FROM boards
               WHERE owner_id = :owner AND status = 'visible'
                 AND (audience = 'public'
                      OR (audience = 'friends' AND EXISTS (
                          SELECT 1 FROM friendships WHERE status = 'accepted'
                             AND ((requester_id = :owner AND addressee_id = :viewer)
                                  OR (requester_id = :viewer AND addressee_id = :owner)))))
               ORDER BY id DESC""",
            {"owner": owner_id, "viewer": viewer_id},
        ).fetchall()
    return [BoardLink(int(board_id), str(title)) for board_id, title in rows]
