"""Feedback rules on a real SQLite file: reviews (one per member and product, stars, the average
over visible ones, blocks), polls (answers, one vote, closing, results), suggestions and the
store's answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils

from community import feedback, friends, polls, reviews, suggestions
from community.feedback import FeedbackError, NotFound
from community.screening import Limits, Refused
from instore import members
from instore.clock import to_iso, utcnow

# Old members (no new-member limits) unless a test says otherwise; the machine score never holds.
LIMITS = Limits(machine_hold_percent=100, new_member_days=0)


def now_plus(minutes: int = 0) -> datetime:
    """Moments a few minutes apart, so the per-minute post limit never interferes."""
    return utcnow() + timedelta(minutes=minutes)


@pytest.fixture
def people(db: sqlite_utils.Database) -> dict[str, int]:
    return {
        name: members.create_member(
            db, display_name=name, password="correct horse battery", email=f"{name}@example.com"
        ).id
        for name in ("Ana", "Ben", "Cleo", "Sam")
    }


def add_product(db: sqlite_utils.Database, sku: str = "TEE-1", active: int = 1) -> int:
    cursor = db.conn.execute(
        """INSERT INTO products (sku, name, category, price_cents, zone, active, updated_at)
           VALUES (?, ?, 'tops', 1990, 'Shoes', ?, ?)""",
        (sku, f"Tee {sku}", active, to_iso(utcnow())),
    )
    db.conn.commit()
    return int(cursor.lastrowid or 0)


def set_status(db: sqlite_utils.Database, table: str, item_id: int, status: str) -> None:
    assert table in ("product_reviews", "suggestions")
    db.conn.execute(f"UPDATE {table} SET status = ? WHERE id = ?", (status, item_id))  # noqa: S608
    db.conn.commit()


# -- reviews -------------------------------------------------------------------------------------


def test_one_review_per_member_and_product_editing_replaces_it(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    product = add_product(db)
    first = reviews.save_review(db, product, people["Ana"], 4, "Soft cotton", now_plus(0), LIMITS)
    again = reviews.save_review(db, product, people["Ana"], 2, "Shrank", now_plus(2), LIMITS)
    assert again.id == first.id
    assert (again.rating, again.body, again.status) == (2, "Shrank", "visible")
    assert again.edited_at is not None
    count = db.conn.execute("SELECT COUNT(*) FROM product_reviews").fetchone()[0]
    assert count == 1
    assert reviews.member_review(db, product, people["Ana"]) == again


@pytest.mark.parametrize("rating", [0, 6, -1, 100])
def test_ratings_outside_one_to_five_are_refused(
    db: sqlite_utils.Database, people: dict[str, int], rating: int
) -> None:
    product = add_product(db)
    with pytest.raises(FeedbackError, match="1 to 5 stars"):
        reviews.save_review(db, product, people["Ana"], rating, "", now_plus(), LIMITS)
    assert db.conn.execute("SELECT COUNT(*) FROM product_reviews").fetchone()[0] == 0


def test_review_text_is_optional_but_bounded(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    product = add_product(db)
    assert reviews.save_review(db, product, people["Ana"], 5, "  ", now_plus(), LIMITS).body == ""
    with pytest.raises(FeedbackError, match="2000"):
        reviews.save_review(db, product, people["Ben"], 5, "x" * 2001, now_plus(), LIMITS)


def test_unknown_and_withdrawn_products_take_no_reviews(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    gone = add_product(db, "OLD-1", active=0)
    for product in (gone, 999):
        with pytest.raises(NotFound):
            reviews.save_review(db, product, people["Ana"], 3, "", now_plus(), LIMITS)


def test_average_and_count_ignore_held_hidden_and_rejected_reviews(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    product = add_product(db)
    ratings = {"Ana": 5, "Ben": 4, "Cleo": 1, "Sam": 1}
    ids = {
        name: reviews.save_review(db, product, people[name], stars, "", now_plus(n), LIMITS).id
        for n, (name, stars) in enumerate(ratings.items())
    }
    assert reviews.rating_summary(db, product) == reviews.RatingSummary(2.75, 4)
    set_status(db, "product_reviews", ids["Cleo"], "held")
    set_status(db, "product_reviews", ids["Sam"], "hidden")
    summary = reviews.rating_summary(db, product)
    assert summary == reviews.RatingSummary(4.5, 2) and summary.rounded == 5
    set_status(db, "product_reviews", ids["Ben"], "rejected")
    assert reviews.rating_summary(db, product).count == 1
    assert reviews.rating_summary(db, add_product(db, "NEW-1")) == reviews.NO_RATINGS
    # the list others see has only visible reviews; each author still sees their own
    listed, _more = reviews.product_reviews(db, product, people["Ben"])
    assert [r.id for r in listed] == [ids["Ana"]]
    mine = reviews.member_review(db, product, people["Sam"])
    assert mine is not None and mine.status == "hidden"


def test_an_authors_edit_sends_a_hidden_review_back_to_review(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    product = add_product(db)
    saved = reviews.save_review(db, product, people["Ana"], 1, "Bad", now_plus(0), LIMITS)
    set_status(db, "product_reviews", saved.id, "hidden")
    edited = reviews.save_review(db, product, people["Ana"], 2, "Better", now_plus(2), LIMITS)
    assert edited.status == "held"


def test_reviews_are_newest_first_and_paged(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    product = add_product(db)
    author_ids = [
        members.create_member(db, display_name=f"M{n}", password="x" * 12, email=f"m{n}@ex.com").id
        for n in range(5)
    ]
    for n, author in enumerate(author_ids):
        reviews.save_review(db, product, author, 3, f"review {n}", now_plus(n), LIMITS)
    first, more = reviews.product_reviews(db, product, people["Ana"], page=1, page_size=2)
    assert [r.body for r in first] == ["review 4", "review 3"] and more
    last, more = reviews.product_reviews(db, product, people["Ana"], page=3, page_size=2)
    assert [r.body for r in last] == ["review 0"] and not more


def test_a_block_hides_reviews_both_ways(db: sqlite_utils.Database, people: dict[str, int]) -> None:
    product = add_product(db)
    for n, name in enumerate(("Ana", "Ben", "Cleo")):
        reviews.save_review(db, product, people[name], 4, f"by {name}", now_plus(n), LIMITS)
    friends.block(db, people["Ana"], people["Ben"])
    db.conn.commit()

    def seen_by(name: str) -> list[str]:
        return [r.body for r in reviews.product_reviews(db, product, people[name])[0]]

    assert seen_by("Ana") == ["by Cleo"]  # the blocker does not see the blocked member
    assert seen_by("Ben") == ["by Cleo"]  # nor the blocked member the blocker
    assert seen_by("Cleo") == ["by Ben", "by Ana"]
    # the average is the store's, over every visible review
    assert reviews.rating_summary(db, product).count == 3


def test_the_author_deletes_their_review_with_its_answers(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    product = add_product(db)
    saved = reviews.save_review(db, product, people["Ana"], 4, "Nice", now_plus(), LIMITS)
    feedback.add_answer(db, "review", saved.id, people["Sam"], "Thanks!", now_plus())
    assert not reviews.delete_review(db, saved.id, people["Ben"])  # not Ben's
    assert reviews.delete_review(db, saved.id, people["Ana"])
    assert db.conn.execute("SELECT COUNT(*) FROM staff_answers").fetchone()[0] == 0


def test_reviews_are_screened(db: sqlite_utils.Database, people: dict[str, int]) -> None:
    product = add_product(db)
    db.conn.execute(
        "INSERT INTO watched_words (word, action, created_at) VALUES ('spamword', 'block', ?)",
        (to_iso(utcnow()),),
    )
    db.conn.execute(
        """INSERT INTO watched_words (word, action, created_at)
           VALUES ('checkme', 'require_approval', ?)""",
        (to_iso(utcnow()),),
    )
    db.conn.commit()
    with pytest.raises(Refused, match="spamword"):
        reviews.save_review(db, product, people["Ana"], 4, "buy spamword", now_plus(), LIMITS)
    held = reviews.save_review(db, product, people["Ana"], 4, "please checkme", now_plus(), LIMITS)
    assert held.status == "held"
    flag = db.conn.execute("SELECT item_kind, item_id FROM flags").fetchone()
    assert tuple(flag) == ("review", held.id)


# -- polls ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "options", "sentence"),
    [
        ("", ["Red", "Blue"], "Write the question."),
        ("q" * 201, ["Red", "Blue"], "under 200"),
        ("Colour?", ["Red"], "2 to 8 answers"),
        ("Colour?", ["Red", " ", ""], "2 to 8 answers"),
        ("Colour?", [f"C{n}" for n in range(9)], "2 to 8 answers"),
        ("Colour?", ["Red", "x" * 81], "under 80"),
        ("Colour?", ["Red", "red"], "the same"),
    ],
)
def test_bad_polls_are_refused(
    db: sqlite_utils.Database,
    people: dict[str, int],
    question: str,
    options: list[str],
    sentence: str,
) -> None:
    with pytest.raises(FeedbackError, match=sentence):
        polls.create_poll(db, question, options, None, people["Sam"], utcnow())
    assert db.conn.execute("SELECT COUNT(*) FROM polls").fetchone()[0] == 0


def test_a_closing_time_in_the_past_is_refused(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    now = utcnow()
    with pytest.raises(FeedbackError, match="already passed"):
        polls.create_poll(db, "Q?", ["A", "B"], now - timedelta(minutes=1), people["Sam"], now)


def test_one_vote_per_member_changeable_while_open(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    now = utcnow()
    poll_id = polls.create_poll(
        db, "Which colour?", ["Red", "Blue", "Green", "", "Black"], None, people["Sam"], now
    )
    poll = polls.get_poll(db, poll_id, people["Ana"])
    assert poll is not None
    red, blue, green, black = (option.id for option in poll.options)
    assert [o.label for o in poll.options] == ["Red", "Blue", "Green", "Black"]
    assert not poll.shows_results(now)  # not voted yet, still open

    polls.vote(db, poll_id, red, people["Ana"], now)
    polls.vote(db, poll_id, blue, people["Ana"], now)  # a change, not a second vote
    polls.vote(db, poll_id, blue, people["Ben"], now)
    polls.vote(db, poll_id, green, people["Cleo"], now)
    poll = polls.get_poll(db, poll_id, people["Ana"])
    assert poll is not None and poll.my_vote == blue and poll.shows_results(now)
    assert poll.total == 3
    assert [(o.label, o.votes, poll.percent(o)) for o in poll.options] == [
        ("Red", 0, 0),
        ("Blue", 2, 67),
        ("Green", 1, 33),
        ("Black", 0, 0),
    ]
    with pytest.raises(FeedbackError, match="Choose one"):
        polls.vote(db, poll_id, black + 100, people["Ana"], now)
    with pytest.raises(NotFound):
        polls.vote(db, 999, red, people["Ana"], now)


def test_closed_polls_refuse_votes_and_show_results(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    now = utcnow()
    timed = polls.create_poll(
        db, "Timed?", ["A", "B"], now + timedelta(hours=1), people["Sam"], now
    )
    by_hand = polls.create_poll(db, "By hand?", ["A", "B"], None, people["Sam"], now)
    later = now + timedelta(hours=2)
    found = polls.get_poll(db, timed, people["Ana"])
    assert found is not None and not found.is_open(later) and found.shows_results(later)
    with pytest.raises(polls.PollClosed):
        polls.vote(db, timed, found.options[0].id, people["Ana"], later)

    assert polls.close_poll(db, by_hand, now)
    assert not polls.close_poll(db, by_hand, now)  # already closed
    closed = polls.get_poll(db, by_hand, people["Ana"])
    assert closed is not None and closed.closed_at == to_iso(now)
    with pytest.raises(polls.PollClosed):
        polls.vote(db, by_hand, closed.options[0].id, people["Ana"], now)
    assert db.conn.execute("SELECT COUNT(*) FROM poll_votes").fetchone()[0] == 0

    listed = polls.list_polls(db, people["Ana"], now + timedelta(minutes=1))
    assert [p.question for p in listed] == ["Timed?", "By hand?"]  # the open one first


def test_deleting_a_poll_removes_its_votes(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    now = utcnow()
    poll_id = polls.create_poll(db, "Q?", ["A", "B"], None, people["Sam"], now)
    poll = polls.get_poll(db, poll_id)
    assert poll is not None
    polls.vote(db, poll_id, poll.options[0].id, people["Ana"], now)
    assert polls.delete_poll(db, poll_id) and not polls.delete_poll(db, poll_id)
    assert db.conn.execute("SELECT COUNT(*) FROM poll_votes").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM poll_options").fetchone()[0] == 0


# -- suggestions and answers ---------------------------------------------------------------------


def test_suggestions_post_edit_delete(db: sqlite_utils.Database, people: dict[str, int]) -> None:
    with pytest.raises(FeedbackError, match="empty"):
        suggestions.post_suggestion(db, people["Ana"], "   ", now_plus(), LIMITS)
    with pytest.raises(FeedbackError, match="2000"):
        suggestions.post_suggestion(db, people["Ana"], "x" * 2001, now_plus(), LIMITS)
    posted = suggestions.post_suggestion(db, people["Ana"], "More sizes", now_plus(0), LIMITS)
    assert posted.status == "visible"
    with pytest.raises(NotFound):
        suggestions.edit_suggestion(db, posted.id, people["Ben"], "Mine", now_plus(1), LIMITS)
    edited = suggestions.edit_suggestion(
        db, posted.id, people["Ana"], "More sizes, please", now_plus(2), LIMITS
    )
    assert edited.body == "More sizes, please" and edited.edited_at is not None
    assert not suggestions.delete_suggestion(db, posted.id, people["Ben"])
    assert suggestions.delete_suggestion(db, posted.id, people["Ana"])
    assert suggestions.get_suggestion(db, posted.id) is None


def test_who_reads_which_suggestion(db: sqlite_utils.Database, people: dict[str, int]) -> None:
    ana = suggestions.post_suggestion(db, people["Ana"], "by Ana", now_plus(0), LIMITS)
    ben = suggestions.post_suggestion(db, people["Ben"], "by Ben", now_plus(1), LIMITS)
    held = suggestions.post_suggestion(db, people["Cleo"], "by Cleo", now_plus(2), LIMITS)
    set_status(db, "suggestions", held.id, "held")
    friends.block(db, people["Ben"], people["Ana"])
    db.conn.commit()

    def seen_by(name: str) -> list[str]:
        return [s.body for s in suggestions.public_suggestions(db, people[name])[0]]

    assert seen_by("Ana") == ["by Ana"]
    assert seen_by("Ben") == ["by Ben"]
    assert seen_by("Cleo") == ["by Cleo", "by Ben", "by Ana"]  # her own held one too
    assert seen_by("Sam") == ["by Ben", "by Ana"]
    assert suggestions.readable(db, ben.id, people["Ana"]) is None
    assert suggestions.readable(db, held.id, people["Sam"]) is None
    assert suggestions.readable(db, ana.id, people["Sam"]) == ana


def test_staff_answers_and_the_console_order(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    old = suggestions.post_suggestion(db, people["Ana"], "old", now_plus(0), LIMITS)
    new = suggestions.post_suggestion(db, people["Ben"], "new", now_plus(1), LIMITS)
    answered = suggestions.post_suggestion(db, people["Cleo"], "answered", now_plus(2), LIMITS)
    answer_id = feedback.add_answer(
        db, "suggestion", answered.id, people["Sam"], " Yes! ", utcnow()
    )
    with pytest.raises(FeedbackError):
        feedback.add_answer(db, "suggestion", old.id, people["Sam"], " ", utcnow())
    with pytest.raises(NotFound):
        feedback.add_answer(db, "suggestion", 999, people["Sam"], "Hello", utcnow())

    everything, _more = suggestions.staff_suggestions(db, "all")
    assert [s.body for s in everything] == ["new", "old", "answered"]  # unanswered first
    waiting, _more = suggestions.staff_suggestions(db, "unanswered")
    assert [s.id for s in waiting] == [new.id, old.id]
    done, _more = suggestions.staff_suggestions(db, "answered")
    assert [s.id for s in done] == [answered.id]

    found = feedback.answers_for(db, "suggestion", [answered.id, old.id])
    assert [a.body for a in found[answered.id]] == ["Yes!"] and found[old.id] == []
    assert found[answered.id][0].staff_name == "Sam"
    assert feedback.edit_answer(db, answer_id, "Yes, from May.", utcnow())
    answer = feedback.get_answer(db, answer_id)
    assert answer is not None and answer.body == "Yes, from May." and answer.edited_at
    assert feedback.delete_answer(db, answer_id) and feedback.get_answer(db, answer_id) is None


def test_new_members_are_held_to_the_posting_limits(
    db: sqlite_utils.Database, people: dict[str, int]
) -> None:
    strict = Limits(machine_hold_percent=100, new_member_days=3, new_member_posts_per_minute=1)
    now = datetime.now(UTC)
    suggestions.post_suggestion(db, people["Ana"], "first", now, strict)
    with pytest.raises(Refused, match="very fast"):
        suggestions.post_suggestion(db, people["Ana"], "second", now, strict)
    with pytest.raises(Refused, match="links"):
        suggestions.post_suggestion(db, people["Ben"], "see www.example.com", now, strict)
