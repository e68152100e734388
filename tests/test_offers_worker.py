"""The offers worker: outbox events in, decisions and notifications out, channels fed once.

A controllable clock stands in for time; events go through the real outbox in a real SQLite file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner

from instore import events, members
from instore.cli import main as cli
from instore.clock import from_iso, to_iso
from instore.config import Config
from offers import worker as worker_module
from offers.codes import store_of
from offers.notifications import Notification, recent_notifications
from offers.worker import (
    CONSUMER,
    MAX_EVENT_AGE_SECONDS,
    Deliverer,
    OffersWorker,
    WorkerSettings,
)
from tests.test_offers_decide import NOW, SHOES, make_member, make_offer


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def worker(db: sqlite_utils.Database, clock: Clock) -> OffersWorker:
    settings = WorkerSettings(store_id="S042", store_timezone="Europe/Madrid")
    return OffersWorker(db, settings, clock=clock)


def presence_event(
    db: sqlite_utils.Database, kind: str, member_id: int | None, at: datetime, **extra: Any
) -> int:
    """An event as the presence daemon writes it, committed to the outbox."""
    payload = {"device": f"m:{member_id}", "member_id": member_id, "ts": to_iso(at), **extra}
    with db.conn:
        return events.append(db, kind, payload)


def test_zone_enter_sends_a_notification_with_code_price_and_expiry(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    ana = make_member(db)
    offer = make_offer(db)
    presence_event(db, "zone_enter", ana.id, clock.now, zone="Shoes", zone_id=SHOES)

    assert worker.run_once() == 1

    [note] = recent_notifications(db, ana.id)
    assert (note.kind, note.offer_id, note.title) == ("offer", offer.id, "25% off trail shoes")
    assert note.price_cents == 6000  # 25 % off 80.00, tier "member", no interests
    assert note.code is not None and store_of(note.code) == "S042"
    assert note.expires_at == to_iso(clock.now + timedelta(hours=72))
    assert note.data["zone"] == "Shoes" and note.data["benefit_kind"] == "percent_off"
    decision = db.conn.execute("SELECT outcome, id FROM decisions").fetchone()
    assert decision[0] == "sent" and note.decision_id == decision[1]
    assert events.cursor_position(db, CONSUMER) > 0


def test_replaying_the_outbox_never_notifies_twice(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    ana = make_member(db)
    make_offer(db)
    presence_event(db, "zone_enter", ana.id, clock.now, zone="Shoes", zone_id=SHOES)
    worker.run_once()
    # A crash before the cursor moved: the same event comes again.
    db.conn.execute("UPDATE cursors SET last_id = 0 WHERE consumer = ?", (CONSUMER,))

    assert worker.run_once() == 1
    assert len(recent_notifications(db, ana.id)) == 1
    assert db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1


def test_personal_price_uses_tier_and_interests(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    ana = make_member(db)
    db.conn.execute("UPDATE members SET tier = 'gold' WHERE id = ?", (ana.id,))
    db.conn.execute("INSERT INTO member_interests VALUES (?, 'running')", (ana.id,))
    make_offer(db, product_tags=["running", "trail"])
    presence_event(db, "zone_enter", ana.id, clock.now, zone="Shoes", zone_id=SHOES)

    worker.run_once()

    # pricing.personal_price_cents' own example: 6000 with gold 5 % + half of 5 % -> 5550.
    assert recent_notifications(db, ana.id)[0].price_cents == 5550


def test_variant_text_replaces_the_offer_text(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    ana = make_member(db)
    make_offer(db, variants=[{"name": "b", "weight": 1, "title": "Trail time: 25% off"}])
    presence_event(db, "zone_enter", ana.id, clock.now, zone="Shoes", zone_id=SHOES)

    worker.run_once()

    [note] = recent_notifications(db, ana.id)
    assert (note.title, note.variant) == ("Trail time: 25% off", "b")


def test_a_late_event_is_acknowledged_but_not_acted_on(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    ana = make_member(db)
    make_offer(db)
    late = clock.now - timedelta(seconds=MAX_EVENT_AGE_SECONDS + 1)
    presence_event(db, "zone_enter", ana.id, late, zone="Shoes", zone_id=SHOES)

    assert worker.run_once() == 1
    assert recent_notifications(db, ana.id) == []
    assert events.read_batch(db, CONSUMER, ["zone_enter"]) == []


def test_anonymous_devices_get_nothing(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    make_offer(db)
    presence_event(db, "zone_enter", None, clock.now, zone="Shoes", zone_id=SHOES)

    assert worker.run_once() == 1
    assert db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0


def test_revisit_offer_fires_on_the_nth_visit_within_the_window(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    ana = make_member(db)
    make_offer(
        db,
        trigger_kind="revisit",
        trigger_params={"count": 3, "window_seconds": 7 * 86400},
        zones=[],
    )
    sent_on_visit = []
    for _ in range(4):
        presence_event(db, "store_enter", ana.id, clock.now)
        worker.run_once()
        sent_on_visit.append(len(recent_notifications(db, ana.id)))
        clock.advance(days=2)

    # Visits on days 0, 2, 4, 6: the third (day 4) is the first with 3 in a week; on day 6 the
    # global cooldown has long passed, so the fourth visit (3 in the window again) sends too.
    assert sent_on_visit == [0, 0, 1, 2]
    assert db.conn.execute("SELECT COUNT(*) FROM visits").fetchone()[0] == 4


def test_visits_feed_the_audience(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    ana = make_member(db)
    make_offer(db, audience="not is_new and days_since_last_visit >= 30")
    clock.advance(days=-40)
    presence_event(db, "store_enter", ana.id, clock.now)  # a visit 40 days ago
    worker.run_once()
    clock.advance(days=40)
    presence_event(db, "store_enter", ana.id, clock.now)
    presence_event(db, "zone_enter", ana.id, clock.now, zone="Shoes", zone_id=SHOES)

    worker.run_once()

    assert len(recent_notifications(db, ana.id)) == 1


def test_portal_login_triggers_portal_login_offers(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    ana = make_member(db, location=False)  # a sign-in offer needs marketing consent only
    with db.conn:
        events.append(db, "portal.login", {"member_id": ana.id, "session_id": 1})
    # The portal stamps the event with real time; the worker's clock agrees for this test.
    clock.now = from_iso(db.conn.execute("SELECT ts FROM events").fetchone()[0])
    valid = {
        "valid_from": to_iso(clock.now - timedelta(days=1)),
        "valid_to": to_iso(clock.now + timedelta(days=1)),
    }
    make_offer(db, trigger_kind="portal_login", zones=[], **valid)

    worker.run_once()

    [note] = recent_notifications(db, ana.id)
    assert note.kind == "offer" and note.data["zone"] is None


class Recorder:
    """A delivery channel plug-in that remembers what it was given."""

    def __init__(self, name: str = "recorder", fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.seen: list[int] = []

    def deliver(self, db: sqlite_utils.Database, notification: Notification) -> None:
        if self.fail:
            raise RuntimeError("plug-in bug")
        self.seen.append(notification.id)


def test_channels_get_each_new_notification_once_across_restarts(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    ana, ben = make_member(db), make_member(db, "Ben")
    make_offer(db)
    presence_event(db, "zone_enter", ana.id, clock.now, zone="Shoes", zone_id=SHOES)
    worker.run_once()
    recorder, broken = Recorder(), Recorder("broken", fail=True)
    first = Deliverer(db, [broken, recorder], 0.01)
    first.start_at_end()  # a channel added now starts after the existing backlog
    presence_event(db, "zone_enter", ben.id, clock.now, zone="Shoes", zone_id=SHOES)
    worker.run_once()

    assert first.deliver_once() == 2  # one notification, two channels; the broken one is logged
    again = Recorder()
    restarted = Deliverer(db, [again], 0.01)
    restarted.start_at_end()
    assert restarted.deliver_once() == 0
    [bens] = recent_notifications(db, ben.id)
    assert recorder.seen == [bens.id] and again.seen == []


def test_a_channel_that_started_on_an_empty_store_keeps_its_backlog_across_a_restart(
    db: sqlite_utils.Database, worker: OffersWorker, clock: Clock
) -> None:
    """A cursor at 0 is not a new channel: notifications written while the worker was down
    (here: the first ones the store ever made) are delivered after the restart."""
    ana = make_member(db)
    make_offer(db)
    Deliverer(db, [Recorder()], 0.01).start_at_end()  # the store has no notification yet
    presence_event(db, "zone_enter", ana.id, clock.now, zone="Shoes", zone_id=SHOES)
    worker.run_once()  # written while the delivery thread was down

    recorder = Recorder()
    restarted = Deliverer(db, [recorder], 0.01)
    restarted.start_at_end()
    assert restarted.deliver_once() == 1
    [anas] = recent_notifications(db, ana.id)
    assert recorder.seen == [anas.id]


def test_offers_run_once_from_the_command_line(
    db: sqlite_utils.Database, config: Config, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = make_member(db)
    make_offer(db, valid_from="2020-01-01T00:00:00Z", valid_to="2099-01-01T00:00:00Z")
    now = datetime.now(UTC)
    presence_event(db, "zone_enter", ana.id, now, zone="Shoes", zone_id=SHOES)
    monkeypatch.setenv("INSTORE_DATABASE_PATH", str(config.database_path))

    result = CliRunner().invoke(cli, ["offers", "run", "--once"])

    assert result.exit_code == 0, result.output
    assert "handled 1 events" in result.output
    assert len(recent_notifications(db, ana.id)) == 1
    assert members.get_member(db, ana.id) is not None


def test_offers_run_refuses_bad_friend_quiet_hours(config: Config) -> None:
    env = {
        "INSTORE_DATABASE_PATH": str(config.database_path),
        "INSTORE_OFFERS_FRIEND_QUIET_HOURS": "22:00 till late",
    }

    result = CliRunner().invoke(cli, ["offers", "run", "--once"], env=env)

    assert result.exit_code == 2
    assert "offers.friend_quiet_hours" in result.output
    assert "Traceback" not in result.output


def test_an_event_that_breaks_the_engine_is_skipped_and_rolled_back_not_fatal(
    db: sqlite_utils.Database,
    worker: OffersWorker,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One bad event must not stop offers for the whole store (a crash loop on restart)."""
    ana, ben = make_member(db), make_member(db, "Ben")
    make_offer(db)
    real_decide = worker_module.decide

    def broken_for_ana(db_: sqlite_utils.Database, event: Any, *args: Any) -> Any:
        if event.payload.get("member_id") == ana.id:
            db_.conn.execute(
                "INSERT INTO decisions (ts, member_id, offer_id, outcome, reason)"
                " VALUES ('x', ?, 1, 'sent', 'half-written')",
                (ana.id,),
            )
            raise RuntimeError("engine bug")
        return real_decide(db_, event, *args)

    monkeypatch.setattr(worker_module, "decide", broken_for_ana)
    presence_event(db, "zone_enter", ana.id, clock.now, zone="Shoes", zone_id=SHOES)
    presence_event(db, "zone_enter", ben.id, clock.now, zone="Shoes", zone_id=SHOES)

    assert worker.run_once() == 2  # both acknowledged; the worker is still running
    assert worker.skipped == 1
    assert "event skipped after an error" in caplog.text and "engine bug" in caplog.text
    assert recent_notifications(db, ana.id) == []
    assert len(recent_notifications(db, ben.id)) == 1  # the next event was decided as usual
    half = db.conn.execute("SELECT COUNT(*) FROM decisions WHERE reason = 'half-written'")
    assert half.fetchone()[0] == 0  # the bad event's writes were rolled back
