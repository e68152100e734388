"""Simulated history on a store that already runs: the demo's accounts, offers, events and
decisions stay as they were, every analytics report has data, and the offers worker carries on
with live events only. Real SQLite, the real worker and the real read models."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils

from instore import events, members
from instore.clock import to_iso, utcnow
from instore.config import Config, load_config
from instore.db import open_database
from instore.demo import seed_demo
from instore.history_sim import REASON_PREFIX, HistoryPlan, simulate_history
from instore.periods import LocalPeriod
from offers import reports as offer_reports
from offers.attribution import all_lifts
from offers.decide import why
from offers.demo import seed_demo_offers
from offers.demo_history import DEMO_HISTORY_DAYS, seed_demo_history
from offers.worker import CONSUMER, OffersWorker, WorkerSettings
from presence import reports as presence_reports
from presence.floorplan_demo import seed_demo_floorplan

TIMEZONE = "Europe/Madrid"  # opening hours are store-local, footfall hours UTC


@pytest.fixture
def demo_config(tmp_path: Path) -> Config:
    return load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
            "INSTORE_STORE_TIMEZONE": TIMEZONE,
        }
    )


@pytest.fixture
def demo_db(demo_config: Config) -> sqlite_utils.Database:
    """The demo store as ``instore demo`` seeds it, plus one live zone_enter the worker decided."""
    db = open_database(demo_config.database_path)
    terms = demo_config["portal"]["terms_version"]
    seed_demo(db, terms)
    plan = seed_demo_floorplan(db)
    seed_demo_offers(db, terms)
    ana = members.find_by_identifier(db, "ana@demo.store")
    assert ana is not None
    shoes = next(zone for zone in plan.zones.values() if zone.name == "Shoes")
    payload = {"device": f"m:{ana.id}", "member_id": ana.id, "zone": "Shoes", "zone_id": shoes.id}
    events.append(db, "zone_enter", {**payload, "ts": to_iso(utcnow())})
    worker = OffersWorker(db, WorkerSettings.from_config(demo_config))
    assert worker.run_once() == 1
    return db


def _snapshot(db: sqlite_utils.Database) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: db.conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608
        for table in ("members", "events", "decisions", "notifications", "offers")
    }


def test_history_lands_after_what_the_store_has_and_fills_every_report(
    demo_db: sqlite_utils.Database, demo_config: Config
) -> None:
    before = _snapshot(demo_db)
    assert before["decisions"], "the worker decided the live zone_enter"
    now = utcnow()
    summary = seed_demo_history(demo_db, demo_config, now)
    presence_reports.catch_up_dwell(demo_db)

    after = _snapshot(demo_db)
    for table, rows in before.items():
        assert after[table][: len(rows)] == rows, f"{table}: rows the store had were changed"
    assert summary.first_event_id == before["events"][-1][0] + 1
    assert summary.last_event_id == after["events"][-1][0]
    assert len(after["events"]) == len(before["events"]) + summary.events
    assert len(after["decisions"]) == len(before["decisions"]) + summary.decisions
    assert len(after["notifications"]) == len(before["notifications"]) + summary.notifications
    assert min(row[1] for row in after["events"][len(before["events"]) :]) >= (
        now - timedelta(days=DEMO_HISTORY_DAYS)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")

    today = now.astimezone(LocalPeriod(now.date(), now.date(), TIMEZONE).zone).date()
    period = LocalPeriod(today - timedelta(days=6), today, TIMEZONE)
    hours = presence_reports.footfall_hours(demo_db, period)
    assert sum(day.devices for day in presence_reports.footfall_by_day(hours, period)) > 0
    assert any(avg for _, avg in presence_reports.footfall_by_hour_of_day(hours, period))
    dwell = presence_reports.dwell_by_zone(demo_db, period)
    assert len(dwell) == 6 and all(zone.total > 0 for zone in dwell)
    funnels = offer_reports.offer_funnels(demo_db, period, now, 72)
    assert len(funnels) == 4 and all(f.sent and f.opened for f in funnels)
    assert sum(f.redeemed for f in funnels) > 0
    assert sum(d.count for d in offer_reports.friend_notes_by_day(demo_db, period, now)) > 0
    visitors = offer_reports.members_by_day(demo_db, period, now)
    assert sum(d.new for d in visitors) > 0 and sum(d.returning for d in visitors) > 0
    lifts = all_lifts(demo_db, 168, now)
    assert lifts and all(lift.treated.members and lift.control.members for lift in lifts)

    # "Why not?" for a demo shopper explains a simulated decision.
    ana = members.find_by_identifier(demo_db, "ana@demo.store")
    assert ana is not None
    offer_ids = [
        row[0]
        for row in demo_db.conn.execute(
            "SELECT DISTINCT offer_id FROM decisions WHERE member_id = ? AND offer_id IS NOT NULL"
            " AND reason LIKE ?",
            (ana.id, REASON_PREFIX + "%"),
        )
    ]
    assert offer_ids
    assert REASON_PREFIX in why(demo_db, ana.id, offer_ids[-1])


def test_the_worker_decides_nothing_old_and_still_decides_live_events(
    demo_db: sqlite_utils.Database, demo_config: Config
) -> None:
    summary = seed_demo_history(demo_db, demo_config)
    assert events.cursor_position(demo_db, CONSUMER) == summary.last_event_id
    decided = demo_db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    worker = OffersWorker(demo_db, WorkerSettings.from_config(demo_config))
    assert worker.run_once() == 0
    assert demo_db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == decided

    ben = members.find_by_identifier(demo_db, "ben@demo.store")
    assert ben is not None
    zone_id = demo_db.conn.execute("SELECT id FROM zones WHERE name = 'Women'").fetchone()[0]
    live = events.append(
        demo_db,
        "zone_enter",
        {"device": f"m:{ben.id}", "member_id": ben.id, "zone": "Women", "zone_id": zone_id}
        | {"ts": to_iso(utcnow())},
    )
    assert worker.run_once() == 1
    rows = demo_db.conn.execute(
        "SELECT outcome FROM decisions WHERE event_id = ?", (live,)
    ).fetchall()
    # Ben's simulated visits ended a day ago: no cap or cooldown of the history stops this one.
    assert rows and rows[0][0] in {"sent", "holdout"}


def test_the_same_seed_gives_the_same_history(tmp_path: Path) -> None:
    def history(name: str) -> list[tuple[object, ...]]:
        db = open_database(tmp_path / name)
        plan = HistoryPlan(
            zones=[(1, "A"), (2, 'B "quoted"')],
            members=[],
            offers=[],
            till_id=0,
            end=utcnow().replace(hour=0, minute=0, second=0, microsecond=0),
            days=2,
            visits_per_day=20,
        )
        simulate_history(db, plan)
        return db.conn.execute("SELECT kind, payload FROM events ORDER BY id").fetchall()

    first = history("one.db")
    assert first and first == history("two.db")
    assert '"zone": "B \\"quoted\\""' in "".join(str(payload) for _, payload in first)
