"""`orders_apply_batch` against the worker database: version races, and what it raises
for a batch that some event makes fail (the loop isolates that event: test_handler.py)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connections

from orders_worker import services
from orders_worker.models import ProcessedEvent, ProcessedOrder
from orders_worker.rules import UpsertOutcome, order_event_decide
from orders_worker.services import EventDataRefused, orders_apply_batch

from .factories import OrderEventFactory, ProcessedOrderFactory

pytestmark = pytest.mark.django_db(databases=["default", "worker"])

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_an_order_written_meanwhile_by_another_worker_is_answered_from_the_stored_row(
    monkeypatch,
):
    """Worker A read no row for the order; worker B then stored v2 (simulated by inserting
    it between A's read and A's upsert). A's v1 must not overwrite it, and A answers
    from the stored v2 like a stale event: ACK `updated`, result state v2."""
    v1 = OrderEventFactory(payload={"amount": 1})
    other = OrderEventFactory(payload={"amount": 5})

    def upsert_after_the_other_worker(*, stored, event, processed_at):
        if event.order_id == v1.order_id and not ProcessedOrder.objects.using("worker").filter(
            order_id=v1.order_id
        ):
            ProcessedOrderFactory(
                order_id=uuid.UUID(v1.order_id),
                user_id=uuid.UUID(v1.user_id),
                payload={"amount": 2},
                amount=2,
                version=2,
                last_status="updated",
            )
        return order_event_decide(stored=stored, event=event, processed_at=processed_at)

    monkeypatch.setattr(services, "order_event_decide", upsert_after_the_other_worker)
    lost, applied = orders_apply_batch(events=[v1, other], processed_at=NOW)

    assert (lost.ack_status, lost.outcome) == ("updated", UpsertOutcome.STALE)
    assert (lost.state.version, lost.state.amount) == (2, Decimal("2.00"))
    row = ProcessedOrder.objects.using("worker").get(order_id=v1.order_id)
    assert (row.version, row.payload) == (2, {"amount": 2})
    assert ProcessedEvent.objects.using("worker").get(event_id=v1.event_id).ack_status == "updated"
    assert (applied.ack_status, applied.outcome) == ("created", UpsertOutcome.APPLIED)
    assert ProcessedOrder.objects.using("worker").get(order_id=other.order_id).version == 1


def test_an_unexpected_error_while_applying_leaves_the_whole_batch_unapplied(rules_fail_for):
    """Any non-database error while applying (here a rule that raises for one order)
    propagates, and the batch's one transaction applies nothing: the loop then applies
    the events one at a time (test_handler.py)."""
    before, poison, after = OrderEventFactory(), OrderEventFactory(), OrderEventFactory()
    rules_fail_for(poison.order_id)
    with pytest.raises(RuntimeError, match="boom"):
        orders_apply_batch(events=[before, poison, after], processed_at=NOW)

    assert not ProcessedOrder.objects.using("worker").exists()
    assert not ProcessedEvent.objects.using("worker").exists()
    assert orders_apply_batch(events=[before], processed_at=NOW)[0].ack_status == "created"


def test_an_event_the_database_refuses_as_beyond_its_limits_is_a_refusal_not_an_outage():
    """An error of SQLSTATE class 54 (program limit exceeded) comes from what the event
    holds: retrying cannot heal it, so it is `EventDataRefused` (not a database error the
    loop would retry), and nothing of the batch is applied; applied alone, only that event
    is refused. Here an index on the payload's text (added for the test) refuses a row of
    4 KB of incompressible text."""
    with connections["worker"].cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX test_payload_text ON {ProcessedOrder._meta.db_table} ((payload::text))"
        )
    before, oversized, after = (
        OrderEventFactory(),
        OrderEventFactory(payload={"note": secrets.token_hex(2000)}),
        OrderEventFactory(),
    )

    with pytest.raises(EventDataRefused) as refused:
        orders_apply_batch(events=[before, oversized, after], processed_at=NOW)

    assert refused.value.reason.startswith("refused by the database: index row size")
    assert not ProcessedOrder.objects.using("worker").exists()
    with pytest.raises(EventDataRefused):
        orders_apply_batch(events=[oversized], processed_at=NOW)
    for event in (before, after):
        assert orders_apply_batch(events=[event], processed_at=NOW)[0].ack_status == "created"
    stored = set(ProcessedOrder.objects.using("worker").values_list("order_id", flat=True))
    assert stored == {uuid.UUID(before.order_id), uuid.UUID(after.order_id)}


def test_the_event_timestamp_is_stored_in_utc_and_read_back():
    event = OrderEventFactory(timestamp="2026-03-04T05:06:07-01:00")
    orders_apply_batch(events=[event], processed_at=NOW)
    row = ProcessedOrder.objects.using("worker").get(order_id=event.order_id)
    assert row.created_at == datetime(2026, 3, 4, 6, 6, 7, tzinfo=UTC)
    # The next event reads the row back (the read that crashed on a year-10000 value).
    update = replace(event, event_id=str(uuid.uuid4()), status="updated", version=2)
    assert orders_apply_batch(events=[update], processed_at=NOW)[0].ack_status == "updated"
