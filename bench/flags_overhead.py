"""What feature flags cost where they are read: the presence daemon per observation, the offers
worker per notification.

1. **Presence** (``source.<name>`` flags): ``PresenceDaemon.handle`` over the same observations
   (real identity, estimator, tracker and SQLite outbox; a quarter of the phones are linked
   members) with no source name (the baseline: no flag consulted), with a source whose flag is
   unset, at 100 %, and at 30 % (a member bucket per observation, cached per member).
2. **The cached check alone** (what ``handle`` pays per observation), against a dict lookup.
3. **Offers delivery** (``channel.<name>`` flags): ``flags.is_enabled`` reads the table on every
   call (a notification is rare, a stale answer is not), against the cheapest SQLite read
   (``SELECT 1``) on the same connection as the baseline.

Prints figures, asserts nothing. ``.venv/bin/python bench/flags_overhead.py [--observations N]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from instore import flags, members
from instore.db import open_database
from presence.daemon import PresenceDaemon
from presence.floorplan_demo import seed_demo_floorplan
from presence.identity import Identifier
from presence.observation import WIFI_DATA, Observation
from presence.track import Tracker
from presence.zones import load_floorplan

PHONES = 400
MEMBER_SHARE = 4  # one phone in four is a linked member's
ROUNDS = 5


def observations(count: int, sensors: list[str], macs: list[str]) -> list[Observation]:
    rng = random.Random(7)  # noqa: S311 - a repeatable workload, not a secret
    start = time.time()
    return [
        Observation(
            start + i * 0.001,
            rng.choice(sensors),
            WIFI_DATA,
            rng.choice(macs),
            rng.randint(-90, -40),
        )
        for i in range(count)
    ]


def presence_figures(workdir: Path, count: int) -> None:
    db = open_database(workdir / "presence.db")
    seed_demo_floorplan(db)
    macs = [f"a4:5e:60:{i // 65536:02x}:{i // 256 % 256:02x}:{i % 256:02x}" for i in range(PHONES)]
    for mac in macs[: PHONES // MEMBER_SHARE]:
        member = members.create_member(db, display_name=mac, password="long enough pw")
        members.record_consents(db, member.id, {"location": True}, "v1")
        members.link_device(db, mac, member.id)
    plan = load_floorplan(db)
    batch = observations(count, sorted(plan.sensors), macs)
    cases = [
        ("baseline: no flag consulted", "", None),
        ("source.wifi unset", "wifi", None),
        ("source.wifi on (100 %)", "wifi", 100),
        ("source.wifi at 30 %", "wifi", 30),
    ]
    rates: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    dropped: dict[str, int] = {}
    for _ in range(ROUNDS):  # cases interleaved, so drift in the machine or the file hits all
        for label, source, percent in cases:
            if percent is None:
                flags.unset_flag(db, "source.wifi")
            else:
                flags.set_flag(db, "source.wifi", percent)
            daemon = PresenceDaemon(db, [], Identifier(db), Tracker(db, plan), 10, 30)
            daemon.identifier.refresh_members()
            began = time.perf_counter()
            for obs in batch:
                daemon.handle(obs, source)
            rates[label].append(count / (time.perf_counter() - began))
            dropped[label] = daemon.stats.flagged_off
    base = statistics.median(rates[cases[0][0]])
    print(f"presence: PresenceDaemon.handle, {count:,} observations, median of {ROUNDS}")
    for label, runs in rates.items():
        rate = statistics.median(runs)
        print(
            f"  {label:<30} {rate:>10,.0f} obs/s   {rate / base:5.2f}x baseline"
            f"   ({dropped[label]:,} dropped by the flag)"
        )
    db.conn.close()


def cache_figures(workdir: Path, calls: int) -> None:
    """The cached check alone, against a dict lookup: the per-observation price in isolation."""
    db = open_database(workdir / "cache.db")
    flags.set_flag(db, "source.on", 100)
    flags.set_flag(db, "source.some", 30)
    cache = flags.FlagCache(db)
    table = {"source.on": 100}
    members = [m % PHONES for m in range(calls)]

    def per_call(check: object) -> float:
        began = time.perf_counter()
        for member_id in members:
            check(member_id)  # type: ignore[operator]
        return (time.perf_counter() - began) / calls * 1e9

    baseline = per_call(lambda m: table.get("source.on"))
    print(f"FlagCache.is_enabled alone, {calls:,} calls over {PHONES} members")
    print(f"  {'baseline: dict.get':<30} {baseline:>8.0f} ns")
    for label, name in (("unset", "source.x"), ("on", "source.on"), ("30 %", "source.some")):
        cost = per_call(lambda m, name=name: cache.is_enabled(name, m, default=True))
        print(f"  {'flag ' + label:<30} {cost:>8.0f} ns   {cost / baseline:5.1f}x baseline")
    db.conn.close()


def delivery_figures(workdir: Path, calls: int) -> None:
    db = open_database(workdir / "offers.db")
    flags.set_flag(db, "channel.webpush", 30)

    def per_call(action: object) -> float:
        began = time.perf_counter()
        for member_id in range(calls):
            action(member_id)  # type: ignore[operator]
        return (time.perf_counter() - began) / calls * 1e6

    baseline = per_call(lambda m: db.conn.execute("SELECT 1").fetchone())
    unset = per_call(lambda m: flags.is_enabled(db, "channel.sms", m, default=True))
    percent = per_call(lambda m: flags.is_enabled(db, "channel.webpush", m, default=True))
    print(f"offers delivery: flags.is_enabled per notification, {calls:,} calls")
    print(f"  {'baseline: SELECT 1':<30} {baseline:>8.1f} µs")
    print(f"  {'channel flag unset':<30} {unset:>8.1f} µs   {unset / baseline:5.1f}x baseline")
    print(
        f"  {'channel flag at 30 %':<30} {percent:>8.1f} µs   {percent / baseline:5.1f}x baseline"
    )
    db.conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        presence_figures(Path(workdir), args.observations)
        cache_figures(Path(workdir), args.calls * 50)
        delivery_figures(Path(workdir), args.calls)


if __name__ == "__main__":
    main()
