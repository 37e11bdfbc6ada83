"""The worker loop end to end against the real broker, PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest

from orders_worker.models import ProcessedEvent, ProcessedOrder
from orders_worker.results import order_result_read

from .factories import OrderEventFactory

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True, databases=["default", "worker"]),
]


def acks_by_event(reader) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for ack in reader.acks():
        seen.setdefault(ack.event_id, []).append(ack.status)
    return seen


def test_create_update_delete_flow_writes_row_redis_result_and_acks(
    unique_topics, running_worker, send_events, ack_reader
):
    """create -> updated -> deleted: stored row, Redis result and one ACK per event."""
    created = OrderEventFactory(payload={"id": 7, "items": [{"price": "2.50", "qty": 2}]})
    updated = replace(
        created,
        event_id=str(uuid.uuid4()),
        status="updated",
        version=2,
        payload={"id": 7, "amount": 9.99},
    )
    deleted = replace(created, event_id=str(uuid.uuid4()), status="deleted", version=3)
    send_events(created)
    ack_reader.read_until(lambda recs: len(recs) >= 1)
    result = order_result_read(order_id=created.order_id)
    assert result.status == "created"
    assert result.order_status == "done"
    assert result.amount == Decimal("5.00")

    send_events(updated, deleted)
    ack_reader.read_until(lambda recs: len(recs) >= 3)
    assert acks_by_event(ack_reader) == {
        created.event_id: ["created"],
        updated.event_id: ["updated"],
        deleted.event_id: ["deleted"],
    }
    assert all(a.order_id == created.order_id for a in ack_reader.acks())
    row = ProcessedOrder.objects.using("worker").get(order_id=created.order_id)
    assert (row.status, row.amount, row.version) == ("deleted", Decimal("9.99"), 3)
    assert row.payload == {"id": 7, "amount": 9.99}
    result = order_result_read(order_id=created.order_id)
    assert (result.status, result.order_status, result.amount) == (
        "deleted",
        "deleted",
        Decimal("9.99"),
    )
    assert result.payload == {"id": 7, "amount": 9.99}
    assert result.user_id == created.user_id
    assert ProcessedEvent.objects.using("worker").filter(order_id=created.order_id).count() == 3
