"""Tills and their keys, redeeming codes (every refusal, budgets, races) and loyalty purchases.

Real SQLite files throughout; the races use one connection per till, as two gunicorn threads do.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from instore import members
from instore.db import connect
from offers import redemption
from offers.codes import new_code
from offers.model import Offer, get_offer, save_offer, validate_offer
from offers.notifications import create_notification
from offers.redemption import (
    PurchaseRefused,
    Redemption,
    RedemptionRefused,
    canonical_code,
    discount_cents,
    record_purchase,
    redeem,
    redeemed_totals,
)
from offers.tills import (
    KEY_PREFIX,
    InvalidTill,
    Till,
    authenticate_till,
    create_till,
    get_till,
    hash_key,
    list_tills,
    revoke_till,
)

STORE = "S001"
NOW = datetime(2025, 3, 12, 11, 0, tzinfo=UTC)
BASE_PRICE = 8000
PERSONAL_PRICE = 5550  # 25 % off, gold with half the tags matching (see offers.pricing)
CODE_HOURS = 72
# Long enough for every racing thread to reach its own count while the first is still inserting;
# short enough that six threads taking turns stay well under a second.
RACE_GAP_SECONDS = 0.05


def make_member(db: sqlite_utils.Database, name: str = "Ana") -> members.Member:
    return members.create_member(
        db, display_name=name, password="correct horse battery", email=f"{name}@example.com"
    )


def make_offer(db: sqlite_utils.Database, **changes: Any) -> Offer:
    """A live 25 %-off shoe offer; tests change what they test."""
    data: dict[str, Any] = {
        "name": "Spring runners",
        "status": "live",
        "title": "25% off trail shoes",
        "benefit_kind": "percent_off",
        "benefit_value": 25,
        "product": "TR-200 trail shoe",
        "base_price_cents": BASE_PRICE,
        "valid_from": "2025-03-01T08:00:00Z",
        "valid_to": "2025-04-01T08:00:00Z",
        "trigger_kind": "zone_enter",
    }
    data.update(changes)
    offer = get_offer(db, save_offer(db, validate_offer(data)))
    assert offer is not None
    return offer


def issue_code(
    db: sqlite_utils.Database,
    member: members.Member,
    offer: Offer,
    *,
    price_cents: int | None = PERSONAL_PRICE,
    sent: datetime = NOW,
    valid_hours: int = CODE_HOURS,
    store: str = STORE,
) -> str:
    """A sent offer notification with a fresh code, as the offers worker writes it."""
    code = new_code(store)
    create_notification(
        db,
        member_id=member.id,
        kind="offer",
        title=offer.title,
        body="",
        now=sent,
        offer_id=offer.id,
        price_cents=price_cents,
        code=code,
        expires_at=sent + timedelta(hours=valid_hours),
    )
    return code


def refusal(excinfo: pytest.ExceptionInfo[RedemptionRefused]) -> tuple[int, str]:
    return excinfo.value.status, excinfo.value.error_code


@pytest.fixture
def till(db: sqlite_utils.Database) -> Till:
    return create_till(db, "Front 1", NOW)[0]


# --- tills -------------------------------------------------------------------------------------


def test_till_key_is_long_shown_once_and_stored_hashed(db: sqlite_utils.Database) -> None:
    added, key = create_till(db, "  Front   1 ", NOW)
    assert added.name == "Front 1" and added.active
    assert key.startswith(KEY_PREFIX) and len(key) >= len(KEY_PREFIX) + 43  # 256 bits
    stored = db.conn.execute("SELECT * FROM tills").fetchall()
    assert key not in repr(stored), "the plaintext key is never stored"
    assert hash_key(key) in repr(stored)
    assert authenticate_till(db, key) == added
    assert create_till(db, "Front 2")[1] != key


@pytest.mark.parametrize("presented", ["", "till_wrong", "x" * 10_000])
def test_wrong_keys_do_not_authenticate(db: sqlite_utils.Database, presented: str) -> None:
    create_till(db, "Front 1")
    assert authenticate_till(db, presented) is None


def test_revoked_key_stops_working_and_keeps_first_revocation(db: sqlite_utils.Database) -> None:
    key = create_till(db, "Front 1", NOW)[1]
    revoked = revoke_till(db, "Front 1", NOW + timedelta(hours=1))
    assert revoked.revoked_at == "2025-03-12T12:00:00Z" and not revoked.active
    assert authenticate_till(db, key) is None
    again = revoke_till(db, "Front 1", NOW + timedelta(hours=5))
    assert again.revoked_at == "2025-03-12T12:00:00Z"
    assert [t.name for t in list_tills(db)] == ["Front 1"]


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "needs a name"), ("x" * 61, "at most 60"), ("tab\x07bell", "printable")],
)
def test_bad_till_names(db: sqlite_utils.Database, name: str, message: str) -> None:
    with pytest.raises(InvalidTill, match=message):
        create_till(db, name)


def test_till_names_are_unique_even_after_revocation(db: sqlite_utils.Database) -> None:
    create_till(db, "Front 1")
    revoke_till(db, "Front 1")
    with pytest.raises(InvalidTill, match=r"already a till named 'Front 1' \(revoked\)"):
        create_till(db, "Front 1")
    with pytest.raises(InvalidTill, match="no till named 'Back'"):
        revoke_till(db, "Back")
    assert get_till(db, "Back") is None


# --- redeeming ---------------------------------------------------------------------------------


def test_redeem_records_the_saving(db: sqlite_utils.Database, till: Till) -> None:
    ana, offer = make_member(db), make_offer(db)
    code = issue_code(db, ana, offer)
    done = redeem(db, code, till, NOW + timedelta(hours=1), STORE)
    assert done == Redemption(
        id=done.id,
        code=code,
        offer_id=offer.id or 0,
        offer_title="25% off trail shoes",
        member_id=ana.id,
        member_name="Ana",
        till_id=till.id,
        ts="2025-03-12T12:00:00Z",
        discount_cents=BASE_PRICE - PERSONAL_PRICE,
    )
    assert done.to_json()["offer"] == {"id": offer.id, "title": "25% off trail shoes"}
    assert redeemed_totals(db, offer.id or 0) == (1, 2450)


@pytest.mark.parametrize(
    "mangle",
    [
        str.lower,
        lambda code: f"  {code}  ",
        lambda code: code.replace("-", " - ", 1),
        lambda code: code[:9] + code[10:],  # the middle dash dropped by a scanner
    ],
)
def test_codes_are_accepted_as_typed(db: sqlite_utils.Database, till: Till, mangle: Any) -> None:
    code = issue_code(db, make_member(db), make_offer(db))
    assert redeem(db, mangle(code), till, NOW, STORE).code == code


def test_confusable_letters_are_read_as_digits() -> None:
    assert canonical_code("s001-7kq2-m9xo") == "S001-7KQ2-M9X0"
    assert canonical_code("S001-IL00-0000") == "S001-1100-0000"


@pytest.mark.parametrize(
    "typed", ["", "7KQ2-M9XD", "S001", "S001-7KQ2-M9X", "S001-7KQ2-M9XDD", "S001-7KQ2-M9XU"]
)
def test_malformed_code_is_400(db: sqlite_utils.Database, till: Till, typed: str) -> None:
    with pytest.raises(RedemptionRefused, match="codes look like S001-7KQ2-M9XD") as excinfo:
        redeem(db, typed, till, NOW, STORE)
    assert refusal(excinfo) == (400, "malformed_code")


def test_other_stores_code_is_422_naming_that_store(db: sqlite_utils.Database, till: Till) -> None:
    code = issue_code(db, make_member(db), make_offer(db), store="S002")
    with pytest.raises(RedemptionRefused) as excinfo:
        redeem(db, code, till, NOW, STORE)
    assert refusal(excinfo) == (422, "other_store")
    assert "issued by store S002, not by this store (S001)" in excinfo.value.message
    assert db.conn.execute("SELECT COUNT(*) FROM redemptions").fetchone()[0] == 0


def test_unknown_code_is_404(db: sqlite_utils.Database, till: Till) -> None:
    issue_code(db, make_member(db), make_offer(db))
    with pytest.raises(RedemptionRefused, match="no code S001-0000-0000") as excinfo:
        redeem(db, "S001-0000-0000", till, NOW, STORE)
    assert refusal(excinfo) == (404, "unknown_code")


def test_second_redemption_is_409_saying_when_and_where(db: sqlite_utils.Database) -> None:
    front, _ = create_till(db, "Front 1")
    back, _ = create_till(db, "Back 2")
    offer = make_offer(db)
    code = issue_code(db, make_member(db), offer)
    redeem(db, code, front, NOW + timedelta(minutes=5), STORE)
    with pytest.raises(RedemptionRefused) as excinfo:
        redeem(db, code, back, NOW + timedelta(hours=1), STORE, timezone="Europe/Madrid")
    assert refusal(excinfo) == (409, "already_redeemed")
    # 11:05 UTC is 12:05 in Madrid in March.
    assert "already redeemed on 2025-03-12 12:05 (Europe/Madrid) at till 'Front 1'" in (
        excinfo.value.message
    )
    assert redeemed_totals(db, offer.id or 0) == (1, 2450)


def test_expired_code_is_410_saying_when(db: sqlite_utils.Database, till: Till) -> None:
    code = issue_code(db, make_member(db), make_offer(db))
    expires = NOW + timedelta(hours=CODE_HOURS)
    with pytest.raises(RedemptionRefused) as excinfo:
        redeem(db, code, till, expires + timedelta(seconds=1), STORE)
    assert refusal(excinfo) == (410, "expired")
    assert "expired on 2025-03-15 11:00 (UTC)" in excinfo.value.message
    # The last second of validity still counts.
    assert redeem(db, code, till, expires, STORE).code == code


def test_code_of_a_deleted_offer_is_410(db: sqlite_utils.Database, till: Till) -> None:
    offer = make_offer(db)
    code = issue_code(db, make_member(db), offer)
    db.conn.execute("DELETE FROM offers WHERE id = ?", (offer.id,))
    with pytest.raises(RedemptionRefused) as excinfo:
        redeem(db, code, till, NOW, STORE)
    assert refusal(excinfo) == (410, "offer_withdrawn")


def test_paused_offers_codes_are_still_honoured(db: sqlite_utils.Database, till: Till) -> None:
    code = issue_code(db, make_member(db), make_offer(db, status="paused"))
    assert redeem(db, code, till, NOW, STORE).discount_cents == 2450


def test_max_redeemed_budget_is_409(db: sqlite_utils.Database, till: Till) -> None:
    offer = make_offer(db, max_redeemed=2)
    codes = [issue_code(db, make_member(db, f"M{n}"), offer) for n in range(3)]
    redeem(db, codes[0], till, NOW, STORE)
    redeem(db, codes[1], till, NOW, STORE)
    with pytest.raises(RedemptionRefused, match="reached its limit of 2 redemptions") as excinfo:
        redeem(db, codes[2], till, NOW, STORE)
    assert refusal(excinfo) == (409, "budget_spent")
    assert redeemed_totals(db, offer.id or 0) == (2, 4900)


def test_discount_budget_refuses_the_redemption_that_would_exceed_it(
    db: sqlite_utils.Database, till: Till
) -> None:
    offer = make_offer(db, max_discount_cents=6000)
    big = [issue_code(db, make_member(db, f"M{n}"), offer) for n in range(3)]
    small = issue_code(db, make_member(db, "Small"), offer, price_cents=7000)  # saves 10.00
    redeem(db, big[0], till, NOW, STORE)
    redeem(db, big[1], till, NOW, STORE)  # 49.00 of 60.00 given away
    with pytest.raises(RedemptionRefused) as excinfo:
        redeem(db, big[2], till, NOW, STORE)
    assert refusal(excinfo) == (409, "budget_spent")
    assert "11.00 left of its 60.00 discount budget, less than this code's 24.50" in (
        excinfo.value.message
    )
    assert redeem(db, small, till, NOW, STORE).discount_cents == 1000  # still fits
    assert redeemed_totals(db, offer.id or 0) == (3, 5900)


@pytest.mark.parametrize(
    ("changes", "price", "saving"),
    [
        ({"benefit_kind": "points", "benefit_value": 200}, BASE_PRICE, 0),
        ({"benefit_kind": "fixed_off", "benefit_value": 1000}, 7000, 1000),
        # "buy 4, pay for 2": unit price 40.00 of 80.00, and a code buys the bundle of 4.
        ({"benefit_kind": "multibuy", "benefit_value": 2, "benefit_quantity": 4}, 4000, 16000),
        ({}, None, 0),
        ({}, BASE_PRICE + 100, 0),  # never a negative saving
    ],
)
def test_discount_per_benefit_kind(
    db: sqlite_utils.Database, changes: dict[str, Any], price: int | None, saving: int
) -> None:
    assert discount_cents(make_offer(db, **changes), price) == saving


def test_two_tills_racing_for_one_code_exactly_one_wins(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    code = issue_code(db, make_member(db), make_offer(db))
    tills = [create_till(db, f"Till {n}")[0] for n in range(8)]
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    start = threading.Barrier(len(tills))
    results: list[Redemption | RedemptionRefused] = []
    lock = threading.Lock()

    def scan(at: Till) -> None:
        own = connect(path)  # one connection per till, like separate portal threads
        start.wait()
        try:
            outcome: Redemption | RedemptionRefused = redeem(own, code, at, NOW, STORE)
        except RedemptionRefused as exc:
            outcome = exc
        finally:
            own.conn.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=scan, args=(t,)) for t in tills]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    wins = [r for r in results if isinstance(r, Redemption)]
    losses = [r for r in results if isinstance(r, RedemptionRefused)]
    assert len(wins) == 1 and len(losses) == len(tills) - 1
    assert {(r.status, r.error_code) for r in losses} == {(409, "already_redeemed")}
    assert db.conn.execute("SELECT COUNT(*) FROM redemptions").fetchone()[0] == 1


def test_unique_code_constraint_decides_a_stale_check(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A till that checked before the other till's insert committed loses at its own insert."""
    code = issue_code(db, make_member(db), make_offer(db))
    first, second = create_till(db, "Front 1")[0], create_till(db, "Front 2")[0]
    redeem(db, code, first, NOW, STORE)
    real_lookup = redemption._existing_redemption
    calls: list[str] = []

    def stale_then_real(database: sqlite_utils.Database, looked_up: str) -> Any:
        calls.append(looked_up)
        return None if len(calls) == 1 else real_lookup(database, looked_up)

    monkeypatch.setattr(redemption, "_existing_redemption", stale_then_real)
    with pytest.raises(RedemptionRefused, match="at till 'Front 1'") as excinfo:
        redeem(db, code, second, NOW, STORE)
    assert refusal(excinfo) == (409, "already_redeemed")
    assert len(calls) == 2, "the constraint, not the pre-check, refused it"
    assert db.conn.execute("SELECT COUNT(*) FROM redemptions").fetchone()[0] == 1


def test_budget_holds_when_two_codes_race_for_the_last_redemption(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting the budget and inserting are one write: no till counts while another inserts."""
    real_totals = redemption.redeemed_totals

    def slow_totals(database: sqlite_utils.Database, offer_id: int) -> tuple[int, int]:
        # Widen the gap between counting and inserting, so a missing lock shows every time.
        counted = real_totals(database, offer_id)
        time.sleep(RACE_GAP_SECONDS)
        return counted

    monkeypatch.setattr(redemption, "redeemed_totals", slow_totals)
    offer = make_offer(db, max_redeemed=1)
    codes = [issue_code(db, make_member(db, f"M{n}"), offer) for n in range(6)]
    tills = [create_till(db, f"Till {n}")[0] for n in range(len(codes))]
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    start = threading.Barrier(len(codes))
    outcomes: list[str] = []

    def scan(code: str, at: Till) -> None:
        own = connect(path)
        start.wait()
        try:
            redeem(own, code, at, NOW, STORE)
            outcomes.append("redeemed")
        except RedemptionRefused as exc:
            outcomes.append(exc.error_code)
        finally:
            own.conn.close()

    threads = [threading.Thread(target=scan, args=pair) for pair in zip(codes, tills, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["budget_spent"] * 5 + ["redeemed"]
    assert redeemed_totals(db, offer.id or 0)[0] == 1


# --- loyalty purchases -------------------------------------------------------------------------


def test_record_purchase(db: sqlite_utils.Database, till: Till) -> None:
    ana = make_member(db)
    spaced = " ".join(ana.loyalty_number[i : i + 4] for i in range(0, 12, 4))
    bought = record_purchase(db, spaced, "  TR-200   trail shoe ", 7999, till, NOW)
    assert (bought.member_id, bought.member_name, bought.product) == (
        ana.id,
        "Ana",
        "TR-200 trail shoe",
    )
    row = db.conn.execute("SELECT member_id, product, till_id, ts, amount_cents FROM purchases")
    assert row.fetchall() == [(ana.id, "TR-200 trail shoe", till.id, "2025-03-12T11:00:00Z", 7999)]


@pytest.mark.parametrize(
    ("loyalty", "product", "amount", "status", "error"),
    [
        ("ana@example.com", "shoe", 100, 400, "bad_loyalty_number"),
        ("", "shoe", 100, 400, "bad_loyalty_number"),
        (None, "   ", 100, 400, "missing_field"),
        (None, "shoe", -1, 400, "bad_amount"),
        (None, "shoe", 10_000_001, 400, "bad_amount"),
        ("000000000000", "shoe", 100, 404, "unknown_member"),
    ],
)
def test_purchase_refusals(
    db: sqlite_utils.Database,
    till: Till,
    loyalty: str | None,
    product: str,
    amount: int,
    status: int,
    error: str,
) -> None:
    ana = make_member(db)
    with pytest.raises(PurchaseRefused) as excinfo:
        record_purchase(
            db, ana.loyalty_number if loyalty is None else loyalty, product, amount, till, NOW
        )
    assert (excinfo.value.status, excinfo.value.error_code) == (status, error)
    assert db.conn.execute("SELECT COUNT(*) FROM purchases").fetchone()[0] == 0


def test_unknown_loyalty_number_reveals_nothing(db: sqlite_utils.Database, till: Till) -> None:
    make_member(db)
    with pytest.raises(PurchaseRefused) as excinfo:
        record_purchase(db, "4000 0000 0006", "shoe", 100, till, NOW)
    assert excinfo.value.to_json() == {
        "error": "unknown_member",
        "message": "No member has that loyalty number; check the card and scan it again.",
    }
