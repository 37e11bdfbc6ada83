"""The dead-letter admin clicked in a real browser: a staff user logs in, finds the dead
letter (search, filter), selects it, runs "Replay the selected dead letters" and sees the
success message; the record is then on the events topic. Same browser setup and skip
rules as test_browser.py (Debian's chromium, the playwright package; CI_REQUIRE_BROWSER=1
turns the skip into a failure)."""

from __future__ import annotations

import pytest
from django.conf import settings

from orders_worker.dead_letters import Rejection, dead_letters_record
from orders_worker.models import DeadLetter, DeadLetterKind
from orderstream.timestamps import utc_now
from testkit.browser import PASSWORD, chromium_tab, require_browser
from testkit.factories import OrderEventFactory
from testkit.helpers import Record
from testkit.topics import TopicReader


@pytest.mark.browser
@pytest.mark.broker
@pytest.mark.django_db(transaction=True, databases=["default", "worker"])
def test_staff_replays_a_dead_letter_from_the_admin(live_server, django_user_model, unique_topics):
    require_browser()
    user = django_user_model.objects.create_superuser(
        username="browser-dead-letters", email="browser@example.com", password=PASSWORD
    )
    event, other = OrderEventFactory(), OrderEventFactory()
    rejections = [
        Rejection(
            Record("orders.events", 0, 0, other.key, other.to_bytes()),
            "amount: not a number",
            "rules",
        ),
        Rejection(
            Record("orders.events", 0, 1, event.key, event.to_bytes()),
            "refused by the database: index row size 4032 exceeds btree maximum",
            DeadLetterKind.REFUSED_BY_DATABASE,
        ),
    ]
    dead_letters_record(rejections=rejections, failed_at=utc_now())
    letter = DeadLetter.objects.using("worker").get(key_text=event.order_id)
    changelist = "/admin/orders_worker/deadletter/"
    events = TopicReader(settings.ORDERS_EVENTS_TOPIC)

    try:
        with chromium_tab(live_server.url) as tab:
            page = tab.page
            tab.open(f"/admin/login/?next={changelist}")
            page.fill("#id_username", user.username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}{changelist}")
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 2
            assert page.locator("#result_list", has_text="index row size").count() == 1

            # Search by the key (the order id), then filter by kind.
            page.fill("#searchbar", event.order_id)
            page.locator("#changelist-search input[type=submit]").click()
            page.wait_for_url(lambda url: "q=" in url)
            assert rows.count() == 1
            assert event.order_id in rows.first.inner_text()
            page.locator("#changelist-filter a", has_text="refused by the database").click()
            page.wait_for_url(lambda url: "kind__exact=database" in url)
            assert rows.count() == 1

            # Select it and run the action.
            page.check(f"input[name=_selected_action][value='{letter.pk}']")
            page.select_option("select[name=action]", "replay_selected")
            page.locator("button[name=index]").click()
            success = page.locator(".messagelist .success")
            success.wait_for()
            assert success.inner_text() == (
                f"1 dead letter(s) replayed to {settings.ORDERS_EVENTS_TOPIC}: {letter.pk}."
            )
            tab.assert_clean()

        [record] = events.read_until(lambda records: records)
    finally:
        events.close()
    assert (record.key, record.value) == (event.key, event.to_bytes())
    letter.refresh_from_db()
    assert letter.replay_count == 1
