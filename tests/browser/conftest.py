"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against pytest-django's live server.

One browser for the whole run; each test gets a fresh context (cookies, storage). Screenshots go to
var/test-artifacts/screenshots/. `make test` installs chromium when it is missing; never `playwright install`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache

from ranking.rules_cache import RULES_VERSION_KEY

CHROMIUM = Path(os.environ.get("RECO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "var" / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1440, "height": 1000}


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    # Playwright's sync API keeps an event loop running in this thread, which Django would take for async code
    # and refuse ORM calls from the test's own thread; the live server answers from its own thread anyway.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
            yield chromium
            chromium.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
    context.set_default_timeout(20_000)
    one = context.new_page()
    yield one
    context.close()


@pytest.fixture(autouse=True)
def no_published_rules_version():
    cache.delete(RULES_VERSION_KEY)  # database ids restart each run; a version left in Redis would be stale
    yield
    cache.delete(RULES_VERSION_KEY)


@pytest.fixture
def screenshot():
    """screenshot(page, "name") writes var/test-artifacts/screenshots/name.png (the whole page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
