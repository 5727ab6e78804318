"""Playwright driving Debian's Chromium against the live server; screenshots land in artifacts/browser/.

No browser is downloaded: Playwright launches /usr/bin/chromium (``apt-get install chromium``;
.ci/run installs it). Without it the tests skip locally and fail in CI.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Headless as root, and quiet: no calls home, no updates, nothing but the page's own requests.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "artifacts" / "browser"


class PageWatch:
    """What a page did that a test should fail on: requests leaving the server, script errors."""

    def __init__(self, origin: str):
        self.origin = origin
        self.outside_requests: list[str] = []
        self.errors: list[str] = []
        self.failed_responses: list[str] = []

    def on_request(self, request):
        url = request.url
        if not url.startswith((self.origin, "data:", "blob:", "about:")):
            self.outside_requests.append(url)

    def on_request_failed(self, request):
        # The page's Content-Security-Policy stopped it in the browser: nothing left the machine.
        if request.failure == "csp" and request.url in self.outside_requests:
            self.outside_requests.remove(request.url)

    def on_response(self, response):
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.failed_responses.append(f"{response.status} {response.url}")

    def on_console(self, message):
        # A failed load is reported (with its address) by on_response; a missing favicon is harmless.
        # A CSP refusal is checked by on_request_failed.
        if (
            message.type == "error"
            and not message.text.startswith("Failed to load resource")
            and "Content Security Policy" not in message.text
        ):
            self.errors.append(message.text)


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """A fresh Chromium page against the live server; fails the test on outside requests or JS errors."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium package.")
        pytest.skip(f"{CHROMIUM} is missing; install it with: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watch = PageWatch(live_server.url)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1600, "height": 900})
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.on("request", watch.on_request)
        page.on("response", watch.on_response)
        page.on("requestfailed", watch.on_request_failed)
        page.on("console", watch.on_console)
        page.on("pageerror", lambda error: watch.errors.append(str(error)))
        try:
            yield page
        finally:
            context.close()
            browser.close()
            # ORM calls made while Playwright drove the page ran on a connection of their own
            # context; close it, or it outlives the test and blocks dropping the test database.
            connections.close_all()
    assert watch.outside_requests == [], "the page must not load anything from outside the server"
    assert watch.errors == [], "the page logged JavaScript errors"
    assert watch.failed_responses == [], "the page requested something the server could not answer"


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, *, username: str, password: str, next_url: str) -> None:
    page.goto(f"/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_url}")
