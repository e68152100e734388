"""The outbox: append, consume from a cursor, at-least-once with idempotent handlers."""

from __future__ import annotations

import pytest
import sqlite_utils

from instore import events


def test_append_and_read_in_order(db: sqlite_utils.Database) -> None:
    first = events.append(db, "zone.enter", {"zone": "Shoes"})
    second = events.append(db, "zone.exit", {"zone": "Shoes"})
    batch = events.read_batch(db, "offers")
    assert [event.id for event in batch] == [first, second]
    assert batch[0].payload == {"zone": "Shoes"}


def test_cursor_advances_per_consumer(db: sqlite_utils.Database) -> None:
    for n in range(5):
        events.append(db, "tick", {"n": n})
    seen: list[int] = []
    assert events.consume(db, "a", lambda event: seen.append(event.payload["n"]), limit=3) == 3
    assert events.consume(db, "a", lambda event: seen.append(event.payload["n"])) == 2
    assert seen == [0, 1, 2, 3, 4]
    assert events.consume(db, "a", lambda event: seen.append(-1)) == 0
    # Another consumer starts from the beginning.
    assert len(events.read_batch(db, "b")) == 5


def test_filter_by_kind(db: sqlite_utils.Database) -> None:
    events.append(db, "a")
    wanted = events.append(db, "b")
    assert [e.id for e in events.read_batch(db, "x", kinds=["b"])] == [wanted]


def test_failed_handler_does_not_advance(db: sqlite_utils.Database) -> None:
    """A crash mid-batch replays from the failed event: at-least-once delivery."""
    for n in range(3):
        events.append(db, "tick", {"n": n})

    def explode_on_second(event: events.Event) -> None:
        db.conn.execute("INSERT INTO cursors VALUES (?, 0, 'x')", (f"side-effect-{event.id}",))
        if event.payload["n"] == 1:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        events.consume(db, "worker", explode_on_second)
    assert events.cursor_position(db, "worker") == events.read_batch(db, "other")[0].id
    # The failed event's own writes were rolled back with it.
    side_effects = db.conn.execute("SELECT consumer FROM cursors WHERE consumer LIKE 'side%'")
    assert [row[0] for row in side_effects] == ["side-effect-1"]
    replayed = [event.payload["n"] for event in events.read_batch(db, "worker")]
    assert replayed == [1, 2]


def test_cursor_never_moves_back(db: sqlite_utils.Database) -> None:
    events.advance(db, "c", 10)
    events.advance(db, "c", 4)
    assert events.cursor_position(db, "c") == 10
