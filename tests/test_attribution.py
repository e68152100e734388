"""Lift per offer on a constructed store history whose numbers are worked out by hand below,
and ``instore offers lift``.

The history (offer "TR-200 trail shoe", 7-day window, decisions a minute apart from T0):

- 40 members sent the offer. 10 redeemed its code an hour later (one of them also had a loyalty
  purchase: still one conversion); 1 bought with a loyalty scan 2 h later; 1 bought 1 s before
  their window closed. Not conversions: a purchase exactly at the window's end, another product,
  a purchase before the decision, a purchase only inside a *later* decision's window, a
  redemption of another offer, and a member held out first and sent later who bought between.
  So 12 / 40 = 30 %.
- 40 members held out. 4 bought within the window (one typed in another case); 1 bought after.
  So 4 / 40 = 10 %.
- Absolute lift 0.30 - 0.10 = 0.20; relative 0.20 / 0.10 = 2.0;
  95 % interval 0.20 ± 1.96 * sqrt(0.3 * 0.7 / 40 + 0.1 * 0.9 / 40) = 0.20 ± 1.96 * sqrt(0.0075)
  = 0.20 ± 0.169741 -> [0.030259, 0.369741].
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils
from click.testing import CliRunner

from instore.cli import main
from instore.clock import to_iso
from instore.config import Config
from offers.attribution import MIN_GROUP_MEMBERS, UnknownOffer, all_lifts, offer_lift
from offers.tills import create_till
from tests.test_redemption import make_member, make_offer

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
WINDOW_HOURS = 168
WINDOW = timedelta(hours=WINDOW_HOURS)
LATER = T0 + timedelta(days=30)  # every window closed
PRODUCT = "TR-200 trail shoe"
GROUP = 40
HOUR = timedelta(hours=1)


class History:
    """Writes decisions, redemptions and purchases straight into the tables, as the worker and
    the tills would have."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.till_id = create_till(db, "Front 1")[0].id
        self.codes = iter(range(10_000))

    def members(self, count: int, prefix: str) -> list[int]:
        return [make_member(self.db, f"{prefix}{n}").id for n in range(count)]

    def decision(self, member: int, offer: int, outcome: str, at: datetime) -> None:
        self.db.conn.execute(
            "INSERT INTO decisions (ts, member_id, offer_id, outcome) VALUES (?, ?, ?, ?)",
            (to_iso(at), member, offer, outcome),
        )

    def redemption(self, member: int, offer: int, at: datetime) -> None:
        self.db.conn.execute(
            """INSERT INTO redemptions (code, offer_id, member_id, till_id, ts, discount_cents)
               VALUES (?, ?, ?, ?, ?, 2450)""",
            (f"S001-TEST-{next(self.codes):04d}", offer, member, self.till_id, to_iso(at)),
        )

    def purchase(self, member: int, at: datetime, product: str = PRODUCT) -> None:
        self.db.conn.execute(
            """INSERT INTO purchases (member_id, product, till_id, ts, amount_cents)
               VALUES (?, ?, ?, ?, 7999)""",
            (member, product, self.till_id, to_iso(at)),
        )


@pytest.fixture
def history(db: sqlite_utils.Database) -> History:
    return History(db)


@pytest.fixture
def shoe_offer(history: History) -> Iterator[int]:
    """The offer of the module docstring, with its whole history written."""
    offer = make_offer(history.db, product=PRODUCT, holdout_percent=50).id
    other = make_offer(history.db, name="Other", product="Socks").id
    assert offer is not None and other is not None
    sent, held = history.members(GROUP, "T"), history.members(GROUP, "C")
    start = {m: T0 + timedelta(minutes=n) for n, m in enumerate(sent + held)}
    for member in sent:
        history.decision(member, offer, "sent", start[member])
    for member in held:
        history.decision(member, offer, "holdout", start[member])

    for member in sent[:10]:
        history.redemption(member, offer, start[member] + HOUR)
    history.purchase(sent[0], start[sent[0]] + 2 * HOUR)  # also redeemed: one conversion
    history.purchase(sent[10], start[sent[10]] + 2 * HOUR)
    history.purchase(sent[11], start[sent[11]] + WINDOW)  # the window is [t0, t0 + 168 h)
    history.purchase(sent[12], start[sent[12]] + WINDOW - timedelta(seconds=1))
    history.purchase(sent[13], start[sent[13]] + HOUR, product="Other product")
    history.purchase(sent[14], start[sent[14]] - HOUR)
    history.decision(sent[15], offer, "sent", start[sent[15]] + timedelta(days=10))
    history.purchase(sent[15], start[sent[15]] + timedelta(days=9))
    history.redemption(sent[16], other, start[sent[16]] + HOUR)
    history.decision(sent[17], offer, "holdout", start[sent[17]] - timedelta(days=1))
    history.purchase(sent[17], start[sent[17]] - timedelta(hours=12))

    for member in held[:4]:
        history.purchase(member, start[member] + 3 * HOUR)
    history.db.conn.execute(
        "UPDATE purchases SET product = 'tr-200 TRAIL SHOE' WHERE member_id = ?", (held[1],)
    )
    history.purchase(held[4], start[held[4]] + WINDOW + HOUR)
    yield offer


def test_lift_on_the_constructed_history(
    db: sqlite_utils.Database, history: History, shoe_offer: int
) -> None:
    # A decision after "now" is not counted yet.
    history.decision(make_member(db, "Future").id, shoe_offer, "sent", LATER + HOUR)
    lift = offer_lift(db, shoe_offer, WINDOW_HOURS, LATER)
    assert (lift.treated.members, lift.treated.conversions) == (40, 12)
    assert (lift.control.members, lift.control.conversions) == (40, 4)
    assert lift.treated.rate == pytest.approx(0.30)
    assert lift.control.rate == pytest.approx(0.10)
    assert lift.absolute_lift == pytest.approx(0.20)
    assert lift.relative_lift == pytest.approx(2.0)
    assert lift.interval95 == pytest.approx((0.030259, 0.369741), abs=1e-6)
    assert lift.pending == 0
    assert lift.note == ""
    assert lift.to_json()["offer"] == {
        "id": shoe_offer,
        "title": "25% off trail shoes",
        "product": PRODUCT,
    }


def test_open_windows_count_what_happened_so_far(
    db: sqlite_utils.Database, shoe_offer: int
) -> None:
    """90 minutes in: the 10 redemptions (an hour after each decision) and nothing else yet."""
    lift = offer_lift(db, shoe_offer, WINDOW_HOURS, T0 + timedelta(minutes=90))
    assert (lift.treated.members, lift.treated.conversions) == (40, 10)
    assert (lift.control.members, lift.control.conversions) == (40, 0)
    assert lift.pending == 80
    assert lift.relative_lift is None, "no relative lift over a control rate of 0"
    assert lift.absolute_lift == pytest.approx(0.25)


def test_a_shorter_window_counts_fewer(db: sqlite_utils.Database, shoe_offer: int) -> None:
    lift = offer_lift(db, shoe_offer, 1, LATER)
    # The redemptions come exactly 1 h after the decision: outside a 1-hour window, like the rest.
    assert (lift.treated.conversions, lift.control.conversions) == (0, 0)


def test_small_groups_get_a_note_and_no_interval(
    db: sqlite_utils.Database, history: History
) -> None:
    offer = make_offer(db, holdout_percent=40).id
    assert offer is not None
    for n, member in enumerate(history.members(5, "S")):
        history.decision(member, offer, "sent" if n < 3 else "holdout", T0)
        if n in (0, 3):
            history.purchase(member, T0 + HOUR)
    lift = offer_lift(db, offer, WINDOW_HOURS, LATER)
    assert (lift.treated.members, lift.treated.conversions) == (3, 1)
    assert (lift.control.members, lift.control.conversions) == (2, 1)
    assert lift.absolute_lift == pytest.approx(1 / 3 - 1 / 2)
    assert lift.interval95 is None
    assert f"each group needs at least {MIN_GROUP_MEMBERS}" in lift.note
    assert "3 sent, 2 held out" in lift.note


def test_no_holdout_means_nothing_to_compare(db: sqlite_utils.Database, history: History) -> None:
    offer = make_offer(db).id
    assert offer is not None
    for member in history.members(MIN_GROUP_MEMBERS, "N"):
        history.decision(member, offer, "sent", T0)
    lift = offer_lift(db, offer, WINDOW_HOURS, LATER)
    assert lift.control.members == 0 and lift.control.rate is None
    assert lift.absolute_lift is None and lift.interval95 is None
    assert lift.note.startswith("no holdout group")


def test_unknown_offer(db: sqlite_utils.Database) -> None:
    with pytest.raises(UnknownOffer, match="no offer with id 99"):
        offer_lift(db, 99, WINDOW_HOURS, LATER)


def test_all_lifts_lists_offers_that_were_decided(
    db: sqlite_utils.Database, shoe_offer: int
) -> None:
    make_offer(db, name="Never sent")
    lifts = all_lifts(db, WINDOW_HOURS, LATER)
    assert [lift.offer_id for lift in lifts] == [shoe_offer]
    assert all_lifts(db, WINDOW_HOURS, T0 - timedelta(days=2)) == []


# --- instore offers lift -----------------------------------------------------------------------


@pytest.fixture
def env(config: Config) -> dict[str, str]:
    return {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}


def test_lift_table(env: dict[str, str], shoe_offer: int) -> None:
    result = CliRunner().invoke(main, ["offers", "lift", "--offer", str(shoe_offer)], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "window: 168 h after each member's decision"
    assert f"offer {shoe_offer}: 25% off trail shoes (product: {PRODUCT})" in lines
    assert ["sent", "40", "12", "30.0", "%"] in [line.split() for line in lines]
    assert ["held", "out", "40", "4", "10.0", "%"] in [line.split() for line in lines]
    assert "  lift: +20.0 pts (relative +200 %), 95 % interval +3.0 pts to +37.0 pts" in lines
    assert "note:" not in result.output


def test_lift_json_and_notes(
    env: dict[str, str], db: sqlite_utils.Database, shoe_offer: int
) -> None:
    small = make_offer(db, name="Small").id
    member = make_member(db, "Solo").id
    db.conn.execute(
        "INSERT INTO decisions (ts, member_id, offer_id, outcome) VALUES (?, ?, ?, 'sent')",
        (to_iso(T0), member, small),
    )
    result = CliRunner().invoke(main, ["offers", "lift", "--json"], env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [entry["offer"]["id"] for entry in body] == [shoe_offer, small]
    assert body[0]["treated"] == {"members": 40, "conversions": 12, "rate": pytest.approx(0.3)}
    assert body[0]["relative_lift"] == pytest.approx(2.0)
    assert body[1]["note"].startswith("no holdout group")
    table = CliRunner().invoke(main, ["offers", "lift"], env=env)
    assert "note: no holdout group" in table.output


def test_lift_mistakes_and_empty(env: dict[str, str], db: sqlite_utils.Database) -> None:
    empty = CliRunner().invoke(main, ["offers", "lift"], env=env)
    assert empty.exit_code == 0 and "no offer has been sent or held out yet" in empty.output
    unknown = CliRunner().invoke(main, ["offers", "lift", "--offer", "99"], env=env)
    assert unknown.exit_code == 2 and "no offer with id 99" in unknown.output
    not_a_number = CliRunner().invoke(main, ["offers", "lift", "--offer", "shoes"], env=env)
    assert not_a_number.exit_code == 2 and "'shoes' is not a valid integer" in not_a_number.output
