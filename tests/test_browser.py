"""End to end in a real headless Chromium (Playwright) against ``instore portal`` under gunicorn.

How the OS probes reach the portal: on a box, DNS answers ``captive.apple.com`` and friends with
the portal's address, so the probe arrives with its original ``Host``. Here each browser context
uses the portal as its HTTP proxy instead. Chromium then sends a proxied request in absolute form
(``GET http://captive.apple.com/hotspot-detect.html`` with ``Host: captive.apple.com``); gunicorn
takes PATH_INFO from the URL's path and the Host header as sent, so the captive middleware sees
what DNS interception would give it. The portal's own pages (127.0.0.1) bypass the proxy and are
requested in origin form, as a phone requests them.

Every test gets its own portal process and database: the browser always connects from
127.0.0.1, which the demo client lookup maps to one fixed MAC, so a shared portal would share one
WiFi session between tests. Screenshots go to ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import (
    BROWSER_TESTS,
    PHONE,
    PHONE_WIDTH,
    TIMEOUT_MS,
    browser_fixture,
    portal_fixture,
    shot,
)
from tests.live_portal import LivePortal

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Response

pytestmark = BROWSER_TESTS

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)
expect = sync_api.expect

APPLE_PROBE = "http://captive.apple.com/hotspot-detect.html"
ANDROID_PROBE = "http://connectivitycheck.gstatic.com/generate_204"
# A captive sheet loads over a crowded store WiFi before the shopper is online: keep pages small.
PAGE_BUDGET_BYTES = 50 * 1024
PASSWORD = "correct horse battery"

ContextFactory = Callable[..., "BrowserContext"]


browser = browser_fixture()
portal = portal_fixture()


@pytest.fixture
def new_context(browser: Browser, portal: LivePortal) -> Iterator[ContextFactory]:
    """Browser contexts that look like a phone on the store WiFi, closed after the test."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        settings: dict[str, Any] = {
            # Playwright proxies loopback too unless the bypass list names it; naming 127.0.0.1
            # keeps Chromium's default (loopback goes direct), so only foreign hosts use the proxy.
            "proxy": {"server": portal.url, "bypass": "127.0.0.1"},
            **PHONE,
        }
        settings.update(options)
        context = browser.new_context(**settings)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def fill_sign_up(page: Page, email: str, name: str) -> None:
    """Fill the sign-up form by its visible labels, as a shopper would."""
    page.get_by_label(re.compile("Email or loyalty card number")).fill(email)
    page.get_by_label(re.compile("Your name")).fill(name)
    page.get_by_label(re.compile("password", re.IGNORECASE)).fill(PASSWORD)


def accept_terms_and_go_online(page: Page, *, location: bool, screenshot: str = "") -> None:
    """Tick the required WiFi terms (and optionally location) on the consents page and submit."""
    page.get_by_label(re.compile("accept the WiFi terms")).check()
    if location:
        page.get_by_label(re.compile("where I am in the store")).check()
    if screenshot:
        shot(page, screenshot)
    page.get_by_role("button", name=re.compile("go online")).click()


def navigate_to_no_content(page: Page, url: str) -> Response:
    """Navigate to a URL answered 204: Chromium sees the answer, commits nothing, stays put."""
    with page.expect_response(url) as answer, pytest.raises(sync_api.Error, match="ERR_ABORTED"):
        page.goto(url)
    return answer.value


def test_walk_from_apple_probe_to_online_and_signed_out_again(
    new_context: ContextFactory, portal: LivePortal
) -> None:
    """The whole shopper journey as iOS drives it: probe, sign up, consent, online, sign out."""
    page = new_context().new_page()
    signin_url = f"{portal.url}/signin"

    response = page.goto(APPLE_PROBE)
    assert response is not None and response.status == 200
    assert page.url == signin_url
    probe = response.request.redirected_from
    assert probe is not None and probe.url == APPLE_PROBE
    probe_response = probe.response()
    assert probe_response is not None and probe_response.status == 302
    expect(page.get_by_role("heading", level=1)).to_contain_text("loyalty account")
    shot(page, "walk-1-signin")

    # Android's probe is redirected too, rather than getting the 204 that would mean "online".
    response = page.goto(ANDROID_PROBE)
    assert response is not None and response.status == 200
    assert page.url == signin_url

    page.get_by_role("link", name=re.compile("Join the loyalty program")).click()
    expect(page).to_have_url(f"{portal.url}/signup")
    fill_sign_up(page, "ana@example.com", "Ana")
    shot(page, "walk-2-signup")
    page.get_by_role("button", name="Create my account").click()

    expect(page).to_have_url(f"{portal.url}/consents")
    accept_terms_and_go_online(page, location=True, screenshot="walk-3-consents")

    expect(page).to_have_url(f"{portal.url}/online")
    expect(page.get_by_role("heading", level=1)).to_have_text("You're online")
    expect(page.get_by_text("Enjoy your visit, Ana.")).to_be_visible()
    shot(page, "walk-4-online")

    # Online: Apple's probe gets Apple's own answer, so iOS closes its captive sheet.
    response = page.goto(APPLE_PROBE)
    assert response is not None and response.status == 200
    assert page.url == APPLE_PROBE
    expect(page).to_have_title("Success")
    assert page.inner_text("body").strip() == "Success"
    shot(page, "walk-5-apple-success")

    page.goto(f"{portal.url}/online")
    answer = navigate_to_no_content(page, ANDROID_PROBE)
    assert answer.status == 204
    assert page.url == f"{portal.url}/online"

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(signin_url)
    expect(page.get_by_role("status")).to_contain_text("signed out")
    shot(page, "walk-6-signed-out")

    # Off the WiFi again: the probe goes back to the sign-in page.
    response = page.goto(APPLE_PROBE)
    assert response is not None and response.status == 200
    assert page.url == signin_url
    shot(page, "walk-7-probe-after-sign-out")


@dataclass(frozen=True)
class PageLoad:
    """What Chromium fetched to show one page."""

    status: int
    body_bytes: int
    content_types: tuple[str, ...]


def load_page(page: Page, url: str) -> PageLoad:
    """Navigate and add up the bodies of every response the page loaded (HTML, CSS, ...)."""
    responses: list[Response] = []

    def record(response: Response) -> None:
        responses.append(response)

    page.on("response", record)
    try:
        main = page.goto(url)
    finally:
        page.remove_listener("response", record)
    assert main is not None, f"no response for {url}"
    loaded = [r for r in responses if not 300 <= r.status < 400]  # redirects have no body
    return PageLoad(
        status=main.status,
        body_bytes=sum(len(r.body()) for r in loaded),
        content_types=tuple(r.headers.get("content-type", "") for r in loaded),
    )


# Each visible input as the browser parsed it: a bad attribute value silently falls back.
INPUTS_JS = """[...document.querySelectorAll('input')].filter(e => e.type !== 'hidden').map(e => ({
    name: e.name, type: e.getAttribute('type'), parsedType: e.type, inputMode: e.inputMode}))"""
INPUT_TYPES = {"text", "email", "password", "checkbox", "tel", "number", "search"}


def input_problems(page: Page, name: str) -> list[str]:
    """Inputs a phone can type into: a valid type, passwords masked, and a keyboard that opens."""
    problems: list[str] = []
    for field in page.evaluate(INPUTS_JS):
        where = f"{name}: input {field['name']!r}"
        if field["type"] not in INPUT_TYPES:
            problems.append(f"{where} has type={field['type']!r}")
        if "password" in field["name"] and field["parsedType"] != "password":
            problems.append(f"{where} shows the password as {field['parsedType']!r} text")
        if field["inputMode"] == "none":  # inputmode=none: the on-screen keyboard never opens
            problems.append(f"{where} has inputmode=none")
    return problems


def phone_problems(page: Page, portal: LivePortal, name: str, path: str, status: int) -> list[str]:
    """Load one page on the phone; return what is wrong with it (nothing, ideally)."""
    url = f"{portal.url}{path}"
    load = load_page(page, url)
    shot(page, f"phone-{name}")
    problems: list[str] = []
    if page.url != url or load.status != status:
        problems.append(f"{name}: expected {status} at {url}, got {load.status} at {page.url}")
    if not any(kind.startswith("text/css") for kind in load.content_types):
        problems.append(f"{name}: no stylesheet among {load.content_types}")
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE_WIDTH:
        problems.append(f"{name}: scrolls sideways ({width} px wide on a {PHONE_WIDTH} px screen)")
    if load.body_bytes >= PAGE_BUDGET_BYTES:
        problems.append(f"{name}: {load.body_bytes} bytes of HTML and CSS (budget 50 KB)")
    return problems + input_problems(page, name)


def test_pages_fit_a_phone(new_context: ContextFactory, portal: LivePortal) -> None:
    """Every page fits 360 px without sideways scrolling, loads in under 50 KB and its inputs
    open the right on-screen keyboard."""
    page = new_context().new_page()
    # Count the stylesheet on every page: with the cache on, Chromium would revalidate it (304).
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})

    problems: list[str] = []
    for name, path in [("signin", "/signin"), ("terms", "/terms"), ("venue", "/venue")]:
        problems += phone_problems(page, portal, name, path, 200)
    problems += phone_problems(page, portal, "404", "/no-such-page", 404)
    problems += phone_problems(page, portal, "signup", "/signup", 200)

    # A long but ordinary address and an accented name, to find text that will not wrap.
    fill_sign_up(page, "ana.maria.fernandez-lopez@example.com", "Ana María")
    page.get_by_role("button", name="Create my account").click()
    expect(page).to_have_url(f"{portal.url}/consents")
    problems += phone_problems(page, portal, "consents", "/consents", 200)

    accept_terms_and_go_online(page, location=False)
    expect(page).to_have_url(f"{portal.url}/online")
    for name in ("online", "account", "store"):
        problems += phone_problems(page, portal, name, f"/{name}", 200)

    assert not problems, "\n".join(problems)


def test_sign_up_to_online_without_javascript(
    new_context: ContextFactory, portal: LivePortal
) -> None:
    """Captive sheets may run without JavaScript: plain links and forms must be enough."""
    page = new_context(java_script_enabled=False).new_page()

    page.goto(APPLE_PROBE)
    expect(page).to_have_url(f"{portal.url}/signin")
    page.get_by_role("link", name=re.compile("Join the loyalty program")).click()
    expect(page).to_have_url(f"{portal.url}/signup")
    fill_sign_up(page, "noscript@example.com", "Noa")
    page.get_by_role("button", name="Create my account").click()
    expect(page).to_have_url(f"{portal.url}/consents")
    accept_terms_and_go_online(page, location=False)
    expect(page).to_have_url(f"{portal.url}/online")
    expect(page.get_by_role("heading", level=1)).to_have_text("You're online")
    shot(page, "nojs-online")

    page.goto(APPLE_PROBE)
    expect(page).to_have_title("Success")


@dataclass(frozen=True)
class SignInResult:
    """Everything a shopper can see after a failed sign-in."""

    status: int
    url: str
    errors: tuple[str, ...]
    main_text: str


def try_sign_in(page: Page, portal: LivePortal, identifier: str, password: str) -> SignInResult:
    """Submit the sign-in form and capture what the shopper sees."""
    page.goto(f"{portal.url}/signin")
    page.get_by_label("Email or loyalty number").fill(identifier)
    page.get_by_label("Password", exact=True).fill(password)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name=re.compile("Sign in")).click()
    page.wait_for_load_state()
    return SignInResult(
        status=posted.value.status,
        url=page.url,
        errors=tuple(page.locator(".error").all_inner_texts()),
        main_text=page.locator("main").inner_text(),
    )


def test_wrong_password_reads_like_unknown_account(
    new_context: ContextFactory, portal: LivePortal
) -> None:
    """Guessing must not reveal which emails have accounts: both failures look identical."""
    # The account to guess at, made through the sign-up page in a browser of its own.
    owner = new_context().new_page()
    owner.goto(f"{portal.url}/signup")
    fill_sign_up(owner, "ana@example.com", "Ana")
    owner.get_by_role("button", name="Create my account").click()
    expect(owner).to_have_url(f"{portal.url}/consents")

    page = new_context().new_page()
    unknown = try_sign_in(page, portal, "nobody@example.com", PASSWORD)
    shot(page, "wrong-password-unknown-account")
    wrong = try_sign_in(page, portal, "ana@example.com", "not the password")
    shot(page, "wrong-password-known-account")

    assert unknown.status == 200
    assert unknown.url == f"{portal.url}/signin"
    assert len(unknown.errors) == 1 and "do not match" in unknown.errors[0]
    assert wrong == unknown

    # The account is real: its own password gets past sign-in to the consents step.
    page.goto(f"{portal.url}/signin")
    page.get_by_label("Email or loyalty number").fill("ana@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Sign in")).click()
    expect(page).to_have_url(f"{portal.url}/consents")
