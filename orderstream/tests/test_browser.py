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

import json
import re
import uuid
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from orders_api.ack_wait import process_listener
from orders_api.models import Order
from testkit import browser
from testkit.browser import PASSWORD, chromium_tab, require_browser


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
def api_threads(unique_topics):
    """This process's ACK listener, positioned before the browser posts, stopped after.

    The live server shares this process's listener. Left to start on the first POST, it
    may not be positioned within the second a write waits for it (ACK_LISTENER_READY_WAIT),
    and the POST is answered 202 `listener-not-ready` instead of the worker's ACK.
    """
    assert process_listener.start(ready_timeout=30), "the ACK listener was not positioned"
    yield
    process_listener.shutdown()


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
    monkeypatch.setattr(browser, "CHROMIUM", Path("/nonexistent/chromium"))
    if required is None:
        monkeypatch.delenv("CI_REQUIRE_BROWSER", raising=False)
    else:
        monkeypatch.setenv("CI_REQUIRE_BROWSER", required)
    with pytest.raises(outcome, match=r"apt-get install chromium"):
        require_browser()
