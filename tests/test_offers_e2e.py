"""End to end: a presence event, the real offers worker, the shopper's phone — within 2 s.

``instore portal`` (under gunicorn) and ``python -m instore offers run`` run as subprocesses on one
SQLite file with one environment, as on a box. This process plays the presence daemon: it commits
``zone_enter`` events to the outbox the way ``presence/track.py`` does, and then watches what the
shopper sees — the ``/feed`` stream over real HTTP, and the store page in headless Chromium. The
phone is recognised by its WiFi session (every client here is 127.0.0.1, which the demo lookup
maps to one MAC), so each test's portal belongs to one shopper. Nothing sleeps to wait for an
outcome: streams and pages are read with deadlines.
"""

from __future__ import annotations

import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlite_utils

from community import friends as community
from hardware.clients import DemoLookup
from instore import events, members, sessions
from instore.clock import to_iso, utcnow
from offers.codes import store_of
from offers.model import Offer
from presence.floorplan_demo import seed_demo_floorplan
from tests.browser import (
    browser_fixture,
    database_fixture,
    needs_chromium,
    phone_page_fixture,
    portal_fixture,
    shot,
    wait_until_true,
)
from tests.feed_helpers import DEADLINE_SECONDS, SseMessage, StreamReader
from tests.live_portal import LivePortal
from tests.test_feed import LiveFeeds
from tests.test_offers_decide import make_member, make_offer

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Every event may send: the default (one push per member per 15 min) would hold back all but the
# first of a shopper's offers.
PIPELINE_SETTINGS = {"INSTORE_OFFERS_GLOBAL_COOLDOWN_SECONDS": "0"}
WORKER_READY_SECONDS = 20.0  # imports and migrations take about 1 s
WORKER_STOP_SECONDS = 10.0
WORKER_READY_LINE = "offers worker: following the outbox"
LATENCY_EVENTS = 10
# 25 % off 80.00 (make_offer's offer) for a "member"-tier shopper with no interests.
PERSONAL_PRICE_CENTS = 6000
DEFAULT_STORE_ID = "S001"  # [store] id when nothing configures it

FeedOpener = Callable[[members.Member], StreamReader]

browser = browser_fixture()
portal = portal_fixture(PIPELINE_SETTINGS)
db = database_fixture()  # this process's seat: presence's writes and the test's reads
page = phone_page_fixture()


@pytest.fixture
def zones(db: sqlite_utils.Database) -> dict[str, int]:
    """The demo store's zone ids by name (Entrance, Shoes, Denim, …)."""
    plan = seed_demo_floorplan(db)
    return {zone.name: zone_id for zone_id, zone in plan.zones.items()}


@pytest.fixture
def offers_worker(portal: LivePortal) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m instore offers run`` with the portal's environment, following the outbox.

    Stopped with SIGTERM (systemd's stop) at the end; it must exit 0 with no traceback or error.
    """
    workdir = portal.database_path.parent
    log_path = workdir / "offers-worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "instore", "offers", "run"],
            # Unbuffered, so the ready line is in the file as soon as it is printed.
            env={**portal.environment, "PYTHONUNBUFFERED": "1"},
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_until_ready(process, log_path)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=WORKER_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=WORKER_STOP_SECONDS)
    output = log_path.read_text(errors="replace")
    assert process.returncode == 0, f"the worker exited with {process.returncode}:\n{output}"
    for marker in ("Traceback", "level=error"):
        assert marker not in output, f"the offers worker logged an error:\n{output}"


def wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Return once the worker says it follows the outbox; fail with its output otherwise."""
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        output = log_path.read_text(errors="replace")
        if WORKER_READY_LINE in output:
            return
        if process.poll() is not None:
            pytest.fail(f"the offers worker exited with {process.returncode}:\n{output}")
        time.sleep(0.05)
    output = log_path.read_text(errors="replace")
    pytest.fail(f"the offers worker was not ready within {WORKER_READY_SECONDS} s:\n{output}")


def on_store_wifi(db: sqlite_utils.Database, member: members.Member) -> None:
    """Make the test's phone (127.0.0.1, the demo lookup's MAC) this member's WiFi session."""
    mac = DemoLookup().mac_for("127.0.0.1")
    assert mac is not None
    sessions.authorize_client(
        db, mac=mac, ip="127.0.0.1", member_id=member.id, hours=4, idle_minutes=30
    )


def live_offer(db: sqlite_utils.Database, zone_id: int, **changes: Any) -> Offer:
    """A live zone_enter offer for this zone, valid from an hour ago until tomorrow."""
    now = utcnow()
    return make_offer(
        db,
        zones=[zone_id],
        valid_from=to_iso(now - timedelta(hours=1)),
        valid_to=to_iso(now + timedelta(days=1)),
        **changes,
    )


def enter_zone(db: sqlite_utils.Database, member: members.Member, zone: str, zone_id: int) -> int:
    """Commit a ``zone_enter`` to the outbox as the presence daemon does; return its id."""
    payload = {
        "device": f"m:{member.id}",
        "member_id": member.id,
        "zone": zone,
        "zone_id": zone_id,
        "ts": to_iso(utcnow()),
    }
    with db.conn:  # its own transaction, committed on leaving the block
        return events.append(db, "zone_enter", payload)


def decided_event(db: sqlite_utils.Database, notification_id: int) -> int | None:
    """The outbox event whose decision produced this notification."""
    row = db.conn.execute(
        """SELECT d.event_id FROM notifications n JOIN decisions d ON d.id = n.decision_id
           WHERE n.id = ?""",
        (notification_id,),
    ).fetchone()
    return None if row is None else int(row[0])


@pytest.fixture
def open_feed(portal: LivePortal, db: sqlite_utils.Database) -> Iterator[FeedOpener]:
    """Open a member's ``/feed`` over real HTTP and return it once it is being served (its retry
    hint came); the streams are hung up before the portal stops."""
    opened: list[LiveFeeds] = []

    def open_(member: members.Member) -> StreamReader:
        feeds = LiveFeeds(portal, db, member)
        opened.append(feeds)
        reader = feeds.open()
        reader.next()
        return reader

    yield open_
    for feeds in opened:
        for reader in feeds.readers:
            reader.hang_up()


@dataclass
class Shopper:
    """The member on this portal's WiFi, and the offer each zone has for them."""

    member: members.Member
    offers: dict[str, Offer]


@pytest.fixture
def shopper(db: sqlite_utils.Database, zones: dict[str, int]) -> Shopper:
    """Ana, with location and marketing consent, online; an offer waits in Shoes and in Denim."""
    ana = make_member(db, "Ana")
    on_store_wifi(db, ana)
    offers = {
        "Shoes": live_offer(db, zones["Shoes"]),
        "Denim": live_offer(db, zones["Denim"], name="Denim days", title="25% off selvedge jeans"),
    }
    return Shopper(ana, offers)


def check_offer(
    message: SseMessage, db: sqlite_utils.Database, event_id: int, offer: Offer, zone: str
) -> None:
    """The streamed notification is this event's offer, with a code and the personal price."""
    note = message.json()
    assert note["kind"] == "offer"
    assert decided_event(db, int(note["id"])) == event_id
    assert (note["offer_id"], note["title"], note["zone"]) == (offer.id, offer.title, zone)
    assert note["price_cents"] == PERSONAL_PRICE_CENTS
    assert note["base_price_cents"] == offer.base_price_cents
    assert note["code"] and store_of(note["code"]) == DEFAULT_STORE_ID


@pytest.mark.usefixtures("offers_worker")
def test_zone_entries_reach_the_feed_within_two_seconds(
    open_feed: FeedOpener,
    db: sqlite_utils.Database,
    zones: dict[str, int],
    shopper: Shopper,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each zone_enter becomes that zone's offer on the shopper's open stream within 2 s."""
    reader = open_feed(shopper.member)
    latencies: list[float] = []
    for number in range(LATENCY_EVENTS):
        zone = ("Shoes", "Denim")[number % 2]
        committed = time.monotonic()
        event_id = enter_zone(db, shopper.member, zone, zones[zone])
        arrived, message = reader.next_notification(DEADLINE_SECONDS)
        latencies.append(arrived - committed)
        check_offer(message, db, event_id, shopper.offers[zone], zone)

    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[18]  # never beyond the max
    with capsys.disabled():
        print(
            f"\nzone_enter commit -> offers worker -> /feed, {len(latencies)} events: "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )
    assert max(latencies) < DEADLINE_SECONDS


@pytest.mark.browser
@needs_chromium
@pytest.mark.usefixtures("offers_worker")
def test_zone_entry_shows_the_offer_on_the_store_page(
    page: Page,
    portal: LivePortal,
    db: sqlite_utils.Database,
    zones: dict[str, int],
    shopper: Shopper,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The open store page shows the offer's title and code within 2 s, and its QR loads."""
    from playwright.sync_api import expect  # installed: the browser fixture started

    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{portal.url}/store")
    expect(page.locator("#feed-status")).to_have_text("live")  # store.js is streaming
    offer = shopper.offers["Shoes"]

    committed = time.monotonic()
    enter_zone(db, shopper.member, "Shoes", zones["Shoes"])
    item = page.locator("#notifications > li.offer").first
    expect(item.locator("h3")).to_have_text(offer.title, timeout=DEADLINE_SECONDS * 1000)
    [(code,)] = db.conn.execute(
        "SELECT code FROM notifications WHERE member_id = ?", (shopper.member.id,)
    ).fetchall()
    left_ms = max(0.0, committed + DEADLINE_SECONDS - time.monotonic()) * 1000
    expect(item.locator("code")).to_have_text(code, timeout=left_ms)
    shown_after = time.monotonic() - committed
    with capsys.disabled():
        print(f"\nzone_enter commit -> offer on the store page: {shown_after * 1000:.0f} ms")
    assert shown_after < DEADLINE_SECONDS

    # The personal price, then the base price (with the store's currency sign, if any).
    expect(item.locator(".price")).to_contain_text(
        re.compile(r"Your price: \S*60\.00 was \S*80\.00")
    )
    qr = item.locator("img.qr")
    expect(qr).to_have_attribute("alt", f"QR code for {code}")
    wait_until_true(page, "img => img.complete && img.naturalWidth > 0", qr.element_handle())
    shot(page, "offers-e2e-store")
    assert not problems, problems


@pytest.mark.usefixtures("offers_worker")
def test_a_friend_in_the_store_is_told_within_two_seconds(
    open_feed: FeedOpener,
    db: sqlite_utils.Database,
    zones: dict[str, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ben, in the store, hears "Ana is here — in Shoes" on his stream when Ana enters Shoes."""
    ana, ben = (make_member(db, name, marketing=False) for name in ("Ana", "Ben"))
    for member in (ana, ben):
        members.record_consents(db, member.id, {"friend_visibility": True}, "v1")
    assert community.befriend(db, ana.id, ben.id) == "pending"
    assert community.befriend(db, ben.id, ana.id) == "accepted"
    seen = to_iso(utcnow())
    db.conn.execute(  # Ben's phone in Denim, as the tracker keeps it
        """INSERT INTO presence_state (device, member_id, zone_id, entered_at, last_seen_at)
           VALUES (?, ?, ?, ?, ?)""",
        (f"m:{ben.id}", ben.id, zones["Denim"], seen, seen),
    )
    on_store_wifi(db, ben)  # the test's phone is Ben's
    reader = open_feed(ben)

    committed = time.monotonic()
    event_id = enter_zone(db, ana, "Shoes", zones["Shoes"])
    arrived, message = reader.next_notification(DEADLINE_SECONDS)
    with capsys.disabled():
        print(f"\nzone_enter commit -> friend note on /feed: {(arrived - committed) * 1000:.0f} ms")
    assert arrived - committed < DEADLINE_SECONDS
    note = message.json()
    assert (note["kind"], note["title"], note["body"]) == ("friend", "Ana is here", "in Shoes")
    assert (note["friend_id"], note["friend_name"], note["zone"]) == (ana.id, "Ana", "Shoes")
    assert decided_event(db, int(note["id"])) == event_id
