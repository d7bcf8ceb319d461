"""A real Chromium for the web UI tests, driven by Playwright's sync API.

Debian's Chromium is used (Playwright's own browser download cannot run here).
Each test gets a fresh browser context, so sessionStorage (where the UI keeps
the site key) starts empty, and a page that reports a JavaScript error fails
the test: an error in the console is a bug a user would hit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from support.service import running_service
from support.services import unavailable
from support.ui_site import UI_EGRESS_CIDRS, UiSite

CHROMIUM = Path(os.environ.get("CHATHOOKS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Longest wait for anything on a page; generous for a loaded CI machine.
PAGE_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module (the sync API holds an event loop while it runs)."""
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab in a fresh context; fails the test on any JavaScript error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not _expected_console_error(message.text):
            errors.append(f"console.error: {message.text}")

    tab.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    tab.on("console", on_console)
    try:
        yield tab
    finally:
        context.close()
    assert not errors, "the page reported JavaScript errors:\n" + "\n".join(errors)


def _expected_console_error(text: str) -> bool:
    """Chromium logs every 4xx fetch; the tests provoke some on purpose (bad input)."""
    return "Failed to load resource" in text and "status of 4" in text


# -- the web UI on a real service ---------------------------------------------------------


@pytest.fixture
def ui_site_with(sqlite_url: str) -> Iterator[Callable[..., UiSite]]:
    """``ui_site_with(**settings)``: a ``ui_site`` whose service has these settings too."""
    with ExitStack() as stack:

        def make(**settings: Any) -> UiSite:
            service = stack.enter_context(
                running_service(sqlite_url, egress_cidrs=UI_EGRESS_CIDRS, **settings)
            )
            return stack.enter_context(UiSite.on(service))

        yield make


@pytest.fixture
def ui_site(ui_site_with: Callable[..., UiSite]) -> UiSite:
    """The sender service on SQLite (loopback allowed, worker running) with a new site."""
    return ui_site_with()
