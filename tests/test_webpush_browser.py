"""Web Push on the store page in a real headless Chromium, against ``instore portal``.

Two ways the shopper reaches the page: by a host name on plain http (``shop.test``, mapped to
127.0.0.1 inside Chromium), as on a store's WiFi, where the page is not a secure context and the
panel must say why there are no notifications; and by http://127.0.0.1, which browsers treat as
secure (like https), where the service worker registers and the subscribe flow runs. Chromium
here has no push service (it is offline, and Playwright's contexts are incognito, where Chromium
refuses the Push API), so the subscribe test replaces ``PushManager.subscribe`` in the page — the
one part this machine lacks — and everything else is real: push.js, the CSRF header, the portal's
routes and the database. Pushes reach the service worker through DevTools'
``ServiceWorker.deliverPushMessage``, the push service's side of the browser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import sqlite_utils

from hardware.clients import DemoLookup
from instore import clock, members, sessions
from offers.channels.webpush_channel import push_payload
from offers.notifications import create_notification, get_notification
from tests.browser import (
    BROWSER_TESTS,
    TIMEOUT_MS,
    browser_fixture,
    database_fixture,
    portal_fixture,
    shot,
)
from tests.live_portal import LivePortal
from tests.webpush_helpers import keys_of, new_subscriber

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = BROWSER_TESTS

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)
expect = sync_api.expect

# A name that is not loopback, so Chromium treats http pages on it as insecure, as on a store's
# WiFi; .test is reserved (RFC 2606) and on no HSTS preload list.
STORE_HOST = "shop.test"
INSECURE_SENTENCE = (
    "Notifications when this page is closed need a secure (https) connection; this store's WiFi "
    "page is http, so offers appear here while the page is open."
)
FAKE_ENDPOINT = "https://push.example/send/this-browser"

# Stands in for the browser's push service: subscribe() returns a subscription (kept in
# localStorage, so a reload finds it again) instead of asking Google's servers for one.
FAKE_PUSH_MANAGER = """
(() => {
  if (!self.PushManager) return;  // insecure pages have no Push API at all
  const saved = "fake-push-subscription";
  const make = (key) => ({
    endpoint: ENDPOINT,
    options: { userVisibleOnly: true, applicationServerKey: new Uint8Array(key).buffer },
    toJSON: () => ({ endpoint: ENDPOINT, expirationTime: null, keys: KEYS }),
    unsubscribe: async () => { localStorage.removeItem(saved); return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    const key = Array.from(new Uint8Array(options.applicationServerKey));
    localStorage.setItem(saved, JSON.stringify(key));
    return make(key);
  };
  PushManager.prototype.getSubscription = async function () {
    const key = localStorage.getItem(saved);
    return key ? make(JSON.parse(key)) : null;
  };
})();
"""


# The notifications the service worker is showing, once there are any (or [] after 5 s).
SHOWN_NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.ready;
  for (let attempt = 0; attempt < 100; attempt++) {
    const shown = await registration.getNotifications();
    const seen = shown.map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data}));
    if (seen.length) return seen;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return [];
}"""


browser = browser_fixture(f"--host-resolver-rules=MAP {STORE_HOST} 127.0.0.1")
# The portal also answers as STORE_HOST.
portal = portal_fixture({"INSTORE_PORTAL_HOSTNAMES": f"localhost,127.0.0.1,{STORE_HOST}"})
db = database_fixture()  # the portal's own database (WAL: the test reads what the portal wrote)


@pytest.fixture
def shopper(db: sqlite_utils.Database) -> members.Member:
    """Ana, online on the store WiFi: the browser (127.0.0.1, demo MAC) is her phone."""
    ana = members.create_member(db, display_name="Ana", password="x" * 12, email="a@example.com")
    mac = DemoLookup().mac_for("127.0.0.1")
    assert mac is not None
    sessions.authorize_client(
        db, mac=mac, ip="127.0.0.1", member_id=ana.id, hours=1, idle_minutes=30
    )
    return ana


@pytest.fixture
def new_page(browser: Browser, portal: LivePortal) -> Iterator[Callable[..., Page]]:
    """Pages in fresh contexts, closed before the portal stops (open keep-alives delay it)."""
    contexts: list[BrowserContext] = []

    def make(origin: str, *, notifications: bool = True) -> Page:
        context = browser.new_context(locale="en-US")
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        if notifications:
            context.grant_permissions(["notifications"], origin=origin)
        page = context.new_page()
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        return page

    page_errors: list[str] = []
    yield make
    for context in contexts:
        context.close()
    assert page_errors == [], "a page script failed"


def stored_endpoints(db: sqlite_utils.Database) -> list[tuple[int, str]]:
    return list(db.conn.execute("SELECT member_id, endpoint FROM push_subscriptions").fetchall())


@pytest.mark.usefixtures("shopper")
def test_on_the_store_wifis_http_page_the_panel_says_why(
    new_page: Callable[..., Page], portal: LivePortal
) -> None:
    # Chromium refuses even to record a notification permission for an insecure origin.
    page = new_page(f"http://{STORE_HOST}:{portal.port}", notifications=False)
    page.goto(f"http://{STORE_HOST}:{portal.port}/store")
    assert page.evaluate("window.isSecureContext") is False
    panel = page.locator("#push-panel")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("status")).to_have_text(INSECURE_SENTENCE)
    expect(panel.get_by_role("button")).to_have_count(0)
    assert page.evaluate("'serviceWorker' in navigator") is False  # nothing half-registered
    shot(page, "push-insecure")


def test_on_a_secure_page_the_shopper_turns_notifications_on_and_off(
    new_page: Callable[..., Page],
    portal: LivePortal,
    db: sqlite_utils.Database,
    shopper: members.Member,
) -> None:
    page = new_page(portal.url)
    keys = keys_of(new_subscriber())
    page.add_init_script(
        FAKE_PUSH_MANAGER.replace("ENDPOINT", json.dumps(FAKE_ENDPOINT)).replace(
            "KEYS", json.dumps(keys)
        )
    )
    page.goto(f"{portal.url}/store")
    panel = page.locator("#push-panel")
    allow = panel.get_by_role("button", name="Allow notifications")
    expect(allow).to_be_visible()
    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{portal.url}/"  # /sw.js may control /store
    assert stored_endpoints(db) == []

    allow.click()
    expect(panel.get_by_role("status")).to_have_text("Notifications are on for this phone.")
    assert stored_endpoints(db) == [(shopper.id, FAKE_ENDPOINT)]
    row = db.conn.execute("SELECT p256dh, auth FROM push_subscriptions").fetchone()
    assert row == (keys["p256dh"], keys["auth"])
    shot(page, "push-on")

    page.reload()  # the next visit sends the subscription again; still one row, still on
    turn_off = panel.get_by_role("button", name="Turn off")
    expect(turn_off).to_be_visible()
    assert stored_endpoints(db) == [(shopper.id, FAKE_ENDPOINT)]

    turn_off.click()
    expect(panel.get_by_role("status")).to_contain_text("Notifications are off.")
    expect(panel.get_by_role("button", name="Allow notifications")).to_be_visible()
    assert stored_endpoints(db) == []


@pytest.mark.usefixtures("shopper")
def test_when_the_browser_cannot_subscribe_the_panel_says_so(
    new_page: Callable[..., Page], portal: LivePortal, db: sqlite_utils.Database
) -> None:
    """Chromium's own PushManager, which refuses in an incognito context as it would offline."""
    page = new_page(portal.url)
    page.goto(f"{portal.url}/store")
    page.locator("#push-panel").get_by_role("button", name="Allow notifications").click()
    expect(page.locator("#push-panel").get_by_role("status")).to_have_text(
        re.compile("Notifications could not be turned on")
    )
    assert stored_endpoints(db) == []


def test_a_push_shows_the_notification_the_channel_sent(
    new_page: Callable[..., Page],
    portal: LivePortal,
    db: sqlite_utils.Database,
    shopper: members.Member,
) -> None:
    notification_id = create_notification(
        db,
        member_id=shopper.id,
        kind="offer",
        title="Trainers −20 %",
        body="Today in Shoes",
        now=clock.utcnow(),
        code="K7QX",
    )
    notification = get_notification(db, notification_id)
    assert notification is not None
    page = new_page(portal.url)
    page.goto(f"{portal.url}/store")
    assert page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)") == f"{portal.url}/"

    devtools = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    devtools.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    devtools.send("ServiceWorker.enable")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    [registration] = [r for r in registrations if r["scopeURL"] == f"{portal.url}/"]
    devtools.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": portal.url,
            "registrationId": registration["registrationId"],
            "data": json.dumps(push_payload(notification)),
        },
    )
    shown = page.evaluate(SHOWN_NOTIFICATIONS)
    assert shown == [
        {
            "title": "Trainers −20 %",
            "body": "Today in Shoes",
            "tag": f"n{notification_id}",
            "data": {"url": f"/store#n-{notification_id}"},
        }
    ]

    # What a tap opens: the page scrolls to the item, and store.js records the open once seen.
    page.goto(portal.url + shown[0]["data"]["url"])
    expect(page.locator(f"#n-{notification_id}")).to_be_in_viewport()
    for _ in range(100):
        if db.conn.execute(
            "SELECT opened_at FROM notifications WHERE id = ?", (notification_id,)
        ).fetchone()[0]:
            break
        page.wait_for_timeout(50)
    else:
        pytest.fail("the store page did not mark the tapped notification opened")
