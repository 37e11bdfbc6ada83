"""`insert_in_one_statement` writes all its rows or none, in one statement."""

import json
import uuid

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders_api.models import IdempotencyKey, Order, OutboxEvent
from orders_api.outbox_events import outbox_event_build
from orders_api.single_statement import insert_in_one_statement
from testkit.factories import OrderFactory, ProcessedOrderFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _key(order, event_id, key="k-1"):
    return IdempotencyKey(
        user_id=order.user_id,
        key=key,
        fingerprint="f" * 64,
        order_id=order.order_id,
        event_id=event_id,
        operation="created",
        created_at=timezone.now(),
    )


def test_all_rows_are_written_by_a_single_statement():
    order = OrderFactory.build(payload={"id": "ext-1", "amount": "12.50"})
    event, row = outbox_event_build(order=order, operation="created")
    with CaptureQueriesContext(connection) as queries:
        insert_in_one_statement(order, row, _key(order, event.event_id))
    assert len(queries) == 1
    stored = Order.objects.get(pk=order.order_id)
    assert stored.payload == {"id": "ext-1", "amount": "12.50"}
    assert stored.user_id == order.user_id
    outbox = OutboxEvent.objects.get(event_id=event.event_id)
    assert (
        json.loads(outbox.value)["order_id"] == str(order.order_id) and outbox.published_at is None
    )
    assert IdempotencyKey.objects.filter(order_id=order.order_id, key="k-1").exists()


def test_a_failing_insert_leaves_no_row_behind():
    first = OrderFactory.build()
    event, row = outbox_event_build(order=first, operation="created")
    insert_in_one_statement(first, row, _key(first, event.event_id))

    second = OrderFactory.build(user_id=first.user_id)
    event2, row2 = outbox_event_build(order=second, operation="created")
    with pytest.raises(IntegrityError, match="idempotency_user_key_uniq"):
        insert_in_one_statement(second, row2, _key(second, event2.event_id))  # same key
    assert not Order.objects.filter(pk=second.order_id).exists()
    assert not OutboxEvent.objects.filter(event_id=event2.event_id).exists()


def test_rows_of_two_databases_are_refused():
    with pytest.raises(ValueError, match="several databases"):
        insert_in_one_statement(OrderFactory.build(), ProcessedOrderFactory.build())
    assert Order.objects.count() == 0


def test_one_instance_is_a_plain_insert():
    order = OrderFactory.build(order_id=uuid.uuid4())
    insert_in_one_statement(order)
    assert Order.objects.filter(pk=order.order_id).exists()
