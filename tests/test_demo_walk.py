"""The demo's "walk my phone to zone…": the portal's control, the request table, and the simulator
walking the phone so that the real identity step and tracker see the member enter the zone.

Real SQLite files throughout; the simulator stands in for the radios, and time moves through the
tracker's and the poller's clocks, so nothing sleeps.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils
from flask import Flask, render_template, render_template_string
from flask.testing import FlaskClient

from hardware.clients import DemoLookup
from instore import members, sessions
from instore.clock import utcnow
from instore.config import Config, load_config
from portal import create_app
from presence import identity, walks
from presence.floorplan_demo import seed_demo_floorplan
from presence.identity import Identifier
from presence.observation import Observation
from presence.sim import REQUESTED_HOLD_S, TX_INTERVAL_S, TX_JITTER, Simulation
from presence.sources.sim import SimSource
from presence.track import Tracker
from presence.walks import WalkPoller, request_walk, take_pending
from presence.zones import FloorPlan
from tests.conftest import TEST_CLIENT_IP

CLIENT_MAC = DemoLookup().mac_for(TEST_CLIENT_IP)  # what the portal links at the test's sign-in
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# Door to a spot in Men, the zone farthest from it, is ~21 m at 1.3 m/s, plus the estimator's
# settling (ZONE_SWITCH_HOLD_S and SETTLE_S) and three sightings before tracking starts.
ARRIVAL_BUDGET_S = 60.0
WARM_UP_S = 90.0  # the demo's shoppers are spread over the floor by then


@pytest.fixture
def demo_config(tmp_path: Path) -> Config:
    """The conftest ``config`` (same database file) with the demo's controls on."""
    return load_config(
        environ={
            "INSTORE_DATABASE_PATH": str(tmp_path / "instore.db"),
            "INSTORE_PORTAL_SECRET_KEY": "test-secret-key",
            "INSTORE_PORTAL_DEMO_CONTROLS": "true",
        }
    )


@pytest.fixture
def demo_app(demo_config: Config) -> Flask:
    """The demo portal with CSRF checks on."""
    return create_app(demo_config, {"TESTING": True})


@pytest.fixture
def demo_client(demo_config: Config) -> FlaskClient:
    """The demo portal for flows (CSRF off; its own test covers it)."""
    return create_app(demo_config, {"TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()


@pytest.fixture
def plan(db: sqlite_utils.Database) -> FloorPlan:
    return seed_demo_floorplan(db)


def online_member(
    db: sqlite_utils.Database, location: bool = True, link: bool = True
) -> members.Member:
    """A member whose phone (the test client's IP and demo MAC) is on the store WiFi."""
    member = members.create_member(db, display_name="Ana", password="x" * 12, email="a@b.test")
    members.record_consents(db, member.id, {"wifi_terms": True, "location": location}, "2026-11")
    assert CLIENT_MAC is not None
    if link:
        members.link_device(db, CLIENT_MAC, member.id)
    sessions.authorize_client(
        db, mac=CLIENT_MAC, ip=TEST_CLIENT_IP, member_id=member.id, hours=8, idle_minutes=60
    )
    return member


def walk_rows(db: sqlite_utils.Database) -> list[tuple[int, int, str | None]]:
    return db.conn.execute(
        "SELECT member_id, zone_id, taken_at FROM sim_walks ORDER BY id"
    ).fetchall()


def zone_id(plan: FloorPlan, name: str) -> int:
    zone = plan.zone_named(name)
    assert zone is not None
    return zone.id


# -- the portal's control ----------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [True, False])
def test_no_control_without_demo_controls(
    app: Flask, client: FlaskClient, db: sqlite_utils.Database, plan: FloorPlan, csrf: bool
) -> None:
    online_member(db)
    poster = app.test_client() if csrf else client
    response = poster.post("/demo/walk", data={"zone_id": zone_id(plan, "Shoes")})
    assert response.status_code == 404  # not even a CSRF refusal: the address does not exist
    assert walk_rows(db) == []
    with app.test_request_context("/store"):
        defined = "{{ demo_controls is defined }} {{ demo_zones is defined }}"
        assert render_template_string(defined) == "False False"
        assert render_template("captive/_demo_walk.html").strip() == ""


def test_partial_lists_the_zones_in_the_demo(demo_app: Flask, plan: FloorPlan) -> None:
    with demo_app.test_request_context("/store"):
        html = render_template("captive/_demo_walk.html")
    assert 'action="/demo/walk"' in html
    assert CSRF_INPUT.search(html) and CSRF_INPUT.search(html).group(1)  # type: ignore[union-attr]
    options = re.findall(r'<option value="(\d+)">([^<]+)</option>', html)
    assert [(int(zone), name) for zone, name in options] == [
        (zone.id, zone.name) for zone in sorted(plan.zones.values(), key=lambda z: z.id)
    ]


@pytest.mark.parametrize("demo", [True, False])
def test_the_store_page_has_the_control_in_the_demo_only(
    client: FlaskClient,
    demo_client: FlaskClient,
    db: sqlite_utils.Database,
    plan: FloorPlan,
    demo: bool,
) -> None:
    online_member(db)
    page = (demo_client if demo else client).get("/store").get_data(as_text=True)
    assert ('action="/demo/walk"' in page) is demo
    assert ("Demo: walk my phone to" in page) is demo
    assert (f'<option value="{zone_id(plan, "Men")}">Men</option>' in page) is demo


def test_walk_needs_the_csrf_token(
    demo_app: Flask, db: sqlite_utils.Database, plan: FloorPlan
) -> None:
    member = online_member(db)
    browser = demo_app.test_client()
    shoes = zone_id(plan, "Shoes")
    refused = browser.post("/demo/walk", data={"zone_id": shoes})
    assert refused.status_code == 400
    assert b"This form has expired" in refused.data
    assert walk_rows(db) == []

    match = CSRF_INPUT.search(browser.get("/signin").get_data(as_text=True))
    assert match is not None
    accepted = browser.post("/demo/walk", data={"zone_id": shoes, "csrf_token": match.group(1)})
    assert accepted.status_code == 302
    assert walk_rows(db) == [(member.id, shoes, None)]


@pytest.mark.parametrize("value", ["999", "Shoes", "", "-1"])
def test_a_zone_that_does_not_exist_is_a_400_with_a_sentence(
    demo_client: FlaskClient, db: sqlite_utils.Database, plan: FloorPlan, value: str
) -> None:
    online_member(db)
    response = demo_client.post("/demo/walk", data={"zone_id": value})
    assert response.status_code == 400
    assert b"This store has no area like that." in response.data
    assert walk_rows(db) == []


@pytest.mark.parametrize(
    ("location", "message"),
    [
        (True, "Your phone is walking to Shoes. Offers for that area appear on this page"),
        (False, "you have not allowed us to use where you are in the store, so no offers"),
    ],
)
def test_walk_request_is_written_and_the_store_page_says_so(
    demo_client: FlaskClient,
    db: sqlite_utils.Database,
    plan: FloorPlan,
    location: bool,
    message: str,
) -> None:
    member = online_member(db, location=location)
    shoes = zone_id(plan, "Shoes")
    response = demo_client.post("/demo/walk", data={"zone_id": str(shoes)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/store"
    assert walk_rows(db) == [(member.id, shoes, None)]
    page = demo_client.get("/store").get_data(as_text=True)
    assert message in page.replace("&#39;", "'")


def test_without_a_linked_phone_nothing_is_requested(
    demo_client: FlaskClient, db: sqlite_utils.Database, plan: FloorPlan
) -> None:
    online_member(db, link=False)
    response = demo_client.post("/demo/walk", data={"zone_id": zone_id(plan, "Shoes")})
    assert response.headers["Location"] == "/store"
    assert walk_rows(db) == []
    assert "No phone is linked to your account yet" in demo_client.get("/store").get_data(
        as_text=True
    )


def test_nobody_shopping_is_sent_to_sign_in(
    demo_client: FlaskClient, db: sqlite_utils.Database, plan: FloorPlan
) -> None:
    response = demo_client.post("/demo/walk", data={"zone_id": zone_id(plan, "Shoes")})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/signin")
    assert walk_rows(db) == []


# -- the request table ---------------------------------------------------------------------------


def test_take_pending_keeps_each_members_latest_and_drops_stale_requests(
    db: sqlite_utils.Database, plan: FloorPlan
) -> None:
    ana = members.create_member(db, display_name="Ana", password="x" * 12, email="a@b.test")
    ben = members.create_member(db, display_name="Ben", password="x" * 12, email="b@b.test")
    members.link_device(db, "02:00:00:00:00:0a", ana.id)
    shoes, men, women = (zone_id(plan, name) for name in ("Shoes", "Men", "Women"))
    now = utcnow()
    stale = now - timedelta(seconds=walks.REQUEST_TTL_S + 1)
    request_walk(db, ben.id, women, now=stale)  # asked while no simulator ran
    request_walk(db, ana.id, shoes, now=now)
    latest = request_walk(db, ana.id, men, now=now)  # changed her mind before the sim looked

    taken = take_pending(db, now=now)
    assert [(r.id, r.member_id, r.zone_id, r.macs) for r in taken] == [
        (latest, ana.id, men, ("02:00:00:00:00:0a",))
    ]
    outcomes = [row[0] for row in db.conn.execute("SELECT outcome FROM sim_walks ORDER BY id")]
    assert outcomes == [walks.EXPIRED, walks.SUPERSEDED, walks.TAKEN]
    assert take_pending(db, now=now) == []  # taken once only


def test_poller_looks_at_most_once_per_interval(db: sqlite_utils.Database, plan: FloorPlan) -> None:
    ana = members.create_member(db, display_name="Ana", password="x" * 12, email="a@b.test")
    now = [100.0]
    poller = WalkPoller(db, clock=lambda: now[0])
    assert poller.poll() == []  # looked: nothing yet
    request_walk(db, ana.id, zone_id(plan, "Shoes"))
    now[0] += walks.POLL_INTERVAL_S / 2
    assert poller.poll() == []  # too soon to look again
    now[0] += walks.POLL_INTERVAL_S / 2
    assert [r.member_id for r in poller.poll()] == [ana.id]


def test_a_newly_linked_phone_is_recognised_within_a_second(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    monkeypatch.setattr(identity, "MONOTONIC_TIME", lambda: now[0])
    identifier = Identifier(db)
    identifier.refresh_members()
    mac = "3c:22:fb:00:00:01"
    heard = Observation(1_800_000_000.0, "sim-shoes", "wifi_data", mac, -50, {})
    assert identifier.identify(heard).member_id is None

    member = members.create_member(db, display_name="Ana", password="x" * 12, email="a@b.test")
    members.record_consents(db, member.id, {"location": True}, "2026-11")
    members.link_device(db, mac, member.id)  # she signs in on the portal, another process
    now[0] += identity.MEMBER_CHANGE_CHECK_SECONDS / 2
    assert identifier.identify(heard).member_id is None  # not looked yet: one query a second
    now[0] += identity.MEMBER_CHANGE_CHECK_SECONDS / 2
    assert identifier.identify(heard).member_id == member.id


# -- the simulator walks the phone, the tracker sees it arrive ---------------------------------


class WalkedStore:
    """A simulated store run through the real identity step and tracker, one second at a time."""

    def __init__(self, db: sqlite_utils.Database, plan: FloorPlan, sim_has_phone: bool) -> None:
        self.db, self.plan, self.now = db, plan, 0.0
        self.tracker = Tracker(db, plan, clock=lambda: self.now)
        self.identifier = Identifier(db)
        member_macs = [CLIENT_MAC] if sim_has_phone else []
        self.sim = Simulation(plan, seed=11, population=8, member_macs=member_macs)
        self.source = SimSource(self.sim, walks=WalkPoller(db, clock=lambda: self.now))
        self.heard: list[Observation] = []

    def run(self, until: float) -> None:
        for obs in self.sim.run_until(until):
            self._advance(obs.ts - self.sim.start_wall)
            self.heard.append(obs)
            who = self.identifier.identify(obs)
            if not who.footfall_only:
                self.tracker.observe(obs, who.device, who.member_id)
        self._advance(until)

    def _advance(self, t: float) -> None:
        while int(self.now) + 1 <= t:
            self.now = float(int(self.now) + 1)
            self.tracker.tick()
        self.now = t

    def member_events(self, member_id: int) -> Iterator[tuple[int, str, dict[str, object]]]:
        for event_id, kind, payload in self.db.conn.execute(
            "SELECT id, kind, payload FROM events WHERE kind LIKE 'zone_%' ORDER BY id"
        ):
            data = json.loads(payload)
            if data["member_id"] == member_id:
                yield event_id, kind, data


@pytest.mark.parametrize("sim_has_phone", [True, False], ids=["seeded-phone", "signed-up-phone"])
def test_walk_request_brings_the_phone_into_the_zone_and_the_tracker_enters_it(
    db: sqlite_utils.Database, plan: FloorPlan, sim_has_phone: bool
) -> None:
    member = online_member(db)
    men = plan.zone_named("Men")
    assert men is not None and CLIENT_MAC is not None
    store = WalkedStore(db, plan, sim_has_phone)
    store.run(WARM_UP_S)
    before = max((event_id for event_id, *_ in store.member_events(member.id)), default=0)
    if sim_has_phone:  # the seeded phone is somewhere else when she asks
        here = store.sim.position_of(CLIENT_MAC)
        assert here is None or not men.contains(*here)

    request_walk(db, member.id, men.id)  # what POST /demo/walk does
    asked_at = store.now
    assert store.source.follow_walk_requests() == [CLIENT_MAC]
    store.run(asked_at + ARRIVAL_BUDGET_S)

    position = store.sim.position_of(CLIENT_MAC)
    assert position is not None and men.contains(*position)
    entered = [
        data
        for event_id, kind, data in store.member_events(member.id)
        if event_id > before and kind == "zone_enter"
    ]
    assert entered and entered[-1]["zone_id"] == men.id
    assert entered[-1]["device"] == f"m:{member.id}"

    store.run(asked_at + REQUESTED_HOLD_S)  # it stays: dwell fires, and it never left
    after = [
        (kind, data["zone_id"])
        for event_id, kind, data in store.member_events(member.id)
        if event_id > before
    ]
    assert after[-2:] == [("zone_enter", men.id), ("zone_dwell", men.id)]
    # The phone is heard loudest by Men's own sensor once there: observations place it there.
    settled = store.sim.start_wall + asked_at + ARRIVAL_BUDGET_S
    loudest: dict[float, Observation] = {}
    for obs in (o for o in store.heard if o.address == CLIENT_MAC and o.ts > settled):
        if obs.ts not in loudest or (obs.rssi or -999) > (loudest[obs.ts].rssi or -999):
            loudest[obs.ts] = obs
    assert sum(obs.sensor_id == "sim-men" for obs in loudest.values()) > 0.8 * len(loudest)


def test_a_rerouted_phone_keeps_its_transmit_rate(plan: FloorPlan) -> None:
    """The walk replaces the phone's schedule; it is not added to it (no doubled frames)."""
    mac = "02:de:00:00:00:0a"
    sim = Simulation(plan, seed=5, population=4, member_macs=[mac])
    list(sim.run_until(WARM_UP_S))
    assert sim.walk_to([mac], zone_id(plan, "Denim")) == [mac]
    sent = sorted({obs.ts for obs in sim.run_until(WARM_UP_S + 120) if obs.address == mac})
    # The first frame on the new walk may follow the last on the old one closely; after it, none.
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent[1:])]
    assert gaps and min(gaps) >= TX_INTERVAL_S * (1 - 2 * TX_JITTER) - 1e-6


def test_a_phone_added_for_a_walk_leaves_for_good(plan: FloorPlan) -> None:
    """A signed-up member's phone walks in, stays, leaves, and does not join the crowd after."""
    mac = "02:aa:bb:cc:dd:ee"
    sim = Simulation(plan, seed=2, population=3)
    list(sim.run_until(10))
    assert sim.walk_to([mac], zone_id(plan, "Women"), hold=30) == [mac]
    heard = {obs.address for obs in sim.run_until(60)}
    assert mac in heard
    list(sim.run_until(3600))
    assert mac not in {shopper.address for shopper in sim.shoppers}
