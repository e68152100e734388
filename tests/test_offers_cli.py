"""``instore offers …`` from the shell: why, add, list, show, status, update and backtest.

Every command runs through click's CliRunner against a real SQLite file; bad input must exit 2
with a sentence on stderr, and the database must be as it was.
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from instore.cli import main
from instore.clock import to_iso
from instore.config import Config
from offers.model import get_offer
from presence.floorplan_demo import seed_demo_floorplan
from tests import test_backtest
from tests.test_offers_decide import make_member, make_offer, run


def test_why_explains_the_latest_decision(config: Config, db: sqlite_utils.Database) -> None:
    ana = make_member(db, "Ana", marketing=False)
    offer = make_offer(db)
    run(db, ana, [offer])
    env = {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}
    result = CliRunner().invoke(main, ["offers", "why", "Ana@example.com", str(offer.id)], env=env)
    assert result.exit_code == 0, result.output
    assert "Ana did not get offer" in result.output
    assert "no marketing consent" in result.output
    by_id = CliRunner().invoke(main, ["offers", "why", str(ana.id), str(offer.id)], env=env)
    assert by_id.output == result.output


def test_why_with_unknown_member_or_offer_is_exit_2(
    config: Config, db: sqlite_utils.Database
) -> None:
    make_member(db, "Ana")
    env = {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}
    nobody = CliRunner().invoke(main, ["offers", "why", "zoe@example.com", "1"], env=env)
    assert nobody.exit_code == 2 and "no member 'zoe@example.com'" in nobody.output
    no_offer = CliRunner().invoke(main, ["offers", "why", "Ana@example.com", "99"], env=env)
    assert no_offer.exit_code == 2 and "no offer with id 99" in no_offer.output


# -- managing offers from offer files --------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "offers"


@pytest.fixture
def env(config: Config, db: sqlite_utils.Database) -> dict[str, str]:
    """The CLI pointed at this test's database, in a Madrid store with the demo floor plan."""
    seed_demo_floorplan(db)
    return {
        "INSTORE_DATABASE_PATH": str(config.database_path),
        "INSTORE_CONFIG": "",
        "INSTORE_STORE_TIMEZONE": "Europe/Madrid",
    }


def invoke(env: dict[str, str], *args: str | Path | int) -> Result:
    return CliRunner().invoke(main, ["offers", *map(str, args)], env=env)


def write_offer(tmp_path: Path, filename: str = "offer.json", **changes: Any) -> Path:
    """The trail-shoe fixture with some fields changed (None removes one), as a JSON file."""
    data = {**tomllib.loads((FIXTURES / "trail-shoes.toml").read_text()), **changes}
    data = {k: to_iso(v) if isinstance(v, datetime) else v for k, v in data.items()}
    path = tmp_path / filename
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    return path


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.iterdir()))
def test_every_sample_offer_file_loads_against_the_demo_floor_plan(
    env: dict[str, str], db: sqlite_utils.Database, fixture: str
) -> None:
    result = invoke(env, "add", FIXTURES / fixture)
    assert result.exit_code == 0, result.output
    offer = get_offer(db, int(result.stdout))
    assert offer is not None and offer.status == "draft"
    assert f"added offer {offer.id}" in result.stderr


def test_add_resolves_zone_names_and_live_makes_it_live(
    env: dict[str, str], db: sqlite_utils.Database
) -> None:
    names = {name: zone_id for zone_id, name in db.conn.execute("SELECT id, name FROM zones")}
    result = invoke(env, "add", FIXTURES / "trail-shoes.toml", "--live")
    assert result.exit_code == 0, result.output
    offer = get_offer(db, int(result.stdout))
    assert offer is not None
    assert offer.zones == (names["Shoes"],) and offer.status == "live"
    assert offer.per_member_cap == 2 and offer.quiet_hours == ("20:00", "09:00")


def test_zone_names_ignore_case_and_ids_still_work(
    env: dict[str, str], db: sqlite_utils.Database, tmp_path: Path
) -> None:
    result = invoke(env, "add", write_offer(tmp_path, zones=["shoes", 3]))
    assert result.exit_code == 0, result.output
    offer = get_offer(db, int(result.stdout))
    assert offer is not None and offer.zones == (2, 3)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"zones": ["Shose"]}, "zones: no zone named 'Shose' (zones: Checkout, Denim, Entrance"),
        ({"zones": [99]}, "zones: no zone with id 99"),
        ({"benefit_value": 0}, "benefit_value for percent_off must be between 1 and 100, not 0"),
        ({"colour": "red"}, "unknown field(s): colour"),
        ({"per_member_cap": None}, "per_member_cap and cap_window_seconds go together"),
        ({"id": 5}, "add makes a new offer, but the file says id = 5"),
    ],
)
def test_add_refuses_a_bad_offer_file_naming_file_and_field(
    env: dict[str, str],
    db: sqlite_utils.Database,
    tmp_path: Path,
    changes: dict[str, Any],
    message: str,
) -> None:
    path = write_offer(tmp_path, **changes)
    result = invoke(env, "add", path)
    assert result.exit_code == 2, result.output
    assert f"instore: {path}: " in result.stderr and message in result.stderr
    assert db.conn.execute("SELECT COUNT(*) FROM offers").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("broken.toml", "name = ", "not valid TOML"),
        ("broken.json", "{", "not valid JSON"),
        ("list.json", "[1, 2]", "the file must hold one offer"),
        ("offer.yaml", "name: x", "an offer file must end in .toml or .json, not '.yaml'"),
    ],
)
def test_add_refuses_unreadable_files(
    env: dict[str, str], tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    result = invoke(env, "add", tmp_path / name)
    assert result.exit_code == 2 and message in result.stderr


def test_add_a_json_offer_file(
    env: dict[str, str], db: sqlite_utils.Database, tmp_path: Path
) -> None:
    result = invoke(env, "add", write_offer(tmp_path, "other.json", name="From JSON"))
    assert result.exit_code == 0, result.output
    offer = get_offer(db, int(result.stdout))
    assert offer is not None and offer.name == "From JSON" and offer.zones == (2,)


def add(env: dict[str, str], path: Path, *flags: str) -> int:
    result = invoke(env, "add", path, *flags)
    assert result.exit_code == 0, result.output
    return int(result.stdout)


def test_list_shows_offers_filters_by_status_and_gives_json(
    env: dict[str, str], tmp_path: Path
) -> None:
    shoes = add(env, FIXTURES / "trail-shoes.toml", "--live")
    welcome = add(env, FIXTURES / "welcome-login.json")
    table = invoke(env, "list")
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[:5] == ["ID", "STATUS", "PRIO", "TRIGGER", "ZONES"]
    assert "VALID (Europe/Madrid)" in lines[0]
    # Highest priority first; times in the store's zone (09:00 Madrid is 08:00 UTC).
    assert lines[1].split()[:5] == [str(shoes), "live", "10", "zone_enter", "Shoes"]
    assert "2025-03-01 09:00" in lines[1] and lines[1].endswith("Spring trail shoes")
    assert lines[2].split()[:5] == [str(welcome), "draft", "0", "portal_login", "anywhere"]
    live = invoke(env, "list", "--status", "live", "--json")
    data = json.loads(live.output)
    assert [offer["id"] for offer in data] == [shoes]
    assert data[0]["zone_names"] == ["Shoes"] and data[0]["valid_from"] == "2025-03-01T08:00:00Z"
    assert invoke(env, "list", "--status", "paused").output == "no paused offers yet\n"
    assert invoke(env, "list", "--status", "gone").exit_code == 2


def test_show_prints_one_offer_and_refuses_unknown_ids(env: dict[str, str]) -> None:
    offer_id = add(env, FIXTURES / "trail-shoes.toml")
    shown = invoke(env, "show", offer_id)
    assert shown.exit_code == 0
    assert shown.output.startswith(f"offer {offer_id}: Spring trail shoes (draft)\n")
    for expected in (
        "zones        Shoes",
        "cap          2 per member per 7 days",
        "cooldown     4 h",
        "quiet hours  20:00-09:00",
        "benefit      percent_off 25; base price 80.00, sale price 60.00",
        "holdout      10 %",
    ):
        assert expected in shown.output
    as_json = json.loads(invoke(env, "show", offer_id, "--json").output)
    assert as_json["id"] == offer_id and as_json["zone_names"] == ["Shoes"]
    missing = invoke(env, "show", 99)
    assert missing.exit_code == 2 and "there is no offer with id 99" in missing.stderr


def test_status_changes_and_refuses_unknown_ids_and_statuses(
    env: dict[str, str], db: sqlite_utils.Database
) -> None:
    offer_id = add(env, FIXTURES / "trail-shoes.toml")
    result = invoke(env, "status", offer_id, "live")
    assert result.exit_code == 0
    assert result.output == f"offer {offer_id} ('Spring trail shoes') is now live (was draft)\n"
    offer = get_offer(db, offer_id)
    assert offer is not None and offer.status == "live"
    assert invoke(env, "status", 99, "live").exit_code == 2
    bad = invoke(env, "status", offer_id, "deleted")
    assert bad.exit_code == 2 and "'deleted' is not one of" in bad.output


def test_update_replaces_the_offer_but_keeps_its_status_and_creation(
    env: dict[str, str], db: sqlite_utils.Database, tmp_path: Path
) -> None:
    offer_id = add(env, FIXTURES / "trail-shoes.toml", "--live")
    before = get_offer(db, offer_id)
    result = invoke(
        env, "update", offer_id, write_offer(tmp_path, title="30% off", zones=["Denim"])
    )
    assert result.exit_code == 0, result.output
    assert "updated; it is live" in result.output
    after = get_offer(db, offer_id)
    assert before is not None and after is not None
    assert (after.title, after.zones, after.status) == ("30% off", (3,), "live")
    assert after.created_at == before.created_at
    paused = invoke(env, "update", offer_id, write_offer(tmp_path, status="paused"))
    assert paused.exit_code == 0 and "it is paused" in paused.output


def test_update_refuses_bad_files_other_ids_and_unknown_offers(
    env: dict[str, str], db: sqlite_utils.Database, tmp_path: Path
) -> None:
    offer_id = add(env, FIXTURES / "trail-shoes.toml")
    other = invoke(env, "update", offer_id, write_offer(tmp_path, id=offer_id + 1))
    assert other.exit_code == 2 and f"is offer {offer_id + 1}, not offer {offer_id}" in other.stderr
    bad = invoke(env, "update", offer_id, write_offer(tmp_path, zones=["Nowhere"]))
    assert bad.exit_code == 2 and "no zone named 'Nowhere'" in bad.stderr
    unknown = invoke(env, "update", 99, write_offer(tmp_path))
    assert unknown.exit_code == 2 and "there is no offer with id 99" in unknown.stderr
    offer = get_offer(db, offer_id)
    assert offer is not None and offer.zones == (2,)


# -- backtest ----------------------------------------------------------------------------------


def backtest_file(tmp_path: Path) -> Path:
    """The draft of tests/test_backtest.py as an offer file."""
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(test_backtest.DRAFT))
    return path


def test_backtest_prints_the_hand_counted_history(
    env: dict[str, str], db: sqlite_utils.Database, tmp_path: Path
) -> None:
    test_backtest.build_history(db)
    period = ["--from", "2025-03-10", "--to", "2025-03-11"]
    result = invoke(env, "backtest", backtest_file(tmp_path), *period)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Members reached   2\nSends             4\n" in text
    assert "Sends per member  min 1, median 2, max 3" in text
    assert "  capped           1\n" in text and "  quiet_hours      2\n" in text
    assert "  no_consent       2\n" in text and "  holdout          0\n" in text
    assert "13 events read: 3 not members" in text
    assert "  10h  " + "█" * 40 + " 2\n  11h  " + "█" * 20 + " 1\n  12h" in text
    assert "  Mon  " + "█" * 40 + " 2\n  Tue  " + "█" * 40 + " 2\n  Wed  0\n" in text
    assert "discount if every send redeemed   90.50" in text
    assert "expected at 10% redemption        0.4 redemptions, 9.05 discount" in text
    assert "counts this offer's sends only" in text and "consents as recorded" in text
    as_json = invoke(env, "backtest", backtest_file(tmp_path), *period, "--json")
    data = json.loads(as_json.output)
    assert data["sends"] == 4 and data["outcomes"]["capped"] == 1
    assert data["budget"]["expected_discount_cents"] == 905
    rate = invoke(env, "backtest", backtest_file(tmp_path), *period, "--redemption-rate", "0.5")
    assert "expected at 50% redemption        2.0 redemptions, 45.25 discount" in rate.output
    assert db.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0


def test_backtest_of_a_saved_offer_by_id(
    env: dict[str, str], db: sqlite_utils.Database, tmp_path: Path
) -> None:
    test_backtest.build_history(db)
    offer_id = add(env, backtest_file(tmp_path))
    result = invoke(env, "backtest", offer_id, "--from", "2025-03-10", "--to", "2025-03-11")
    assert result.exit_code == 0 and "Sends             4\n" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "10/03/2025", "--to", "2025-03-11"], "--from: '10/03/2025' is not a date"),
        (["--from", "2025-03-10", "--to", "2025-02-30"], "--to: '2025-02-30' is not a date"),
        (["--from", "2025-03-11", "--to", "2025-03-10"], "--from 2025-03-11 is after --to"),
        (["--from", "2025-03-10", "--to", "2025-03-11", "--redemption-rate", "2"], "0<=x<=1"),
    ],
)
def test_backtest_refuses_bad_periods(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    result = invoke(env, "backtest", backtest_file(tmp_path), *args)
    assert result.exit_code == 2 and message in result.output


def test_backtest_refuses_bad_offers(env: dict[str, str], tmp_path: Path) -> None:
    period = ["--from", "2025-03-10", "--to", "2025-03-11"]
    bad = write_offer(tmp_path, zones=["Shose"])
    invalid = invoke(env, "backtest", bad, *period)
    assert invalid.exit_code == 2 and f"{bad}: zones: no zone named 'Shose'" in invalid.stderr
    missing = invoke(env, "backtest", tmp_path / "nope.toml", *period)
    assert missing.exit_code == 2 and "nope.toml: no such offer file" in missing.stderr
    unknown = invoke(env, "backtest", "42", *period)
    assert unknown.exit_code == 2 and "there is no offer with id 42" in unknown.stderr
