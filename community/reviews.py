"""Product reviews: a member rates a product 1 to 5 stars and may say why.

- One review per member and product (the schema's unique index): writing again replaces the
  rating and text of the same row, so it keeps its id, its place in the moderation history and
  the store's answers under it. The text is screened like every member write; an edit is screened
  again and takes ``status_after_edit``.
- The average and the count are over visible reviews only: a held, hidden or rejected review
  must not move the stars everyone sees before a moderator has looked at it.
- The list shows visible reviews newest first, without the reader's own (the page shows that
  apart, whatever its status) and without anyone with a block either way between the two.
- A withdrawn (inactive) product keeps its reviews but takes no new ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from community import feedback
from community.content import ITEM_STATUSES, VISIBLE, status_after_edit
from community.feedback import FeedbackError, NotFound
from community.screening import Limits, record, screen
from instore.clock import to_iso
from instore.db import atomic

# The stars a review can give.
LOWEST_RATING, HIGHEST_RATING = 1, 5
# Reviews per page on a product page: a phone screen or two.
PAGE_SIZE = 10
# Rows per page of the console's list.
STAFF_PAGE_SIZE = 50


@dataclass(frozen=True)
class Review:
    id: int
    product_id: int
    product_name: str
    author_id: int | None  # None: the author erased their account and kept the review
    author_name: str | None
    rating: int
    body: str
    status: str
    created_at: str
    edited_at: str | None


@dataclass(frozen=True)
class RatingSummary:
    """Average stars (None with no reviews) over ``count`` visible reviews."""

    average: float | None
    count: int

    @property
    def rounded(self) -> int:
        """Whole stars to draw (0 with no reviews)."""
        return 0 if self.average is None else int(self.average + 0.5)


NO_RATINGS = RatingSummary(None, 0)

_COLUMNS = """r.id, r.product_id, p.name, r.author_id, m.display_name, r.rating, r.body,
              r.status, r.created_at, r.edited_at"""
_FROM = """product_reviews r JOIN products p ON p.id = r.product_id
           LEFT JOIN members m ON m.id = r.author_id"""


def _review(row: tuple[Any, ...]) -> Review:
    return Review(
        id=int(row[0]),
        product_id=int(row[1]),
        product_name=str(row[2]),
        author_id=None if row[3] is None else int(row[3]),
        author_name=None if row[4] is None else str(row[4]),
        rating=int(row[5]),
        body=str(row[6]),
        status=str(row[7]),
        created_at=str(row[8]),
        edited_at=None if row[9] is None else str(row[9]),
    )


def get_review(db: sqlite_utils.Database, review_id: int) -> Review | None:
    row = db.conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE r.id = ?",  # noqa: S608 - fixed SQL
        (review_id,),
    ).fetchone()
    return None if row is None else _review(row)


def member_review(db: sqlite_utils.Database, product_id: int, member_id: int) -> Review | None:
    """The member's own review of the product, whatever its status."""
    row = db.conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE r.product_id = ? AND r.author_id = ?",  # noqa: S608
        (product_id, member_id),
    ).fetchone()
    return None if row is None else _review(row)


def check_rating(rating: int) -> int:
    if not LOWEST_RATING <= rating <= HIGHEST_RATING:
        raise FeedbackError(f"Give {LOWEST_RATING} to {HIGHEST_RATING} stars.")
    return rating


def save_review(
    db: sqlite_utils.Database,
    product_id: int,
    member_id: int,
    rating: int,
    body: str,
    now: datetime,
    limits: Limits,
) -> Review:
    """Write or replace the member's review; returns it as stored (its status may be held).

    Raises ``FeedbackError`` for a bad rating or text, ``NotFound`` for an unknown or withdrawn
    product, and screening's ``Refused`` with the sentence for the member.
    """
    check_rating(rating)
    body = feedback.check_text(body, required=False, what="Your review")
    with atomic(db, "feedback_review"):
        active = db.conn.execute(
            "SELECT active FROM products WHERE id = ?", (product_id,)
        ).fetchone()
        if active is None or not active[0]:
            raise NotFound("That product is not in the catalogue.")
        screening = screen(db, member_id, {"body": body}, now, limits)
        existing = member_review(db, product_id, member_id)
        if existing is None:
            cursor = db.conn.execute(
                """INSERT INTO product_reviews
                     (product_id, author_id, rating, body, status, created_at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (
                    product_id,
                    member_id,
                    rating,
                    screening.texts["body"],
                    screening.status,
                    to_iso(now),
                ),
            )
            review_id = int(cursor.lastrowid or 0)
        else:
            review_id = existing.id
            db.conn.execute(
                """UPDATE product_reviews SET rating = ?, body = ?, status = ?, edited_at = ?
                   WHERE id = ?""",
                (
                    rating,
                    screening.texts["body"],
                    status_after_edit(existing.status, screening.status),
                    to_iso(now),
                    review_id,
                ),
            )
        record(db, "review", review_id, screening, now)
        saved = get_review(db, review_id)
    assert saved is not None
    return saved


def delete_review(db: sqlite_utils.Database, review_id: int, member_id: int) -> bool:
    """The author takes their review down (with the answers under it); False if not theirs."""
    with atomic(db, "feedback_review_delete"):
        cursor = db.conn.execute(
            "DELETE FROM product_reviews WHERE id = ? AND author_id = ?", (review_id, member_id)
        )
        if cursor.rowcount:
            feedback.delete_answers_of(db, "review", review_id)
    return cursor.rowcount > 0


def product_reviews(
    db: sqlite_utils.Database,
    product_id: int,
    viewer_id: int,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> tuple[list[Review], bool]:
    """One page of the reviews the viewer may read, newest first, and whether more follow.

    The viewer's own review is left out: the page shows it apart, with its status.
    """
    offset = (max(page, 1) - 1) * page_size
    rows = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM {_FROM}
            WHERE r.product_id = :product AND r.status = '{VISIBLE}'
              AND (r.author_id IS NULL OR (r.author_id != :viewer
                   AND {feedback.NOT_BLOCKED.format(author="r.author_id")}))
            ORDER BY r.id DESC LIMIT :limit OFFSET :offset""",  # noqa: S608 - fixed SQL
        {"product": product_id, "viewer": viewer_id, "limit": page_size + 1, "offset": offset},
    ).fetchall()
    return [_review(row) for row in rows[:page_size]], len(rows) > page_size


def rating_summaries(
    db: sqlite_utils.Database, product_ids: Iterable[int]
) -> dict[int, RatingSummary]:
    """Average and count of visible reviews per product; products with none are left out."""
    wanted = sorted({int(i) for i in product_ids})
    found: dict[int, RatingSummary] = {}
    for start in range(0, len(wanted), feedback.ID_CHUNK):
        chunk = wanted[start : start + feedback.ID_CHUNK]
        marks = ", ".join("?" for _ in chunk)
        rows = db.conn.execute(
            f"""SELECT product_id, AVG(rating), COUNT(*) FROM product_reviews
                WHERE status = '{VISIBLE}' AND product_id IN ({marks})
                GROUP BY product_id""",  # noqa: S608 - fixed SQL and placeholders
            chunk,
        ).fetchall()
        for product_id, average, count in rows:
            found[int(product_id)] = RatingSummary(float(average), int(count))
    return found


def rating_summary(db: sqlite_utils.Database, product_id: int) -> RatingSummary:
    return rating_summaries(db, [product_id]).get(product_id, NO_RATINGS)


def staff_reviews(
    db: sqlite_utils.Database,
    answered: str = "unanswered",
    status: str = "",
    page: int = 1,
    page_size: int = STAFF_PAGE_SIZE,
) -> tuple[list[Review], bool]:
    """Every review for the console, unanswered first, then newest; filtered as asked.

    ``answered`` is one of ``feedback.ANSWER_FILTERS``; ``status`` one of the item statuses, or
    empty for all of them.
    """
    clauses = [feedback.answer_filter_sql("review", "r", answered)]
    params: dict[str, Any] = {"limit": page_size + 1, "offset": (max(page, 1) - 1) * page_size}
    if status in ITEM_STATUSES:
        clauses.append("r.status = :status")
        params["status"] = status
    rows = db.conn.execute(
        f"""SELECT {_COLUMNS} FROM {_FROM} WHERE {" AND ".join(clauses)}
            ORDER BY {feedback.answered_sql("review", "r")}, r.id DESC
            LIMIT :limit OFFSET :offset""",  # noqa: S608 - fixed SQL
        params,
    ).fetchall()
    return [_review(row) for row in rows[:page_size]], len(rows) > page_size
