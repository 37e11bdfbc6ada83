"""The outbox admin: staff only, read-only, a state filter, uuid search, retry of parked rows."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from orders_api.models import OutboxEvent
from orders_api.outbox_events import outbox_event_build
from orders_api.outbox_operations import outbox_events_unpark
from orders_api.relay.publish import outbox_relay_once
from orderstream.kafka import make_producer
from testkit.factories import OrderFactory

pytestmark = pytest.mark.django_db


def changelist_url() -> str:
    return reverse("admin:orders_api_outboxevent_changelist")


def outbox_row(state: str = "unpublished", **order_fields) -> OutboxEvent:
    """An order and its event row, saved in `state`: unpublished (due now), parked or
    published."""
    row = outbox_event_build(order=OrderFactory(**order_fields), operation="created").row
    now = timezone.now()
    row.next_attempt_at = now
    if state == "parked":
        row.parked_at = now
        row.attempts = 1
        row.last_error = "MessageSizeTooLargeError: [Error 10] MessageSizeTooLargeError"
    elif state == "published":
        row.published_at = now
    row.save(force_insert=True)
    return row


def listed(response) -> set[int]:
    """The ids of the rows a changelist response shows."""
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get(changelist_url())
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_sees_the_changelist_newest_first(admin_client):
    older, newer = outbox_row(), outbox_row(state="parked")
    response = admin_client.get(changelist_url())
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index(str(newer.order_id)) < body.index(str(older.order_id))
    assert "MessageSizeTooLargeError" in body


def test_staff_who_may_only_view_see_the_rows_but_not_the_retry_action(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-123456", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_outboxevent"))
    client.force_login(user)
    row = outbox_row(state="parked")
    response = client.get(changelist_url())
    assert response.status_code == 200
    assert str(row.order_id) in response.content.decode()
    assert "retry_parked" not in response.content.decode()
    client.post(changelist_url(), {"action": "retry_parked", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.parked_at is not None


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("unpublished", {"unpublished"}),
        ("parked", {"parked"}),
        ("published", {"published"}),
        (None, {"unpublished", "parked", "published"}),
    ],
)
def test_the_state_filter_shows_the_rows_in_that_state(admin_client, state, expected):
    rows = {name: outbox_row(state=name) for name in ("unpublished", "parked", "published")}
    params = {"state": state} if state else {}
    response = admin_client.get(changelist_url(), params)
    assert listed(response) == {rows[name].pk for name in expected}


@pytest.mark.parametrize("field", ["order_id", "event_id"])
def test_search_finds_the_row_by_its_exact_uuid(admin_client, field):
    wanted, other = outbox_row(), outbox_row()
    response = admin_client.get(changelist_url(), {"q": str(getattr(wanted, field))})
    assert listed(response) == {wanted.pk}
    assert str(other.order_id) not in response.content.decode()


@pytest.mark.parametrize("term", ["not-a-uuid", "12345", "'; drop table x; --", str(uuid.uuid4())])
def test_a_search_for_anything_else_answers_200_and_finds_nothing(admin_client, term):
    outbox_row()
    response = admin_client.get(changelist_url(), {"q": term})
    assert listed(response) == set()


def test_outbox_rows_cannot_be_added_changed_or_deleted(admin_client):
    """Rows are written only with their order, and deleting one would lose its event."""
    row = outbox_row(state="parked")
    url = changelist_url()
    assert admin_client.get(f"{url}add/").status_code == 403
    assert admin_client.get(f"{url}{row.pk}/delete/").status_code == 403
    response = admin_client.post(f"{url}{row.pk}/change/", {"topic": "elsewhere", "attempts": 0})
    assert response.status_code == 403
    admin_client.post(url, {"action": "delete_selected", "_selected_action": [row.pk]})
    stored = OutboxEvent.objects.get(pk=row.pk)
    assert (stored.topic, stored.attempts) == (row.topic, row.attempts)


def test_the_detail_page_is_read_only_and_shows_the_event_json_as_published(admin_client):
    row = outbox_row(payload={"id": "A-1", "amount": 1e300, "note": "<b>&</b>"})
    response = admin_client.get(f"{changelist_url()}{row.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    for field in ("topic", "attempts", "last_error", "parked_at"):
        assert f'name="{field}"' not in body
    assert escape(row.value) in body  # the stored text itself: 1e300 stays 1e300
    assert "<b>&</b>" not in body


def test_unpark_counts_only_parked_unpublished_rows():
    parked = [outbox_row(state="parked"), outbox_row(state="parked")]
    unpublished, published = outbox_row(), outbox_row(state="published")
    parked_and_published = outbox_row(state="published")
    OutboxEvent.objects.filter(pk=parked_and_published.pk).update(parked_at=timezone.now())
    every_id = [r.event_id for r in (*parked, unpublished, published, parked_and_published)]
    assert outbox_events_unpark(event_ids=every_id + [str(uuid.uuid4())]) == 2
    assert outbox_events_unpark(event_ids=every_id) == 0
    assert outbox_events_unpark(event_ids=[]) == 0
    assert not OutboxEvent.objects.filter(pk__in=[r.pk for r in parked], parked_at__isnull=False)
    assert OutboxEvent.objects.get(pk=parked_and_published.pk).parked_at is not None


def test_retry_unparks_only_parked_unpublished_rows_and_the_relay_publishes_them(
    admin_client, unique_topics, topic_reader
):
    """The relay parks an event the broker refuses; "Retry" puts it back, keeping attempts
    and last_error, and the relay's next pass publishes it once the cause is gone."""
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    big = outbox_row(payload={"note": "x" * 5000})
    small_producer = make_producer(client_id="api-tests-admin-small", max_request_size=2000)
    try:
        assert outbox_relay_once(producer=small_producer) == (0, 0)
    finally:
        small_producer.close(timeout=1)
    parked = OutboxEvent.objects.get(pk=big.pk)
    assert parked.parked_at is not None and parked.published_at is None
    later = timezone.now() + timedelta(hours=1)
    waiting = outbox_row()
    OutboxEvent.objects.filter(pk=waiting.pk).update(next_attempt_at=later)
    published = outbox_row(state="published")

    response = admin_client.post(
        changelist_url(),
        {"action": "retry_parked", "_selected_action": [big.pk, waiting.pk, published.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 parked event(s) put back in the relay&#x27;s queue." in response.content.decode()
    retried = OutboxEvent.objects.get(pk=big.pk)
    assert retried.parked_at is None and retried.published_at is None
    assert retried.next_attempt_at <= timezone.now()
    assert (retried.attempts, retried.last_error) == (parked.attempts, parked.last_error)
    assert OutboxEvent.objects.get(pk=waiting.pk).next_attempt_at == later
    assert OutboxEvent.objects.get(pk=published.pk).published_at == published.published_at

    producer = make_producer(client_id="api-tests-admin")
    try:
        assert outbox_relay_once(producer=producer) == (1, 0)
    finally:
        producer.close(timeout=1)
    assert OutboxEvent.objects.get(pk=big.pk).published_at is not None
    records = reader.read_until(lambda records: records)
    assert [json.loads(r.value)["event_id"] for r in records] == [str(big.event_id)]


def test_retry_of_rows_that_are_not_parked_says_nothing_changed(admin_client):
    row = outbox_row()
    response = admin_client.post(
        changelist_url(), {"action": "retry_parked", "_selected_action": [row.pk]}, follow=True
    )
    assert "nothing changed" in response.content.decode()
