"""A headless chromium driven by Playwright for the browser tests: Debian's chromium (no
browser download), one tab that records requests to other hosts, failed requests and
script errors; a skip when chromium or Playwright is missing (a failure under
CI_REQUIRE_BROWSER=1)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Flags that work headless as root in a container (Playwright adds --headless and a fresh
# --user-data-dir itself); /dev/shm may be small there.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# Longest wait for one page or element (the POST waits up to ORDER_ACK_WAIT_TIMEOUT).
TIMEOUT_MS = 20_000
PASSWORD = "a-browser-test-password"


def browser_missing() -> str | None:
    """What is missing to run the browser test, as an instruction; None when nothing is."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -r requirements/local.txt)")
    return " and ".join(missing) or None


def require_browser() -> None:
    """Skip when chromium or Playwright is missing; fail instead with CI_REQUIRE_BROWSER=1."""
    missing = browser_missing()
    if missing is None:
        return
    message = f"the browser test needs {missing}; never `playwright install`"
    if os.environ.get("CI_REQUIRE_BROWSER") == "1":
        pytest.fail(f"CI_REQUIRE_BROWSER=1: {message}")
    pytest.skip(message)


class Visit:
    """One browser tab that records requests to other hosts, failed requests and uncaught
    script errors."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.foreign: list[str] = []
        self.blocked: list[str] = []
        self.failures: list[str] = []
        self.script_errors: list[str] = []
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", self._request)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("pageerror", lambda exc: self.script_errors.append(str(exc)))

    def _request(self, request) -> None:
        if request.url.startswith(("http:", "https:")) and not request.url.startswith(
            self.base_url + "/"
        ):
            self.foreign.append(request.url)

    def _failed(self, request) -> None:
        if request.failure == "csp":  # refused by the page's own policy: never sent
            self.blocked.append(request.url)
        else:
            self.failures.append(f"{request.url}: {request.failure}")

    def _response(self, response) -> None:
        # Browsers ask for /favicon.ico on pages that name no icon (admin, DRF).
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.failures.append(f"{response.request.method} {response.url}: {response.status}")

    def open(self, path: str):
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        return response

    def assert_clean(self) -> None:
        sent = [url for url in self.foreign if url not in self.blocked]
        assert not sent, f"requests to other hosts: {sent}"
        assert not self.failures, f"failed requests: {self.failures}"
        assert not self.script_errors, f"script errors: {self.script_errors}"


@contextlib.contextmanager
def chromium_tab(base_url: str) -> Iterator[Visit]:
    """A fresh headless chromium (own profile) with one tab.

    Django's ORM must not be used inside: Playwright's sync API keeps an event loop in
    this thread, and Django refuses database calls from one (SynchronousOnlyOperation).
    """
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="orderstream-chromium-") as home:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=CHROMIUM_ARGS,
                headless=True,
                env={**os.environ, "HOME": home},  # crash reports, caches: not in ~
            )
            try:
                yield Visit(browser.new_context().new_page(), base_url)
            finally:
                browser.close()
