"""``instore offers why``: a manager asks why a member did or did not get an offer."""

from __future__ import annotations

import sqlite_utils
from click.testing import CliRunner

from instore.cli import main
from instore.config import Config
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
