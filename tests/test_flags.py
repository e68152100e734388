"""Feature flags: on/off/percentage per store, stable member buckets, and the parts that read them
(the offers worker's delivery channels, the presence daemon's sources)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from instore import audit, flags, members
from instore.cli import main
from instore.config import Config
from instore.db import open_database
from offers.notifications import Notification, create_notification
from offers.worker import Deliverer
from presence.daemon import PresenceDaemon
from presence.floorplan_demo import seed_demo_floorplan
from presence.identity import Identifier
from presence.observation import WIFI_DATA, Observation
from presence.sources import Source
from presence.track import Tracker
from presence.zones import load_floorplan

MEMBERS = 2000
ROLLOUT = 30
TOLERANCE = 5  # percentage points: 2,000 draws at 30 % have a standard deviation of ~1


@pytest.mark.parametrize(
    ("text", "percent"),
    [("on", 100), ("OFF", 0), ("30", 30), ("30%", 30), (" 0 ", 0), ("100%", 100)],
)
def test_settings_people_type(text: str, percent: int) -> None:
    assert flags.parse_setting(text) == percent


@pytest.mark.parametrize("text", ["", "yes", "101", "-1", "3.5", "30 %%", "half"])
def test_bad_settings_say_what_is_accepted(text: str) -> None:
    with pytest.raises(flags.InvalidFlag, match="on, off, or a percentage from 0 to 100"):
        flags.parse_setting(text)


@pytest.mark.parametrize("name", ["", "Channel.webpush", "has space", ".dot", "a" * 65, "on/off"])
def test_bad_names_are_refused(db: sqlite_utils.Database, name: str) -> None:
    with pytest.raises(flags.InvalidFlag, match="lower-case letters"):
        flags.set_flag(db, name, 100)


def test_on_off_unset_and_the_default(db: sqlite_utils.Database) -> None:
    assert flags.is_enabled(db, "offers.new-ranking", 1) is False
    assert flags.is_enabled(db, "channel.webpush", 1, default=True) is True
    flags.set_flag(db, "channel.webpush", 0)
    assert flags.is_enabled(db, "channel.webpush", 1, default=True) is False
    assert flags.is_enabled(db, "channel.webpush", None, default=True) is False
    flags.set_flag(db, "channel.webpush", 100)
    assert flags.is_enabled(db, "channel.webpush", 1) is True
    assert flags.is_enabled(db, "channel.webpush", None) is True
    assert [(f.name, f.setting) for f in flags.list_flags(db)] == [("channel.webpush", "on")]
    assert flags.unset_flag(db, "channel.webpush") is True
    assert flags.unset_flag(db, "channel.webpush") is False
    assert flags.is_enabled(db, "channel.webpush", 1, default=True) is True


def test_every_change_is_in_the_audit_log(db: sqlite_utils.Database) -> None:
    flags.set_flag(db, "source.ble", 10)
    flags.set_flag(db, "source.ble", 100)
    flags.unset_flag(db, "source.ble")
    logged = [(e.action, e.target, e.before, e.after) for e in reversed(audit.entries(db))]
    assert logged == [
        ("flag.set", "flag:source.ble", None, {"setting": "10%"}),
        ("flag.set", "flag:source.ble", {"setting": "10%"}, {"setting": "on"}),
        ("flag.unset", "flag:source.ble", {"setting": "on"}, None),
    ]
    assert {e.actor_name for e in audit.entries(db)} == {audit.SHELL_ACTOR}


def enabled_members(db: sqlite_utils.Database, name: str, count: int = MEMBERS) -> set[int]:
    return {m for m in range(1, count + 1) if flags.is_enabled(db, name, m)}


def test_a_percentage_picks_that_share_of_members(db: sqlite_utils.Database) -> None:
    flags.set_flag(db, "channel.sms", ROLLOUT)
    share = 100 * len(enabled_members(db, "channel.sms")) / MEMBERS
    assert ROLLOUT - TOLERANCE <= share <= ROLLOUT + TOLERANCE
    # Anonymous visitors wait until the rollout is complete.
    assert flags.is_enabled(db, "channel.sms", None) is False


def test_buckets_are_stable_and_raising_only_adds_members(
    db: sqlite_utils.Database, config: Config
) -> None:
    flags.set_flag(db, "channel.sms", 20)
    at_20 = enabled_members(db, "channel.sms")
    flags.set_flag(db, "channel.sms", ROLLOUT)
    at_30 = enabled_members(db, "channel.sms")
    assert at_20 < at_30
    # Another process (a fresh connection and key cache) puts every member in the same bucket.
    flags._keys.clear()
    other = open_database(config.database_path)
    try:
        assert enabled_members(other, "channel.sms") == at_30
    finally:
        other.conn.close()
    key_file = config.database_path.parent / flags.FLAG_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_two_flags_pick_different_members(db: sqlite_utils.Database) -> None:
    flags.set_flag(db, "channel.sms", ROLLOUT)
    flags.set_flag(db, "source.uwb", ROLLOUT)
    sms, uwb = enabled_members(db, "channel.sms"), enabled_members(db, "source.uwb")
    # Independent buckets overlap by about 30 % x 30 % = 9 % of members, not 30 %.
    assert len(sms & uwb) < 0.15 * MEMBERS


def test_another_store_buckets_members_differently(tmp_path: Path) -> None:
    answers = []
    for store in ("a", "b"):
        db = open_database(tmp_path / store / "instore.db")
        flags.set_flag(db, "channel.sms", ROLLOUT)
        answers.append(enabled_members(db, "channel.sms"))
        db.conn.close()
    assert answers[0] != answers[1]


def test_the_cache_reads_the_table_again_only_after_its_age(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(flags, "MONOTONIC_TIME", lambda: now[0])
    cache = flags.FlagCache(db)
    assert cache.is_enabled("source.ble", 7, default=True) is True
    flags.set_flag(db, "source.ble", 0)
    assert cache.is_enabled("source.ble", 7, default=True) is True  # still the old view
    now[0] += flags.CACHE_SECONDS
    assert cache.is_enabled("source.ble", 7, default=True) is False
    flags.set_flag(db, "source.ble", ROLLOUT)
    now[0] += flags.CACHE_SECONDS
    assert {m for m in range(1, MEMBERS + 1) if cache.is_enabled("source.ble", m)} == (
        enabled_members(db, "source.ble")
    )


# -- the offers worker's delivery channels ---------------------------------------------------
class Recorder:
    """A delivery channel that keeps what it was handed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[int] = []

    def deliver(self, db: sqlite_utils.Database, notification: Notification) -> None:
        self.got.append(notification.member_id)


def make_members(db: sqlite_utils.Database, count: int) -> list[int]:
    return [
        members.create_member(db, display_name=f"M{i}", password="long enough pw").id
        for i in range(count)
    ]


def notify_each(db: sqlite_utils.Database, member_ids: list[int]) -> None:
    now = datetime.now(UTC)
    for member_id in member_ids:
        create_notification(
            db, member_id=member_id, kind="offer", title="Shoes -20%", body="Today", now=now
        )


def test_a_channel_whose_flag_is_off_is_skipped(db: sqlite_utils.Database) -> None:
    ids = make_members(db, 3)
    sms, push = Recorder("sms"), Recorder("webpush")
    deliverer = Deliverer(db, [sms, push], poll_seconds=0.01)
    deliverer.start_at_end()
    flags.set_flag(db, "channel.sms", 0)
    notify_each(db, ids)
    assert deliverer.deliver_once() == 6
    assert sms.got == [] and push.got == ids
    # Skipped, not postponed: turning it on later does not replay the backlog.
    flags.set_flag(db, "channel.sms", 100)
    assert deliverer.deliver_once() == 0
    notify_each(db, ids[:1])
    deliverer.deliver_once()
    assert sms.got == ids[:1]


def test_a_channel_at_a_percentage_reaches_exactly_its_members(db: sqlite_utils.Database) -> None:
    ids = make_members(db, 200)
    sms = Recorder("sms")
    deliverer = Deliverer(db, [sms], poll_seconds=0.01)
    deliverer.start_at_end()
    flags.set_flag(db, "channel.sms", ROLLOUT)
    notify_each(db, ids)
    while deliverer.deliver_once():
        pass
    assert set(sms.got) == {m for m in ids if flags.is_enabled(db, "channel.sms", m)}
    assert 0 < len(sms.got) < len(ids)


# -- the presence daemon's sources -----------------------------------------------------------
class Burst:
    """A finite source (like a replay): data frames from a few MACs, then the end."""

    def __init__(self, name: str, macs: list[str], repeat: int = 5) -> None:
        self.name = name
        self.macs = macs
        self.repeat = repeat

    async def stream(self) -> AsyncIterator[Observation]:
        for _ in range(self.repeat):
            for mac in self.macs:
                yield Observation(time.time(), "wifi-1", WIFI_DATA, mac, -50, {"seq": 1})


def run_until_sources_end(db: sqlite_utils.Database, sources: list[Source]) -> PresenceDaemon:
    daemon = PresenceDaemon(db, sources, Identifier(db), Tracker(db, load_floorplan(db)), 10, 30)

    async def main() -> None:
        await daemon.run(asyncio.Event(), stop_when_sources_end=True)

    asyncio.run(main())
    return daemon


def linked_members(db: sqlite_utils.Database, count: int) -> dict[str, int]:
    """Members who consented to location, each with a linked (universally administered) MAC."""
    macs = {}
    for i, member_id in enumerate(make_members(db, count)):
        members.record_consents(db, member_id, {"location": True}, "v1")
        mac = f"a4:5e:60:00:{i // 256:02x}:{i % 256:02x}"
        members.link_device(db, mac, member_id)
        macs[mac] = member_id
    return macs


def test_a_source_whose_flag_is_off_is_not_heard(db: sqlite_utils.Database) -> None:
    seed_demo_floorplan(db)
    macs = linked_members(db, 4)
    flags.set_flag(db, "source.uwb", 0)
    daemon = run_until_sources_end(db, [Burst("uwb", list(macs)), Burst("wifi", list(macs))])
    assert daemon.stats.flagged_off == 4 * 5
    assert daemon.stats.observations == 4 * 5  # the wifi source's, all of them


def test_a_source_at_a_percentage_hears_only_its_members(db: sqlite_utils.Database) -> None:
    seed_demo_floorplan(db)
    macs = linked_members(db, 40)
    anonymous = "a4:5e:60:ff:00:01"  # nobody's device
    flags.set_flag(db, "source.uwb", ROLLOUT)
    daemon = run_until_sources_end(db, [Burst("uwb", [*macs, anonymous], repeat=1)])
    chosen = [mac for mac, m in macs.items() if flags.is_enabled(db, "source.uwb", m)]
    assert 0 < len(chosen) < len(macs)
    assert daemon.stats.observations == len(chosen)
    assert daemon.stats.flagged_off == len(macs) - len(chosen) + 1  # + the anonymous device


# -- the command -----------------------------------------------------------------------------
def test_flags_commands(config: Config, db: sqlite_utils.Database) -> None:
    env = {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(main, ["flags", *args], env=env)
        return result.exit_code, result.output

    assert run("list") == (0, "no flags set\n")
    assert run("set", "channel.webpush", "30%") == (0, "channel.webpush = 30%\n")
    assert run("set", "source.ble", "off") == (0, "source.ble = off\n")
    code, out = run("list")
    assert code == 0 and "channel.webpush" in out and "30%" in out and "source.ble" in out
    code, out = run("list", "--json")
    assert code == 0 and '"percent": 30' in out
    code, out = run("check", "channel.webpush", "--member", "5")
    assert code == 0 and out.startswith("channel.webpush (30%) is o")
    assert run("check", "channel.webpush") == (
        0,
        "channel.webpush (30%) is off for an anonymous visitor\n",
    )
    code, out = run("set", "channel.webpush", "maybe")
    assert code == 2 and "on, off, or a percentage" in out and "Traceback" not in out
    code, out = run("set", "Channel WebPush", "on")
    assert code == 2 and "lower-case letters" in out
    assert run("unset", "source.ble") == (0, "source.ble unset\n")
    code, out = run("unset", "source.ble")
    assert code == 2 and "no flag 'source.ble' is set" in out
