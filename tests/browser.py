"""What the tests that drive a real headless Chromium share: the browser, how it is launched,
a fresh ``instore portal`` per test and where screenshots go.

A test module marks itself with ``pytestmark = BROWSER_TESTS`` and builds its fixtures from the
factories here: ``browser = browser_fixture()`` (one Chromium per module), ``portal =
portal_fixture()`` (a portal per test whose log must stay free of errors), ``db =
database_fixture()`` (the test's own connection to that portal's database), ``page =
phone_page_fixture()`` (a phone-sized page) and ``laptop = laptop_page_fixture()`` (a manager's
laptop-sized page that fails the test on a JavaScript error). Playwright is imported only when a
browser starts, so importing this module never needs it: a test that needs the browser is
skipped without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlite_utils

from instore.db import open_database
from tests.live_portal import LivePortal, running_portal

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium tries to reach outside hosts (TESTING.md).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium"
)
# A whole module's marks (``pytestmark = BROWSER_TESTS``); one test takes both decorators.
BROWSER_TESTS = [pytest.mark.browser, needs_chromium]
# Screenshots for a person to look at (git-ignored).
ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE_WIDTH = 360  # CSS pixels: the narrowest common phone; no page may scroll sideways on it
PHONE_SCREEN: ViewportSize = {"width": PHONE_WIDTH, "height": 740}
# Browser-context settings of a phone: its screen, touch and a dense display.
PHONE: dict[str, Any] = {
    "viewport": PHONE_SCREEN,
    "is_mobile": True,  # honour <meta name=viewport> like a phone does
    "has_touch": True,
    "device_scale_factor": 2,
    "locale": "en-US",
}
# Browser-context settings of the laptop a manager runs the console on.
LAPTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US"}
# Playwright's wait for a page, a click or a locator; generous for a loaded 2-core machine.
TIMEOUT_MS = 10_000


def launch_chromium(playwright: Playwright, extra_args: tuple[str, ...] = ()) -> Browser:
    """Debian's Chromium, headless and offline, with the test's own flags after ours."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args]
    )


def browser_fixture(*extra_args: str) -> Callable[[], Iterator[Browser]]:
    """A module-scoped ``browser`` fixture: one Chromium for the module; each test makes fresh
    contexts (cookies, cache) from it."""

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Browser]:
        sync_api = pytest.importorskip(
            "playwright.sync_api", reason="the playwright Python package is not installed"
        )
        with sync_api.sync_playwright() as playwright:
            chromium = launch_chromium(playwright, extra_args)
            try:
                yield chromium
            finally:
                chromium.close()

    return browser


def portal_fixture(
    extra_env: Mapping[str, str] | None = None,
) -> Callable[[Path], Iterator[LivePortal]]:
    """A ``portal`` fixture: a fresh ``instore portal`` per test, with ``extra_env`` added to its
    settings; the test fails if the portal's log shows an error."""

    @pytest.fixture
    def portal(tmp_path: Path) -> Iterator[LivePortal]:
        with running_portal(tmp_path / "portal", extra_env) as live:
            yield live

    return portal


def database_fixture() -> Callable[[LivePortal], Iterator[sqlite_utils.Database]]:
    """A ``db`` fixture: this process's own connection to the portal's database (WAL: the test
    reads what the portal wrote, and writes what the offers worker or presence would)."""

    @pytest.fixture
    def db(portal: LivePortal) -> Iterator[sqlite_utils.Database]:
        database = open_database(portal.database_path)
        yield database
        database.conn.close()

    return db


@contextmanager
def fresh_page(browser: Browser, settings: Mapping[str, Any]) -> Iterator[Page]:
    """A page in a new context (no cookies, no cache) with ``settings``, closed afterwards, before
    the portal stops (an open keep-alive connection would hold up its graceful stop)."""
    context = browser.new_context(**settings)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def page_errors(page: Page) -> list[str]:
    """A list that fills with what the page logs as an error and every uncaught exception."""
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def phone_page_fixture() -> Callable[[Browser, LivePortal], Iterator[Page]]:
    """A ``page`` fixture: a page in a fresh phone-like context."""

    @pytest.fixture
    def page(browser: Browser, portal: LivePortal) -> Iterator[Page]:
        with fresh_page(browser, PHONE) as phone:
            yield phone

    return page


def laptop_page_fixture() -> Callable[[Browser, LivePortal], Iterator[Page]]:
    """A ``laptop`` fixture: a page in a fresh laptop-sized context, as a manager opens the
    console; the test fails if the page logs an error or throws."""

    @pytest.fixture
    def laptop(browser: Browser, portal: LivePortal) -> Iterator[Page]:
        with fresh_page(browser, LAPTOP) as page:
            errors = page_errors(page)
            yield page
            assert errors == [], errors

    return laptop


def sign_in_to_console(
    page: Page, portal: LivePortal, email: str, password: str, path: str
) -> None:
    """Open the console page ``path``, sign in on the page it sends us to and land back on it."""
    page.goto(f"{portal.url}{path}")
    assert "/manage/signin" in page.url  # asked to sign in first, with the page kept for after
    page.fill("#identifier", email)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{portal.url}{path}")


def shot(page: Page, name: str) -> None:
    """Keep a full-page screenshot in ``tests/artifacts/`` so a person can see what the shopper
    saw."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def wait_until_true(
    page: Page, expression: str, arg: Any = None, timeout_ms: int = TIMEOUT_MS
) -> None:
    """Poll ``expression`` (with ``arg``) from Python until it is truthy.

    Not ``page.wait_for_function``: when it has to poll, Playwright compiles the predicate with
    ``new Function`` inside the page, which our CSP (no 'unsafe-eval') refuses, so such a wait
    fails only when the page is slow. ``page.evaluate`` runs through the DevTools protocol.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_ms} ms: {expression}")
        time.sleep(0.05)
