"""The analytics read models against small hand-built datasets with known answers (real SQLite)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils

from instore.periods import LocalPeriod
from offers import reports as offer_reports
from offers.model import save_offer, validate_offer
from presence import reports as presence_reports
from presence.zones import create_zone

MADRID = "Europe/Madrid"
NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)


def _member(db: sqlite_utils.Database, number: int) -> int:
    db.conn.execute(
        "INSERT INTO members (id, loyalty_number, display_name, login_token, created_at)"
        " VALUES (?, ?, ?, ?, '2024-01-01T00:00:00Z')",
        (number, f"L{number}", f"M{number}", f"tok{number}"),
    )
    return number


def _event(db: sqlite_utils.Database, kind: str, device: str, zone_id: int, ts: str) -> None:
    payload = {"device": device, "member_id": None, "zone": "Z", "zone_id": zone_id, "ts": ts}
    db.conn.execute(
        "INSERT INTO events (ts, kind, payload) VALUES (?, ?, ?)", (ts, kind, json.dumps(payload))
    )


# -- periods -------------------------------------------------------------------------------------


def test_a_local_day_has_its_own_utc_bounds_across_a_clock_change() -> None:
    # Spain moved its clocks forward on 2024-03-31: that day lasted 23 hours.
    day = LocalPeriod(date(2024, 3, 31), date(2024, 3, 31), MADRID)
    assert day.bounds() == ("2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z")
    assert [
        p.bounds()[0]
        for p in LocalPeriod(date(2024, 3, 30), date(2024, 4, 1), MADRID).single_days()
    ] == ["2024-03-29T23:00:00Z", "2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z"]


# -- footfall ------------------------------------------------------------------------------------


def test_footfall_is_labelled_in_store_time_and_summed_per_day(db: sqlite_utils.Database) -> None:
    rows = [
        ("2024-06-09T21:00:00Z", 99, 99),  # 23:00 on the 9th in Madrid: before the period
        ("2024-06-09T22:00:00Z", 5, 8),  # 00:00 on the 10th
        ("2024-06-10T08:00:00Z", 10, 15),  # 10:00 on the 10th
        ("2024-06-11T08:00:00Z", 20, 30),  # 10:00 on the 11th
        ("2024-06-11T22:00:00Z", 99, 99),  # 00:00 on the 12th: after it
    ]
    db.conn.executemany(
        "INSERT INTO footfall (hour, devices, addresses, randomized_addresses) VALUES (?,?,?,0)",
        rows,
    )
    period = LocalPeriod(date(2024, 6, 10), date(2024, 6, 11), MADRID)
    hours = presence_reports.footfall_hours(db, period)
    assert [h.start for h in hours] == ["2024-06-10 00:00", "2024-06-10 10:00", "2024-06-11 10:00"]
    days = presence_reports.footfall_by_day(hours, period)
    assert [(d.day.isoformat(), d.devices, d.addresses) for d in days] == [
        ("2024-06-10", 15, 23),
        ("2024-06-11", 20, 30),
    ]
    profile = dict(presence_reports.footfall_by_hour_of_day(hours, period))
    assert profile[10] == 15.0 and profile[0] == 2.5 and profile[12] == 0


# -- dwell ---------------------------------------------------------------------------------------


def test_dwell_pairs_enters_with_exits_into_buckets(db: sqlite_utils.Database) -> None:
    shoes = create_zone(db, "Shoes", [(0, 0), (8, 0), (8, 8)]).id
    denim = create_zone(db, "Denim", [(8, 0), (16, 0), (16, 8)]).id
    _event(db, "zone_enter", "h:a", shoes, "2024-06-10T10:00:00Z")
    _event(db, "zone_exit", "h:a", shoes, "2024-06-10T10:00:30Z")  # 30 s: <1 min
    _event(db, "zone_enter", "h:b", shoes, "2024-06-10T10:00:00Z")
    _event(db, "zone_enter", "h:c", denim, "2024-06-10T10:00:00Z")
    _event(db, "zone_exit", "h:b", shoes, "2024-06-10T10:05:00Z")  # 5 min: 3-10
    _event(db, "zone_exit", "h:x", denim, "2024-06-10T10:05:00Z")  # no enter: ignored
    assert presence_reports.catch_up_dwell(db) == 6
    assert presence_reports.catch_up_dwell(db) == 0  # nothing new: nothing counted twice
    # h:c's enter waits in the open table for its exit, which comes in a later catch-up.
    _event(db, "zone_exit", "h:c", denim, "2024-06-10T10:45:00Z")  # 45 min: 30+
    assert presence_reports.catch_up_dwell(db, batch=1) == 1
    period = LocalPeriod(date(2024, 6, 10), date(2024, 6, 10), MADRID)
    result = {z.zone_name: z.visits for z in presence_reports.dwell_by_zone(db, period)}
    assert result == {"Denim": (0, 0, 0, 0, 1), "Shoes": (1, 0, 1, 0, 0)}
    before = LocalPeriod(date(2024, 6, 9), date(2024, 6, 9), MADRID)
    assert all(z.total == 0 for z in presence_reports.dwell_by_zone(db, before))


def test_dwell_bucket_edges() -> None:
    assert [presence_reports.dwell_bucket(s) for s in (0, 59, 60, 179, 180, 600, 1799, 1800)] == [
        0,
        0,
        1,
        1,
        2,
        3,
        3,
        4,
    ]


def test_a_deleted_zone_keeps_its_visits_without_a_name(db: sqlite_utils.Database) -> None:
    _event(db, "zone_enter", "h:a", 77, "2024-06-10T10:00:00Z")
    _event(db, "zone_exit", "h:a", 77, "2024-06-10T10:02:00Z")
    presence_reports.catch_up_dwell(db)
    period = LocalPeriod(date(2024, 6, 10), date(2024, 6, 10), MADRID)
    [zone] = presence_reports.dwell_by_zone(db, period)
    assert (zone.zone_id, zone.zone_name, zone.visits) == (77, None, (0, 1, 0, 0, 0))


# -- offers --------------------------------------------------------------------------------------


def saved_offer(db: sqlite_utils.Database, title: str, **changes: Any) -> int:
    """An offer named and titled ``title``, valid through 2024 (``changes`` set other fields)."""
    offer = {
        "name": title,
        "title": title,
        "benefit_kind": "percent_off",
        "benefit_value": 10,
        "product": "Trainers",
        "base_price_cents": 5000,
        "valid_from": "2024-01-01T00:00:00Z",
        "valid_to": "2025-01-01T00:00:00Z",
        "trigger_kind": "zone_enter",
    }
    return save_offer(db, validate_offer({**offer, **changes}))


def decided(
    db: sqlite_utils.Database,
    ts: str,
    member: int,
    offer: int,
    outcome: str,
    *,
    opened: bool = False,
    redeemed: bool = False,
) -> None:
    """A decision logged at ``ts``; one that was ``sent`` also gets its notification (opened at
    once if ``opened``) and, if ``redeemed``, its redemption at a till."""
    cursor = db.conn.execute(
        "INSERT INTO decisions (ts, member_id, offer_id, outcome) VALUES (?, ?, ?, ?)",
        (ts, member, offer, outcome),
    )
    if outcome != "sent":
        return
    code = f"C{cursor.lastrowid}"
    note = db.conn.execute(
        """INSERT INTO notifications (ts, member_id, kind, decision_id, offer_id, title, code,
                                      opened_at) VALUES (?, ?, 'offer', ?, ?, 't', ?, ?)""",
        (ts, member, cursor.lastrowid, offer, code, ts if opened else None),
    ).lastrowid
    if redeemed:
        db.conn.execute(
            """INSERT INTO redemptions (code, notification_id, offer_id, member_id, till_id, ts)
               VALUES (?, ?, ?, ?, 1, ?)""",
            (code, note, offer, member, ts),
        )


def test_offer_funnel_counts_each_stage_of_the_range(db: sqlite_utils.Database) -> None:
    db.conn.execute("INSERT INTO tills (name, key_hash, created_at) VALUES ('t', 'k', 'x')")
    for number in range(1, 6):
        _member(db, number)
    shoes, jeans = saved_offer(db, "Shoes deal"), saved_offer(db, "Jeans deal")
    day = "2024-06-10T10:00:00Z"
    decided(db, day, 1, shoes, "sent", opened=True, redeemed=True)
    decided(db, day, 2, shoes, "sent", opened=True)
    decided(db, day, 3, shoes, "sent")
    decided(db, day, 4, shoes, "holdout")
    decided(db, day, 5, shoes, "capped")
    decided(db, day, 5, shoes, "not_in_audience")  # not eligible
    decided(db, day, 5, shoes, "no_consent")  # not eligible
    decided(db, day, 1, jeans, "lower_priority")
    decided(db, "2024-06-12T10:00:00Z", 1, shoes, "sent", opened=True)  # outside the range
    period = LocalPeriod(date(2024, 6, 10), date(2024, 6, 11), MADRID)
    funnels = offer_reports.offer_funnels(db, period, NOW, code_valid_hours=72)
    assert [(f.title, f.eligible, f.sent, f.opened, f.redeemed) for f in funnels] == [
        ("Shoes deal", 5, 3, 2, 1),
        ("Jeans deal", 1, 0, 0, 0),
    ]


def test_settled_days_are_kept_and_recent_ones_counted_afresh(db: sqlite_utils.Database) -> None:
    _member(db, 1)
    offer = saved_offer(db, "Deal")
    decided(db, "2024-06-10T10:00:00Z", 1, offer, "sent")  # long ago: settled
    decided(db, "2024-06-30T09:00:00Z", 1, offer, "sent")  # today: not settled
    period = LocalPeriod(date(2024, 6, 10), date(2024, 6, 30), MADRID)
    [first] = offer_reports.offer_funnels(db, period, NOW, code_valid_hours=72)
    assert (first.sent, first.opened) == (2, 0)
    kept = db.conn.execute(
        "SELECT day FROM report_days WHERE report = ?", (offer_reports.FUNNEL_REPORT,)
    ).fetchall()
    # Every day up to 72 h + 1 h before NOW is kept, the last days are not.
    assert ("2024-06-10",) in kept and ("2024-06-26",) in kept and ("2024-06-27",) not in kept
    db.conn.execute("UPDATE notifications SET opened_at = ts")
    [second] = offer_reports.offer_funnels(db, period, NOW, code_valid_hours=72)
    assert (second.sent, second.opened) == (2, 1)  # the kept day keeps its figures


def test_friend_notes_per_local_day(db: sqlite_utils.Database) -> None:
    _member(db, 1)
    for ts in ("2024-06-09T22:30:00Z", "2024-06-10T21:59:00Z", "2024-06-10T22:00:00Z"):
        db.conn.execute(
            "INSERT INTO notifications (ts, member_id, kind, title) VALUES (?, 1, 'friend', 'f')",
            (ts,),
        )
    db.conn.execute(
        "INSERT INTO notifications (ts, member_id, kind, title)"
        " VALUES ('2024-06-10T10:00:00Z', 1, 'offer', 'o')"
    )
    period = LocalPeriod(date(2024, 6, 10), date(2024, 6, 11), MADRID)
    days = offer_reports.friend_notes_by_day(db, period, NOW)
    assert [(d.day.isoformat(), d.count) for d in days] == [("2024-06-10", 2), ("2024-06-11", 1)]


def test_new_and_returning_members(db: sqlite_utils.Database) -> None:
    for number in (1, 2, 3):
        _member(db, number)
    visits = [
        (1, "2024-06-01T10:00:00Z"),  # member 1 first came before the range
        (1, "2024-06-10T10:00:00Z"),
        (1, "2024-06-10T15:00:00Z"),  # twice that day: counted once
        (2, "2024-06-10T11:00:00Z"),  # member 2's first visit
        (2, "2024-06-11T11:00:00Z"),  # and back the next day
        (3, "2024-06-11T12:00:00Z"),
    ]
    db.conn.executemany(
        "INSERT INTO visits (member_id, event_id, ts) VALUES (?, ?, ?)",
        [(m, n, ts) for n, (m, ts) in enumerate(visits)],
    )
    period = LocalPeriod(date(2024, 6, 10), date(2024, 6, 12), MADRID)
    days = offer_reports.members_by_day(db, period, NOW)
    assert [(d.day.isoformat(), d.new, d.returning) for d in days] == [
        ("2024-06-10", 1, 1),
        ("2024-06-11", 1, 1),
        ("2024-06-12", 0, 0),
    ]


def test_a_day_in_the_future_is_never_kept(db: sqlite_utils.Database) -> None:
    period = LocalPeriod(NOW.date(), NOW.date() + timedelta(days=1), MADRID)
    offer_reports.members_by_day(db, period, NOW)
    assert db.conn.execute("SELECT COUNT(*) FROM report_days").fetchone()[0] == 0
