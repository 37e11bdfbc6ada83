"""The worker loop end to end against the real broker, PostgreSQL and Redis."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django_redis import get_redis_connection

from orders_worker.handler import MAX_DEAD_LETTER_BYTES, MAX_ERROR_CHARS, dead_letter
from orders_worker.models import ProcessedEvent, ProcessedOrder
from orderstream.messages import MAX_EVENT_BYTES, OrderResult
from testkit.factories import OrderEventFactory
from testkit.helpers import eventually
from testkit.results import stored_result

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True, databases=["default", "worker"]),
]


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
    # The API's delete event carries the order as it kept it: the update's payload.
    deleted = replace(updated, event_id=str(uuid.uuid4()), status="deleted", version=3)
    send_events(created)
    ack_reader.read_until(lambda recs: len(recs) >= 1)
    result = stored_result(order_id=created.order_id)
    assert result.status == "created"
    assert result.order_status == "done"
    assert result.amount == Decimal("5.00")

    send_events(updated, deleted)
    ack_reader.read_until(lambda recs: len(recs) >= 3)
    assert ack_reader.statuses_by_event() == {
        created.event_id: ["created"],
        updated.event_id: ["updated"],
        deleted.event_id: ["deleted"],
    }
    assert all(a.order_id == created.order_id for a in ack_reader.acks())
    row = ProcessedOrder.objects.using("worker").get(order_id=created.order_id)
    assert (row.status, row.amount, row.version) == ("deleted", Decimal("9.99"), 3)
    assert row.payload == {"id": 7, "amount": 9.99}
    result = stored_result(order_id=created.order_id)
    assert (result.status, result.order_status, result.amount) == (
        "deleted",
        "deleted",
        Decimal("9.99"),
    )
    assert result.payload == {"id": 7, "amount": Decimal("9.99")}  # read back exactly
    assert result.user_id == created.user_id
    assert ProcessedEvent.objects.using("worker").filter(order_id=created.order_id).count() == 3


def test_a_duplicated_event_changes_nothing_and_is_acknowledged_as_the_first_time(
    unique_topics, running_worker, send_events, ack_reader
):
    created = OrderEventFactory(payload={"amount": 3})
    updated = replace(
        created, event_id=str(uuid.uuid4()), status="updated", version=2, payload={"amount": 4}
    )
    send_events(created, created, updated, created)
    ack_reader.read_until(lambda recs: len(recs) >= 4)
    assert ack_reader.statuses_by_event() == {
        created.event_id: ["created", "created", "created"],
        updated.event_id: ["updated"],
    }
    row = ProcessedOrder.objects.using("worker").get(order_id=created.order_id)
    assert (row.version, row.amount, row.last_status) == (2, Decimal("4.00"), "updated")
    assert stored_result(order_id=created.order_id).amount == Decimal("4.00")


def test_an_older_version_arriving_late_is_skipped_but_acknowledged_with_the_current_state(
    unique_topics, running_worker, send_events, ack_reader
):
    v1 = OrderEventFactory(payload={"amount": 1})
    v3 = replace(v1, event_id=str(uuid.uuid4()), status="updated", version=3, payload={"amount": 3})
    v2 = replace(v1, event_id=str(uuid.uuid4()), status="updated", version=2, payload={"amount": 2})
    send_events(v1, v3)
    ack_reader.read_until(lambda recs: len(recs) >= 2)
    send_events(v2)
    ack_reader.read_until(lambda recs: len(recs) >= 3)
    assert ack_reader.statuses_by_event()[v2.event_id] == ["updated"]
    row = ProcessedOrder.objects.using("worker").get(order_id=v1.order_id)
    assert (row.version, row.amount, row.payload) == (3, Decimal("3.00"), {"amount": 3})
    assert stored_result(order_id=v1.order_id).payload == {"amount": 3}


def test_poison_messages_go_to_the_dead_letter_topic_and_the_next_event_is_processed(
    unique_topics, running_worker, send_events, ack_reader, dlq_reader
):
    """Not JSON, a bad field, an unknown status and an unusable amount are dead-lettered
    with the error and original bytes, answered `rejected` when the order_id is known;
    the good event behind them is applied."""
    bad_status = OrderEventFactory()
    raw_bad_status = bad_status.to_bytes().replace(b'"created"', b'"archived"')
    bad_amount = OrderEventFactory(payload={"amount": "ten"})
    # (An event without version is the Go original's, ordered by time: test_original_worker.)
    no_version = json.loads(OrderEventFactory().to_bytes())
    no_version["version"] = 0
    good = OrderEventFactory()
    send_events(b"\x00not json at all", key=b"some-key")
    send_events(raw_bad_status, key=bad_status.key)
    send_events(json.dumps(no_version).encode(), key=no_version["order_id"].encode())
    send_events(bad_amount, good)

    dlq = dlq_reader.read_until(lambda recs: len(recs) >= 4)
    acks = ack_reader.read_until(lambda recs: len(recs) >= 4)
    errors = {r.value: dict(r.headers) for r in dlq}  # original bytes -> headers
    not_json = errors[b"\x00not json at all"]
    assert b"not valid JSON" in not_json["error"]
    assert not_json["source_topic"] == unique_topics.ORDERS_EVENTS_TOPIC.encode()
    assert {"source_partition", "source_offset", "failed_at"} <= set(not_json)
    assert [r.key for r in dlq if r.value.startswith(b"\x00")] == [b"some-key"]
    assert b"status" in errors[raw_bad_status]["error"]
    assert b"version" in errors[json.dumps(no_version).encode()]["error"]
    assert b"amount" in errors[bad_amount.to_bytes()]["error"]

    by_order = {a.order_id: a for a in ack_reader.acks()}
    assert by_order[bad_status.order_id].status == "rejected"
    assert "status" in by_order[bad_status.order_id].error
    assert by_order[no_version["order_id"]].status == "rejected"
    assert by_order[bad_amount.order_id].status == "rejected"
    assert by_order[good.order_id].status == "created"
    assert len(acks) == 4  # the non-JSON message has no order_id: no ACK
    assert ProcessedOrder.objects.using("worker").filter(order_id=good.order_id).exists()
    assert not ProcessedOrder.objects.using("worker").filter(order_id=bad_amount.order_id).exists()


def test_an_event_the_database_refuses_is_rejected_alone_and_the_rest_of_its_batch_applied(
    unique_topics, running_worker, send_events, ack_reader, dlq_reader
):
    """PostgreSQL cannot store \\u0000 in jsonb: only that event is dead-lettered."""
    before = OrderEventFactory()
    refused = OrderEventFactory(payload={"note": "a\u0000b"})
    after = OrderEventFactory()
    send_events(before, refused, after)
    ack_reader.read_until(lambda recs: len(recs) >= 3)
    statuses = {a.order_id: a.status for a in ack_reader.acks()}
    assert statuses == {
        before.order_id: "created",
        refused.order_id: "rejected",
        after.order_id: "created",
    }
    dlq = dlq_reader.read_until(lambda recs: len(recs) >= 1)
    assert b"database" in dict(dlq[0].headers)["error"]
    stored = set(ProcessedOrder.objects.using("worker").values_list("order_id", flat=True))
    assert {uuid.UUID(before.order_id), uuid.UUID(after.order_id)} <= stored
    assert uuid.UUID(refused.order_id) not in stored


def test_redis_unavailable_is_retried_without_acknowledging_and_recovers_by_itself(
    unique_topics, redis_outage, running_worker, send_events, ack_reader
):
    """While Redis is down the batch is retried (applied in PostgreSQL, no ACK, no commit);
    when Redis returns the same batch completes and is acknowledged once."""
    redis_outage.pause()
    event = OrderEventFactory()
    send_events(event)
    eventually(
        lambda: running_worker.stats.retries >= 2,
        timeout=20,
        message="the worker to retry the Redis write",
    )
    assert ProcessedEvent.objects.using("worker").filter(event_id=event.event_id).exists()
    assert running_worker.stats.processed == 0
    assert ack_reader.read_for(1.0) == []  # nothing acknowledged while Redis is down

    redis_outage.resume()
    ack_reader.read_until(lambda recs: len(recs) >= 1)
    assert ack_reader.statuses_by_event() == {event.event_id: ["created"]}
    # The ACK is produced before the offsets are committed and the batch is counted.
    eventually(lambda: running_worker.stats.processed == 1, timeout=10)
    assert stored_result(order_id=event.order_id).status == "created"


def test_an_event_that_fails_after_the_database_step_is_dead_lettered_and_the_loop_goes_on(
    unique_topics, running_worker, send_events, ack_reader, dlq_reader, redis_result_fails_for
):
    """An error no check foresaw (here: building the Redis result of one order raises)
    makes the batch run again one message at a time: the poison event is dead-lettered
    and answered `rejected`, the good event behind it is applied, the worker keeps going."""
    poison = OrderEventFactory()
    good = OrderEventFactory()
    redis_result_fails_for(poison.order_id)
    send_events(poison, good)
    ack_reader.read_until(lambda recs: len(recs) >= 2)
    assert {a.order_id: a.status for a in ack_reader.acks()} == {
        poison.order_id: "rejected",
        good.order_id: "created",
    }
    dlq = dlq_reader.read_until(lambda recs: len(recs) >= 1)
    assert [r.value for r in dlq] == [poison.to_bytes()]
    assert b"OverflowError" in dict(dlq[0].headers)["error"]
    assert stored_result(order_id=good.order_id).status == "created"
    assert stored_result(order_id=poison.order_id) is None
    eventually(lambda: running_worker.stats.processed == 2, timeout=10)

    later = OrderEventFactory()
    send_events(later)
    ack_reader.read_until(lambda recs: len(recs) >= 3)
    assert stored_result(order_id=later.order_id).status == "created"


def test_out_of_range_timestamps_and_overflowing_amounts_are_rejected_not_fatal(
    unique_topics, running_worker, send_events, ack_reader, dlq_reader
):
    """The two events that used to stop the worker for good: a timestamp that is year
    10000 in UTC, and price * qty beyond any decimal."""
    far_future = OrderEventFactory(timestamp="9999-12-31T23:59:59-01:00")
    overflow = OrderEventFactory(payload={"items": [{"price": "1e999999", "qty": "1e999999"}]})
    good = OrderEventFactory()
    send_events(far_future, overflow, good)
    ack_reader.read_until(lambda recs: len(recs) >= 3)
    acks = {a.order_id: a for a in ack_reader.acks()}
    assert acks[far_future.order_id].status == "rejected"
    assert "timestamp" in acks[far_future.order_id].error
    assert acks[overflow.order_id].status == "rejected"
    assert "amount" in acks[overflow.order_id].error
    assert acks[good.order_id].status == "created"
    assert len(dlq_reader.read_until(lambda recs: len(recs) >= 2)) == 2
    assert not ProcessedOrder.objects.using("worker").filter(order_id=far_future.order_id)


def test_non_ascii_payloads_travel_as_utf8_to_postgresql_and_redis(
    unique_topics, running_worker, send_events, ack_reader
):
    event = OrderEventFactory(payload={"id": "Заказ-1", "body": "ж" * 300_000, "amount": 1})
    assert len(event.to_bytes()) < MAX_EVENT_BYTES
    send_events(event)
    ack_reader.read_until(lambda recs: len(recs) >= 1)
    row = ProcessedOrder.objects.using("worker").get(order_id=event.order_id)
    assert row.payload == event.payload
    raw = get_redis_connection("default").get(OrderResult.redis_key(event.order_id))
    assert "Заказ-1".encode() in raw
    assert stored_result(order_id=event.order_id).payload == event.payload


def test_an_invalid_event_near_the_size_limit_is_dead_lettered_within_the_limit(
    unique_topics, running_worker, send_events, ack_reader, dlq_reader
):
    """The error text used to echo the bad value in full: a dead letter of twice the
    event's size, refused by the producer, and retried forever (MessageSizeTooLargeError
    counted as transient) while the next events waited. The error is bounded, the dead
    letter fits (the original bytes when they fit beside it, else their coordinates), and
    the event behind it is applied."""
    huge = replace(OrderEventFactory(), status="x" * 900_000)
    good = OrderEventFactory()
    send_events(huge, good)
    ack_reader.read_until(lambda recs: len(recs) >= 2, timeout=30)
    acks = {a.order_id: a for a in ack_reader.acks()}
    assert acks[good.order_id].status == "created"
    assert acks[huge.order_id].status == "rejected"
    assert "status" in acks[huge.order_id].error
    assert len(acks[huge.order_id].error) <= MAX_ERROR_CHARS
    [letter] = dlq_reader.read_until(lambda recs: len(recs) >= 1)
    headers = dict(letter.headers)
    assert len(headers["error"]) <= MAX_ERROR_CHARS * 4
    assert headers["source_offset"] == b"0"
    assert letter.value == huge.to_bytes()  # the original bytes fit beside a short error


def test_a_dead_letter_too_large_for_the_broker_keeps_the_coordinates():
    """When the original bytes cannot fit, the dead letter keeps where they are."""
    record = SimpleNamespace(
        topic="events", partition=3, offset=42, key=b"k", value=b"{" * (MAX_DEAD_LETTER_BYTES + 1)
    )
    letter = dead_letter(record, "not JSON", "dlq")
    headers = dict(letter.headers)
    assert letter.value == b""
    assert headers["value_omitted_bytes"] == str(MAX_DEAD_LETTER_BYTES + 1).encode()
    assert (headers["source_topic"], headers["source_partition"]) == (b"events", b"3")
    assert headers["source_offset"] == b"42"


def test_an_external_id_longer_than_a_btree_index_row_is_applied(
    unique_topics, running_worker, send_events, ack_reader
):
    """The same long payload.id sent straight to Kafka was retried by the worker forever
    (its btree index refused the row, an OperationalError): it is applied now."""
    event = OrderEventFactory(payload={"id": secrets.token_urlsafe(3000), "amount": 1})
    send_events(event)
    ack_reader.read_until(lambda recs: len(recs) >= 1, timeout=20)
    assert ack_reader.statuses_by_event() == {event.event_id: ["created"]}
    row = ProcessedOrder.objects.using("worker").get(order_id=event.order_id)
    assert row.payload["id"] == event.payload["id"]
