"""The order handler driven with plain records, against the test database and Redis and
no broker; and the loop's one fallback (a batch that fails is handled again one record at
a time), with a producer that only records what it is given."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

import pytest
from django_redis import get_redis_connection

from orders_worker.handler import order_event_reject, order_events_handle
from orders_worker.models import ProcessedEvent, ProcessedOrder
from orders_worker.rules import UpsertOutcome
from orders_worker.services import EventDataRefused
from orders_worker.worker import OrderWorker, WorkerConfig
from orderstream.messages import OrderAck, OrderResult
from testkit.factories import OrderEventFactory
from testkit.results import stored_result

from .support import CONFIG, RecordingProducer, records_of

pytestmark = pytest.mark.django_db(databases=["default", "worker"])


def acks_of(outgoing) -> dict[str, str]:
    """ACK status per order_id."""
    return {a.order_id: a.status for a in (OrderAck.from_bytes(o.value) for o in outgoing)}


def stored_order_ids() -> set[str]:
    rows = ProcessedOrder.objects.using("worker").values_list("order_id", flat=True)
    return {str(order_id) for order_id in rows}


def test_a_batch_is_applied_with_one_ack_per_event_and_the_final_state_in_redis():
    created = OrderEventFactory(payload={"amount": 1})
    updated = replace(created, event_id=str(uuid.uuid4()), status="updated", version=2)
    other = OrderEventFactory(payload={"items": [{"price": "2.50", "qty": 2}]})

    outcome = order_events_handle(records=records_of(created, updated, other), config=CONFIG)

    assert [r.ack_status for r in outcome.results] == ["created", "updated", "created"]
    assert outcome.dead_letters == []
    acks = [OrderAck.from_bytes(o.value) for o in outcome.acks]
    assert [(a.event_id, a.status) for a in acks] == [
        (created.event_id, "created"),
        (updated.event_id, "updated"),
        (other.event_id, "created"),
    ]
    assert {o.topic for o in outcome.acks} == {"acks"}
    assert [o.key for o in outcome.acks] == [created.key, updated.key, other.key]
    result = stored_result(order_id=created.order_id)
    assert (result.status, result.version) == ("updated", 2)
    assert stored_result(order_id=other.order_id).amount == 5


def test_records_that_are_no_valid_event_are_dead_lettered_and_the_rest_applied():
    """Not JSON (no order_id: a dead letter only), an unknown status and an amount the
    rules refuse (a dead letter and a `rejected` ACK each); the good event is applied."""
    bad_status = OrderEventFactory()
    raw_bad_status = bad_status.to_bytes().replace(b'"created"', b'"archived"')
    bad_amount = OrderEventFactory(payload={"amount": "ten"})
    good = OrderEventFactory()
    records = records_of(b"\x00not json", raw_bad_status, bad_amount, good)

    outcome = order_events_handle(records=records, config=CONFIG)

    assert acks_of(outcome.acks) == {
        bad_status.order_id: "rejected",
        bad_amount.order_id: "rejected",
        good.order_id: "created",
    }
    assert [d.value for d in outcome.dead_letters] == [r.value for r in records[:3]]
    assert {d.topic for d in outcome.dead_letters} == {"dead-letters"}
    headers = dict(outcome.dead_letters[2].headers)
    assert b"amount" in headers["error"]
    assert (headers["source_topic"], headers["source_offset"]) == (b"events", b"2")
    assert stored_order_ids() == {good.order_id}


def test_the_log_lines_of_a_rejected_and_an_applied_event_carry_their_order_and_record(caplog):
    """The fields LOG_FORMAT=json writes (orderstream/log_format.py): the rejection's
    WARNING and the applied event's DEBUG line name the order, event and record."""
    bad_amount = OrderEventFactory(payload={"amount": "ten"})
    good = OrderEventFactory()
    caplog.set_level(logging.DEBUG, logger="orders_worker.handler")

    order_events_handle(records=records_of(bad_amount, good), config=CONFIG)

    lines = {r.order_id: r for r in caplog.records if hasattr(r, "order_id")}
    rejected, applied = lines[bad_amount.order_id], lines[good.order_id]
    assert rejected.levelname == "WARNING" and "rejected message" in rejected.getMessage()
    assert (rejected.event_id, rejected.topic, rejected.partition, rejected.offset) == (
        bad_amount.event_id,
        "events",
        0,
        0,
    )
    assert applied.levelname == "DEBUG" and "applied, ACK created" in applied.getMessage()
    assert (applied.event_id, applied.partition, applied.offset) == (good.event_id, 0, 1)


def test_an_event_handled_before_is_answered_as_the_first_time_and_changes_nothing():
    event = OrderEventFactory()
    order_events_handle(records=records_of(event), config=CONFIG)

    again = order_events_handle(records=records_of(event), config=CONFIG)

    assert [(r.ack_status, r.outcome) for r in again.results] == [
        ("created", UpsertOutcome.DUPLICATE)
    ]
    assert acks_of(again.acks) == {event.order_id: "created"}
    assert ProcessedEvent.objects.using("worker").filter(event_id=event.event_id).count() == 1


def test_a_result_rewritten_from_the_stored_row_keeps_the_payload_as_the_event_had_it():
    """When Redis lost the result (its TTL ran out), a redelivered event writes it again
    from the stored row: 1e300 stays 1e+300 (the row's jsonb prints it as 301 digits)."""
    event = OrderEventFactory(payload={"x": 1e300, "n": [2.5e-300, 7]})
    order_events_handle(records=records_of(event), config=CONFIG)
    redis = get_redis_connection("default")
    redis.delete(OrderResult.redis_key(event.order_id))

    again = order_events_handle(records=records_of(event), config=CONFIG)

    assert again.results[0].state.payload == {"x": 1e300, "n": [2.5e-300, 7]}
    raw = redis.get(OrderResult.redis_key(event.order_id))
    assert b'"payload":{"x":1e+300,"n":[2.5e-300,7]}' in raw


def test_every_ack_carries_its_events_version_a_duplicate_and_a_stale_one_too():
    """The ACK's `version` is the event's own, whatever the worker did with it: a
    duplicate or a stale event is acknowledged with its (older) version, so the API's ACK
    recorder never takes it for news. An event that could not be read has none."""
    created = OrderEventFactory()
    deleted = replace(created, event_id=str(uuid.uuid4()), status="deleted", version=2)
    stale = replace(created, event_id=str(uuid.uuid4()), status="updated", version=1)
    refused = replace(created, event_id=str(uuid.uuid4()), version=3, payload={"amount": "x"})
    unreadable = created.to_bytes().replace(b'"created"', b'"archived"')

    first = order_events_handle(records=records_of(created, deleted), config=CONFIG)
    again = order_events_handle(
        records=records_of(created, stale, refused, unreadable), config=CONFIG
    )

    def answers(outcome):
        return [
            (a.status, a.version) for a in map(OrderAck.from_bytes, [o.value for o in outcome.acks])
        ]

    assert answers(first) == [("created", 1), ("deleted", 2)]
    assert answers(again) == [("created", 1), ("deleted", 1), ("rejected", 3), ("rejected", None)]


def test_the_database_and_redis_steps_each_run_through_the_loops_retry():
    steps = []

    def retry(what, step):
        steps.append(what)
        return step()

    order_events_handle(records=records_of(OrderEventFactory()), config=CONFIG, retry=retry)

    assert steps == ["apply the batch to PostgreSQL", "write results to Redis"]


def test_an_event_the_database_refuses_makes_the_batch_raise_with_nothing_applied():
    """PostgreSQL cannot store \\u0000 in jsonb: not an outage (no retry helps), so the
    handler raises for the loop to isolate the event."""
    good, refused = OrderEventFactory(), OrderEventFactory(payload={"note": "a\u0000b"})

    with pytest.raises(EventDataRefused, match="refused by the database"):
        order_events_handle(records=records_of(good, refused), config=CONFIG)

    assert stored_order_ids() == set()


def test_a_record_that_failed_alone_gets_a_dead_letter_and_a_rejected_ack():
    event = OrderEventFactory()
    [record, not_json] = records_of(event, b"{")

    outcome = order_event_reject(record=record, error=RuntimeError("boom"), config=CONFIG)

    [ack] = [OrderAck.from_bytes(o.value) for o in outcome.acks]
    assert (ack.event_id, ack.status) == (event.event_id, "rejected")
    assert ack.error == "could not be processed: RuntimeError: boom"
    [letter] = outcome.dead_letters
    assert letter.value == record.value
    assert dict(letter.headers)["error"] == b"could not be processed: RuntimeError: boom"
    alone = order_event_reject(record=not_json, error=ValueError("x"), config=CONFIG)
    assert (alone.acks, len(alone.dead_letters)) == ([], 1)


# ------------------------------------------------------------------ the loop's fallback
@pytest.fixture
def worker() -> OrderWorker:
    """A worker that is not running, with a recording producer and no consumer."""
    config = WorkerConfig(events_topic="events", group="g", ack_topic="acks", dlq_topic="dlq")
    worker = OrderWorker(config)
    worker._producer = RecordingProducer()
    return worker


def test_the_loop_rejects_the_event_the_database_refuses_alone(worker):
    before, after = OrderEventFactory(), OrderEventFactory()
    refused = OrderEventFactory(payload={"note": "a\u0000b"})

    worker._process_isolating(records_of(before, refused, after))

    assert worker._producer.statuses() == {
        before.order_id: "created",
        refused.order_id: "rejected",
        after.order_id: "created",
    }
    [error] = worker._producer.errors()
    assert error.startswith(b"refused by the database: ")
    assert stored_order_ids() == {before.order_id, after.order_id}
    assert worker.stats.rejected == 1


def test_the_loop_rejects_an_event_that_fails_unexpectedly_alone(worker, rules_fail_for):
    before, poison, after = OrderEventFactory(), OrderEventFactory(), OrderEventFactory()
    rules_fail_for(poison.order_id)
    worker._process_isolating(records_of(before, poison, after))

    assert worker._producer.statuses() == {
        before.order_id: "created",
        poison.order_id: "rejected",
        after.order_id: "created",
    }
    assert worker._producer.errors() == [b"could not be processed: RuntimeError: boom"]
    assert stored_order_ids() == {before.order_id, after.order_id}


def test_the_loop_rejects_an_event_whose_redis_result_fails_and_keeps_its_row(
    worker, redis_result_fails_for
):
    """The database step of the whole batch succeeded before Redis failed for one order:
    handled again alone, the others are answered as duplicates with their first ACK."""
    poison, good = OrderEventFactory(), OrderEventFactory()
    redis_result_fails_for(poison.order_id)
    worker._process_isolating(records_of(poison, good))

    assert worker._producer.statuses() == {poison.order_id: "rejected", good.order_id: "created"}
    [error] = worker._producer.errors()
    assert error.startswith(b"could not be processed: OverflowError")
    assert stored_result(order_id=good.order_id).status == "created"
    assert stored_result(order_id=poison.order_id) is None
    assert stored_order_ids() == {poison.order_id, good.order_id}


@pytest.mark.parametrize(
    ("ack_partitions", "expected"),
    [({0, 1, 2, 3}, [2, 3]), ({0, 1, 2}, [2, None]), (None, [None, None])],
    ids=["as many as the events' topic", "fewer: the key decides", "unknown topic"],
)
def test_an_ack_goes_to_its_events_partition_when_the_ack_topic_has_it(
    worker, ack_partitions, expected
):
    """An ACK names its event's partition (the one its key hashes to when both topics
    have as many partitions); where the ACK topic lacks that partition, the key decides."""
    worker._producer = RecordingProducer({"acks": ack_partitions} if ack_partitions else {})
    records = records_of(OrderEventFactory(), OrderEventFactory())
    records = [record._replace(partition=p) for record, p in zip(records, (2, 3), strict=True)]

    worker._process_isolating(records)

    assert worker._producer.partitions_sent_to == expected
    assert [key for _, key, _, _ in worker._producer.sent] == [r.key for r in records]
