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
from orderstream.messages import OrderEvent
from testkit.factories import OrderEventFactory, ProcessedOrderFactory

pytestmark = pytest.mark.django_db(databases=["default", "worker"])

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def another_worker_stores_first(monkeypatch, order: OrderEvent, *, recorded=()) -> None:
    """Store v2 of `order`'s order (amount 2, `updated`) and record the events `recorded`
    ((event, ack status) pairs, the last one the row's last event) just before this batch
    decides its first event of that order: as if another worker, racing during a
    rebalance, committed them between this batch's read and its upsert."""

    def decide_after_the_other_worker(*, stored, event, processed_at):
        rows = ProcessedOrder.objects.using("worker")
        if event.order_id == order.order_id and not rows.filter(order_id=order.order_id):
            ProcessedOrderFactory(
                order_id=uuid.UUID(order.order_id),
                user_id=uuid.UUID(order.user_id),
                payload={"amount": 2},
                amount=2,
                version=2,
                last_status="updated",
                last_event_id=uuid.UUID(recorded[-1][0].event_id) if recorded else uuid.uuid4(),
            )
            for theirs, status in recorded:
                ProcessedEvent.objects.using("worker").create(
                    event_id=theirs.event_id,
                    order_id=theirs.order_id,
                    version=theirs.version,
                    ack_status=status,
                    processed_at=NOW,
                )
        return order_event_decide(stored=stored, event=event, processed_at=processed_at)

    monkeypatch.setattr(services, "order_event_decide", decide_after_the_other_worker)


def test_an_order_written_meanwhile_by_another_worker_is_answered_from_the_stored_row(
    monkeypatch,
):
    """Worker A read no row for the order; worker B then stored v2 (simulated by inserting
    it between A's read and A's upsert). A's v1 must not overwrite it, and A answers
    from the stored v2 like a stale event: ACK `updated`, result state v2."""
    v1 = OrderEventFactory(payload={"amount": 1})
    other = OrderEventFactory(payload={"amount": 5})
    another_worker_stores_first(monkeypatch, v1)

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


def test_a_lost_race_answers_the_events_the_other_worker_recorded_with_their_recorded_status(
    monkeypatch,
):
    """Two workers apply a new order during a rebalance: the other one stored v1 (created)
    and v2 (updated) between our read and our upsert, and recorded both events. Our upsert
    loses; the events the other worker recorded answer as it recorded them (the waiting
    create gets `created`, not `updated`), and nothing of theirs is changed."""
    created = OrderEventFactory(payload={"amount": 1})
    updated = replace(
        created, event_id=str(uuid.uuid4()), status="updated", version=2, payload={"amount": 2}
    )
    other = OrderEventFactory(payload={"amount": 5})

    another_worker_stores_first(
        monkeypatch, created, recorded=[(created, "created"), (updated, "updated")]
    )
    first, second, applied = orders_apply_batch(events=[created, updated, other], processed_at=NOW)

    assert (first.ack_status, first.outcome) == ("created", UpsertOutcome.DUPLICATE)
    assert (second.ack_status, second.outcome) == ("updated", UpsertOutcome.DUPLICATE)
    assert first.state.version == second.state.version == 2
    recorded = dict(
        ProcessedEvent.objects.using("worker")
        .filter(order_id=created.order_id)
        .values_list("event_id", "ack_status")
    )
    assert recorded == {
        uuid.UUID(created.event_id): "created",
        uuid.UUID(updated.event_id): "updated",
    }
    assert (applied.ack_status, applied.outcome) == ("created", UpsertOutcome.APPLIED)
