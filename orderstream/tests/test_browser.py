"""The browser entry points, clicked in a real browser against the real API.

Playwright drives Debian's chromium (headless, no browser download) against pytest-django's
live server, with the worker consuming in a thread: a staff user logs in through
/admin/login/, creates an order with the DRF browsable API's raw-data form and sees the
worker's answer, Swagger UI (/docs) and ReDoc (/redoc) render the operations from the
project's own static files, and every admin changelist opens. No request may leave the
server (no CDN) and no page may throw a JavaScript error.

Needs `apt-get install chromium` and the `playwright` package (requirements/local.txt);
without them the test is skipped, or fails when CI_REQUIRE_BROWSER=1 (as in .ci/run).
Select it with `-m browser`, or leave it out with `-m "not browser"`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from orders_api.ack_wait import process_listener
from orders_api.models import Order

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


@pytest.fixture
def browser_available() -> None:
    require_browser()


@pytest.fixture
def staff_user():
    """A staff superuser (every changelist is visible to it), as `createsuperuser` makes."""
    return get_user_model().objects.create_superuser(
        username=f"browser-{uuid.uuid4().hex[:8]}", email="browser@example.com", password=PASSWORD
    )


@pytest.fixture
def api_threads():
    """Stop the ACK listener the live server started, after the test."""
    yield
    process_listener.shutdown()


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


def changelists() -> list[tuple[str, str]]:
    """(URL, verbose_name) of the changelist of every model registered in the admin."""
    return sorted(
        (
            reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
            str(model._meta.verbose_name),
        )
        for model in admin.site._registry
    )


@pytest.mark.browser
@pytest.mark.broker
@pytest.mark.django_db(transaction=True, databases=["default", "worker"])
def test_the_browser_entry_points_work(
    browser_available,
    live_server,
    staff_user,
    unique_topics,
    running_relay,
    running_worker,
    api_threads,
):
    user_id = str(uuid.uuid4())
    body = {"user_id": user_id, "payload": {"id": "BROWSER-1", "amount": "12.50"}}
    admin_pages = changelists()
    assert len(admin_pages) >= 3  # orders, processed orders, outbox at least

    with chromium_tab(live_server.url) as tab:
        page = tab.page
        # Log in as staff through the admin's login form, then land on the list page.
        tab.open("/admin/login/?next=/orders")
        page.fill("#id_username", staff_user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/orders")
        tab.assert_clean()  # names a 500 of the list page, if any
        assert page.inner_text(".page-header h1") == "Order List"
        assert "HTTP 200 OK" in page.inner_text(".response-info")

        # The raw-data form: DRF's ajax-form.js POSTs the JSON and shows the answer.
        form = page.locator("#post-generic-content-form")
        form.locator("textarea[name=_content]").fill(json.dumps(body))
        form.locator("button", has_text="POST").click()
        answer = page.locator(".response-info", has_text='"order_id"')
        answer.wait_for()
        text = answer.inner_text()
        assert "HTTP 200 OK" in text, text  # the worker's ACK arrived
        order_id = re.search(r'"order_id": "([0-9a-f-]{36})"', text).group(1)
        assert '"status": "created"' in text, text

        # The detail page shows the worker's result.
        tab.open(f"/orders/{order_id}")
        assert '"status": "done"' in page.inner_text(".response-info")

        # Swagger UI rendered the operations: its JS and CSS came from /static/.
        tab.open("/docs")
        orders = page.locator('.opblock-post .opblock-summary-path[data-path="/orders"]')
        orders.wait_for()
        method = page.locator(".opblock-post .opblock-summary-method").first
        assert method.inner_text() == "POST"
        assert page.locator(".opblock-summary-path", has_text="/health").count() == 1

        # ReDoc rendered the operations too.
        tab.open("/redoc")
        page.locator("h2", has_text="Create, update or soft-delete an order").wait_for()
        assert page.locator("h1", has_text="OrderStream API").count() == 1

        # Every changelist of the admin opens and shows its title.
        for url, verbose_name in admin_pages:
            tab.open(url)
            title = page.inner_text("#content h1")
            assert re.fullmatch(rf"Select {re.escape(verbose_name)} to (change|view)", title), (
                url,
                title,
            )

        tab.assert_clean()

    order = Order.objects.get(order_id=order_id)
    assert (str(order.user_id), str(order.amount)) == (user_id, "12.50")


@pytest.mark.parametrize(
    ("required", "outcome"), [(None, pytest.skip.Exception), ("1", pytest.fail.Exception)]
)
def test_a_missing_chromium_skips_the_browser_test_unless_ci_requires_it(
    monkeypatch, required, outcome
):
    monkeypatch.setattr(f"{__name__}.CHROMIUM", Path("/nonexistent/chromium"))
    if required is None:
        monkeypatch.delenv("CI_REQUIRE_BROWSER", raising=False)
    else:
        monkeypatch.setenv("CI_REQUIRE_BROWSER", required)
    with pytest.raises(outcome, match=r"apt-get install chromium"):
        require_browser()
