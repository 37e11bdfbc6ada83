"""This worker behind the Go original's API, on the real broker, PostgreSQL and Redis: a
stand-in of the original API produces exactly its event bytes (no key, no event id, no
version); the worker applies them, answers ACKs the original reads, and writes results
its API reads; it creates the dead-letter topic when it is missing."""

from __future__ import annotations

import json
import uuid

import pytest
from django.conf import settings
from django_redis import get_redis_connection

from orders_worker.handler import order_events_handle
from orders_worker.models import ProcessedOrder
from orders_worker.rules import UpsertOutcome
from orderstream.kafka import (
    AuthorizationError,
    KafkaConnectionError,
    ensure_topics,
    make_admin,
)
from orderstream.messages import OrderResult
from orderstream.original_format import ack_processed_at, original_event_id
from orderstream.timestamps import utc_now
from testkit.helpers import Record
from testkit.original_messages import (
    GO_ACK_FIELDS,
    GO_RESULT_FIELDS,
    StandInOriginal,
    as_go_reads,
    go_times,
    original_message,
)
from testkit.topics import TopicReader

from .support import CONFIG

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "worker"])


@pytest.fixture
def original_api(unique_topics):
    stand_in = StandInOriginal()
    yield stand_in
    stand_in.close()


def go_acks(reader: TopicReader, count: int) -> list[dict]:
    """The first `count` ACKs as the original's API reads them (its OrderAck struct)."""
    records = reader.read_until(lambda records: len(records) >= count)
    return [as_go_reads(r.value, GO_ACK_FIELDS) for r in records[:count]]


def test_the_originals_events_are_applied_and_acknowledged_in_its_form(
    running_worker, original_api, ack_reader
):
    """The fixtures create, update and delete one order, unkeyed, as the original's API
    sends them: three ACKs it reads (status created, updated, deleted, processed_at a time
    Go parses), and a Redis result its API reads (status and fields of its struct)."""
    order_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    redis = get_redis_connection("default")
    for name, times, expected in zip(
        ("event_create", "event_update", "event_delete"),
        go_times(utc_now(), 3),
        ("created", "updated", "deleted"),
        strict=True,
    ):
        raw = original_message(name, order_id=order_id, user_id=user_id, timestamp=times)
        original_api.send(settings.ORDERS_EVENTS_TOPIC, raw)
        ack = go_acks(ack_reader, ["created", "updated", "deleted"].index(expected) + 1)[-1]
        assert (ack["order_id"], ack["status"]) == (order_id, expected)
        assert ack_processed_at(ack["processed_at"]) is not None
        # The original's API answers its client from the Redis result's `status`.
        result = as_go_reads(redis.get(OrderResult.redis_key(order_id)), GO_RESULT_FIELDS)
        assert (result["status"], result["user_id"]) == (expected, user_id)
    assert result["order_status"] == "deleted"
    assert isinstance(result["amount"], (int, float)) and result["amount"] == 12.75
    assert all(ack_processed_at(result[k]) for k in ("processed_at", "created_at", "updated_at"))
    row = ProcessedOrder.objects.using("worker").get(order_id=order_id)
    assert (row.status, row.version, row.payload["note"]) == ("deleted", 3, "second")
    assert all(record.key == order_id.encode() for record in ack_reader.records)


@pytest.mark.parametrize("status", ["processing", "done", "cancelled"])
def test_the_originals_other_status_words_upsert(running_worker, original_api, ack_reader, status):
    order_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    first, second = go_times(utc_now(), 2)
    for name, moment in (("event_create", first), ("event_update", second)):
        raw = original_message(name, order_id=order_id, user_id=user_id, timestamp=moment)
        original_api.send(
            settings.ORDERS_EVENTS_TOPIC, raw.replace(b'"new"', f'"{status}"'.encode())
        )
    assert [a["status"] for a in go_acks(ack_reader, 2)] == ["created", "updated"]
    row = ProcessedOrder.objects.using("worker").get(order_id=order_id)
    assert (row.status, row.amount) == ("done", 12.75)


def test_a_rejected_original_event_gets_a_rejected_ack_with_its_error(
    running_worker, original_api, ack_reader, dlq_reader
):
    order_id = str(uuid.uuid4())
    raw = original_message(
        "event_create", order_id=order_id, user_id="not-a-uuid", timestamp=go_times(utc_now(), 1)[0]
    )
    original_api.send(settings.ORDERS_EVENTS_TOPIC, raw)
    [ack] = [json.loads(r.value) for r in ack_reader.read_until(lambda records: records)]
    assert (ack["order_id"], ack["status"]) == (order_id, "rejected")
    assert ack["error"] == "user_id: not a valid uuid"
    [dead] = dlq_reader.read_until(lambda records: records)
    assert (dead.key, dead.value) == (None, raw)


def test_unkeyed_events_on_two_partitions_end_on_the_newest_by_timestamp(
    six_partition_topics, running_worker, original_api, ack_reader
):
    """The original's events of one order may sit on different partitions and be read in
    either order: the one with the newer timestamp wins; the older, read after it, is stale
    (its ACK reports the current state, as for a stale versioned event)."""
    order_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    older, newer = go_times(utc_now(), 2)
    update = original_message("event_update", order_id=order_id, user_id=user_id, timestamp=newer)
    create = original_message("event_create", order_id=order_id, user_id=user_id, timestamp=older)
    original_api.send(settings.ORDERS_EVENTS_TOPIC, update, partition=4)
    assert go_acks(ack_reader, 1)[0]["status"] == "created"  # first sight
    original_api.send(settings.ORDERS_EVENTS_TOPIC, create, partition=1)
    assert go_acks(ack_reader, 2)[1]["status"] == "updated"  # stale: nothing changed
    row = ProcessedOrder.objects.using("worker").get(order_id=order_id)
    assert (row.version, row.payload["note"]) == (1, "second")


def test_a_redelivered_original_event_is_a_duplicate():
    """The same record (topic, partition, offset) read again: answered as the first time,
    nothing applied again."""
    raw = original_message(
        "event_create",
        order_id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        timestamp=go_times(utc_now(), 1)[0],
    )
    record = Record("orders.events", 2, 41, None, raw)
    first = order_events_handle(records=[record], config=CONFIG)
    again = order_events_handle(records=[record], config=CONFIG)
    assert [r.outcome for r in first.results + again.results] == [
        UpsertOutcome.APPLIED,
        UpsertOutcome.DUPLICATE,
    ]
    assert again.results[0].event.event_id == original_event_id(
        topic="orders.events", partition=2, offset=41
    )
    assert [json.loads(a.value)["status"] for a in first.acks + again.acks] == ["created"] * 2


@pytest.fixture
def missing_dlq_topic(unique_topics):
    """A dead-letter topic name no one created (the original's stack has none)."""
    unique_topics.ORDERS_DLQ_TOPIC = f"{unique_topics.ORDERS_DLQ_TOPIC}.missing"
    return unique_topics.ORDERS_DLQ_TOPIC


def test_the_worker_creates_a_missing_dead_letter_topic(
    missing_dlq_topic, running_worker, send_events
):
    admin = make_admin()
    try:
        assert missing_dlq_topic in admin.topic_names()
    finally:
        admin.close()
    send_events(b"not json")
    dead = TopicReader(missing_dlq_topic)
    try:
        assert dead.read_until(lambda records: records)[0].value == b"not json"
    finally:
        dead.close()


@pytest.mark.parametrize("driver", ["kafka-python", "confluent"])
def test_a_worker_whose_broker_refuses_its_topics_stops_with_one_line_naming_them(
    unique_topics, monkeypatch, driver
):
    """Authorization or policy: no retry helps, the worker does not start. (The driver's
    errors, as each driver raises them for a topic it may not create.)"""
    from confluent_kafka import KafkaError as CKError
    from confluent_kafka import KafkaException

    from orders_worker import worker as worker_module
    from orders_worker.worker import OrderWorker, TopicsUnavailable, WorkerConfig
    from orderstream.kafka.drivers.confluent.errors import project_error

    refusal = {
        "kafka-python": AuthorizationError("TOPIC_AUTHORIZATION_FAILED"),
        "confluent": project_error(
            KafkaException(CKError(CKError.TOPIC_AUTHORIZATION_FAILED, "denied"))
        ),
    }[driver]

    def refused(layout):
        raise refusal

    monkeypatch.setattr(worker_module, "ensure_topics", refused)
    worker = OrderWorker(WorkerConfig.from_settings())
    with pytest.raises(TopicsUnavailable) as info:
        worker.run()
    assert unique_topics.ORDERS_DLQ_TOPIC in str(info.value)
    assert "refused to create them" in str(info.value)


def test_a_broker_that_does_not_answer_is_retried_before_the_topics_are_created(
    unique_topics, monkeypatch
):
    from orders_worker import worker as worker_module
    from orders_worker.worker import OrderWorker, WorkerConfig

    calls = []

    def down_once(layout):
        calls.append(layout)
        if len(calls) == 1:
            raise KafkaConnectionError("broker down")
        return ensure_topics(layout)

    monkeypatch.setattr(worker_module, "ensure_topics", down_once)
    worker = OrderWorker(WorkerConfig.from_settings(backoff_initial=0.01, max_messages=0))
    worker.run()
    assert len(calls) == 2
