"""The transactional outbox: one transaction for an order and its event, the relay's
passes (version order, several relays, backoff, parking) and the purge."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from devstack.ports import free_port
from orders_api.models import Order, OutboxEvent
from orders_api.outbox_events import outbox_event_add
from orders_api.relay import purge
from orders_api.relay.publish import outbox_relay_once
from orders_api.relay.purge import expired_rows_purge, outbox_purge
from orders_api.services import order_upsert
from orderstream import messages
from orderstream.kafka import make_producer
from orderstream.messages import OrderEvent
from testkit.factories import OrderFactory
from testkit.helpers import eventually

transactional = pytest.mark.django_db(transaction=True)


def _unpublished_event(**order_fields) -> OrderEvent:
    """An order and its event, committed and not yet published."""
    with transaction.atomic():
        order = OrderFactory(**order_fields)
        return outbox_event_add(order=order, operation="created").event


@pytest.fixture
def producer(kafka_bootstrap):
    producer = make_producer(client_id="api-tests-relay")
    yield producer
    producer.close(timeout=1)


@pytest.mark.django_db
def test_the_order_and_its_event_commit_or_roll_back_together():
    with pytest.raises(RuntimeError), transaction.atomic():
        order_upsert(user_id=uuid.uuid4(), order_id=None, payload={"amount": 1})
        assert Order.objects.count() == OutboxEvent.objects.count() == 1
        raise RuntimeError("the request fails after the write")
    assert not Order.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_each_accepted_change_adds_an_event_with_the_rows_version():
    user = uuid.uuid4()
    write = order_upsert(user_id=user, order_id=None, payload={"id": 7, "amount": 1})
    order_upsert(user_id=user, order_id=write.order_id, payload={"id": 7, "amount": 2})
    order_upsert(user_id=user, order_id=write.order_id, payload=None, delete=True)
    events = [json.loads(row.value) for row in OutboxEvent.objects.order_by("id")]
    assert [(e["status"], e["version"]) for e in events] == [
        ("created", 1),
        ("updated", 2),
        ("deleted", 3),
    ]
    assert {e["order_id"] for e in events} == {str(write.order_id)}
    assert {e["external_id"] for e in events} == {"7"}
    assert Order.objects.get().version == 3


@transactional
def test_the_relay_publishes_a_committed_event_keyed_by_order_id(
    unique_topics, topic_reader, running_relay
):
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    write = order_upsert(user_id=uuid.uuid4(), order_id=None, payload={"amount": 3})
    records = reader.read_until(lambda records: records)
    assert records[0].key == str(write.order_id).encode()
    event = OrderEvent.from_bytes(records[0].value)
    assert (event.event_id, event.status, event.version) == (write.event_id, "created", 1)
    eventually(
        lambda: OutboxEvent.objects.get(event_id=write.event_id).published_at,
        message="the row is marked published",
    )


@transactional
def test_a_relay_pass_publishes_due_rows_and_marks_them(unique_topics, topic_reader, producer):
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    event = _unpublished_event()
    assert outbox_relay_once(producer=producer) == (1, 0)
    records = reader.read_until(lambda records: records)
    assert json.loads(records[0].value)["event_id"] == event.event_id
    assert records[0].key == event.order_id.encode()
    assert OutboxEvent.objects.get(event_id=event.event_id).published_at is not None
    assert outbox_relay_once(producer=producer) == (0, 0)


@transactional
def test_the_relay_backs_off_while_the_broker_is_unreachable(settings, producer):
    settings.OUTBOX_RELAY_INTERVAL = 30  # the first backoff; longer than the pass and close
    event = _unpublished_event()
    producer = make_producer(
        bootstrap_servers=[f"127.0.0.1:{free_port()}"], api_version=(2, 5), max_block_ms=200
    )
    before_the_pass = timezone.now()
    try:
        assert outbox_relay_once(producer=producer) == (0, 1)
    finally:
        producer.close(timeout=1)
    row = OutboxEvent.objects.get(event_id=event.event_id)
    assert row.published_at is None
    assert row.attempts == 1
    assert row.next_attempt_at >= before_the_pass + timedelta(seconds=30)
    assert "Timeout" in row.last_error
    # Not due yet: the next pass does not try again.
    assert outbox_relay_once(producer=producer) == (0, 0)


@transactional
def test_a_pass_is_bounded_by_bytes_as_well_as_rows(unique_topics, settings, producer):
    """Events of about 10 KB, 25 000 bytes a pass: two go in the first pass, the third in
    the next; an event larger than the bound goes alone."""
    settings.OUTBOX_RELAY_BATCH_BYTES = 25_000
    events = [_unpublished_event(payload={"note": "x" * 10_000}) for _ in range(3)]
    assert outbox_relay_once(producer=producer) == (2, 0)
    published = OutboxEvent.objects.filter(published_at__isnull=False)
    assert set(published.values_list("event_id", flat=True)) == {
        uuid.UUID(e.event_id) for e in events[:2]
    }
    assert outbox_relay_once(producer=producer) == (1, 0)
    settings.OUTBOX_RELAY_BATCH_BYTES = 1_000
    _unpublished_event(payload={"note": "x" * 10_000})
    _unpublished_event(payload={"note": "x" * 10_000})
    assert outbox_relay_once(producer=producer) == (1, 0)
    assert outbox_relay_once(producer=producer) == (1, 0)


@contextlib.contextmanager
def another_relay_holding(**rows):
    """Another relay's transaction, in a thread, holding the outbox rows matching `rows`
    locked (FOR UPDATE) until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                list(OutboxEvent.objects.select_for_update().filter(**rows))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10), "the other relay did not lock its rows"
        yield
    finally:
        release.set()
        thread.join(10)


@transactional
def test_relays_in_several_processes_skip_each_others_rows(unique_topics, producer):
    """A row locked by one relay (FOR UPDATE SKIP LOCKED) is not published by another."""
    event = _unpublished_event()
    with another_relay_holding(event_id=event.event_id):
        assert outbox_relay_once(producer=producer) == (0, 0)
    assert outbox_relay_once(producer=producer) == (1, 0)


def _old_recent_and_other(field: str) -> tuple[str, str, str]:
    """Three committed events: one with `field` set 2 h ago, one 5 min ago, one without."""
    with transaction.atomic():
        events = [
            outbox_event_add(order=OrderFactory(), operation="created").event for _ in range(3)
        ]
    old, recent, other = (e.event_id for e in events)
    now = timezone.now()
    OutboxEvent.objects.filter(event_id=old).update(**{field: now - timedelta(hours=2)})
    OutboxEvent.objects.filter(event_id=recent).update(**{field: now - timedelta(minutes=5)})
    return old, recent, other


def _outbox_event_ids() -> set[uuid.UUID]:
    return set(OutboxEvent.objects.values_list("event_id", flat=True))


@pytest.mark.django_db
def test_the_purge_deletes_only_old_published_rows(settings):
    settings.OUTBOX_RETENTION_SECONDS = 3600
    _, recent, unpublished = _old_recent_and_other("published_at")
    assert outbox_purge() == 1
    assert _outbox_event_ids() == {uuid.UUID(recent), uuid.UUID(unpublished)}


@pytest.mark.django_db
def test_the_purge_deletes_parked_rows_after_their_retention(settings):
    """Parked rows wait for an operator OUTBOX_PARKED_RETENTION_SECONDS, then go; 0 keeps
    them for good. Waiting rows are never purged."""
    settings.OUTBOX_PARKED_RETENTION_SECONDS = 3600
    _, recent, waiting = _old_recent_and_other("parked_at")
    expired_rows_purge()
    kept = {uuid.UUID(recent), uuid.UUID(waiting)}
    assert _outbox_event_ids() == kept
    settings.OUTBOX_PARKED_RETENTION_SECONDS = 0
    OutboxEvent.objects.filter(event_id=recent).update(
        parked_at=timezone.now() - timedelta(days=999)
    )
    expired_rows_purge()
    assert _outbox_event_ids() == kept


@pytest.mark.django_db
def test_the_purge_deletes_in_batches_until_none_is_left(monkeypatch):
    monkeypatch.setattr(purge, "PURGE_BATCH", 2)
    with transaction.atomic():
        for _ in range(5):
            outbox_event_add(order=OrderFactory(), operation="created")
    OutboxEvent.objects.update(published_at=timezone.now() - timedelta(days=2))
    assert outbox_purge() == 5
    assert not OutboxEvent.objects.exists()


@transactional
def test_the_relay_parks_an_event_over_the_limit_without_sending_it(
    unique_topics, topic_reader, monkeypatch, producer
):
    """An event accepted under a larger limit (`event_limit`): parked unsent, naming the
    limit; the rest goes out."""
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    big = _unpublished_event(payload={"note": "x" * 5000})
    small = _unpublished_event(payload={"amount": 1})
    monkeypatch.setattr(messages, "MAX_EVENT_BYTES", 2000)
    assert outbox_relay_once(producer=producer) == (1, 0)
    parked = OutboxEvent.objects.get(event_id=big.event_id)
    assert parked.parked_at is not None and parked.published_at is None
    assert "EventOverLimit" in parked.last_error and "limit of 2000" in parked.last_error
    records = reader.read_until(lambda records: records)
    assert [json.loads(r.value)["event_id"] for r in records] == [small.event_id]


@transactional
def test_the_relay_publishes_the_bytes_the_request_checked(unique_topics, topic_reader, producer):
    """Not a re-encoding of a stored document: jsonb would print 1e300 as 301 digits,
    turning a small event into one past the broker's limit, and reorder its keys."""
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    payload = {"zeta": 1, "alpha": [1e300] * 50}
    with transaction.atomic():
        pending = outbox_event_add(order=OrderFactory(payload=payload), operation="created")
    assert outbox_relay_once(producer=producer) == (1, 0)
    records = reader.read_until(lambda records: records)
    assert records[0].value == pending.row.value.encode()
    assert len(records[0].value) < 2000


@transactional
def test_the_relay_parks_an_event_the_broker_refuses_for_good(unique_topics, topic_reader, caplog):
    """A record too large for the producer (MessageSizeTooLargeError, not retriable) is
    parked with an ERROR line instead of being retried forever; the rest goes out. The
    lines name the order and event (and where the published one went: LOG_FORMAT=json)."""
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    big = _unpublished_event(payload={"note": "x" * 5000})
    small = _unpublished_event(payload={"amount": 1})
    producer = make_producer(client_id="api-tests-small", max_request_size=2000)
    try:
        with caplog.at_level(logging.DEBUG, logger="orders_api.relay.publish"):
            assert outbox_relay_once(producer=producer) == (1, 0)
        # Even when due again, a parked row is not tried again.
        OutboxEvent.objects.update(next_attempt_at=timezone.now())
        assert outbox_relay_once(producer=producer) == (0, 0)
    finally:
        producer.close(timeout=1)
    parked = OutboxEvent.objects.get(event_id=big.event_id)
    assert parked.parked_at is not None
    assert parked.published_at is None
    assert "MessageSizeTooLarge" in parked.last_error
    assert OutboxEvent.objects.get(event_id=small.event_id).published_at is not None
    by_event = {r.event_id: r for r in caplog.records if hasattr(r, "event_id")}
    parked_line, published_line = by_event[big.event_id], by_event[small.event_id]
    assert parked_line.levelno == logging.ERROR and "parked" in parked_line.getMessage()
    assert big.order_id in parked_line.getMessage() and parked_line.order_id == big.order_id
    records = reader.read_until(lambda records: records)
    assert [json.loads(r.value)["event_id"] for r in records] == [small.event_id]
    assert published_line.levelno == logging.DEBUG and published_line.order_id == small.order_id
    assert (published_line.topic, published_line.partition, published_line.offset) == (
        records[0].topic,
        records[0].partition,
        records[0].offset,
    )


def _committed_changes(count: int) -> list[OutboxEvent]:
    """An order and `count` - 1 updates of it, committed; their outbox rows by version."""
    user = uuid.uuid4()
    write = order_upsert(user_id=user, order_id=None, payload={"amount": 1})
    for amount in range(2, count + 1):
        order_upsert(user_id=user, order_id=write.order_id, payload={"amount": amount})
    return list(OutboxEvent.objects.filter(order_id=write.order_id).order_by("version"))


@transactional
def test_a_relay_never_sends_an_orders_event_before_an_older_one_another_relay_holds(
    unique_topics, topic_reader, producer
):
    """Relay B finds v1 locked by relay A: it must not send v2 past it (the partition
    would carry v2 before v1). Once A is done, v2 goes out after v1."""
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    v1, v2 = _committed_changes(2)
    with another_relay_holding(id=v1.id):
        assert outbox_relay_once(producer=producer) == (0, 0)
    assert outbox_relay_once(producer=producer) == (1, 0)  # v1
    assert outbox_relay_once(producer=producer) == (1, 0)  # then v2
    records = reader.read_until(lambda records: len(records) >= 2)
    assert [OrderEvent.from_bytes(r.value).version for r in records] == [1, 2]


@transactional
def test_an_event_waiting_for_its_retry_holds_back_the_newer_events_of_its_order(producer):
    v1, v2, v3 = _committed_changes(3)
    OutboxEvent.objects.filter(id=v1.id).update(
        attempts=1, next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    assert outbox_relay_once(producer=producer) == (0, 0)
    assert not OutboxEvent.objects.filter(published_at__isnull=False).exists()


@transactional
def test_a_parked_event_does_not_hold_back_the_newer_events_of_its_order(producer):
    """A parked event never goes out by itself; the order's newer events (which carry its
    full state) do."""
    v1, v2 = _committed_changes(2)
    OutboxEvent.objects.filter(id=v1.id).update(parked_at=timezone.now())
    assert outbox_relay_once(producer=producer) == (1, 0)
    assert OutboxEvent.objects.get(id=v2.id).published_at is not None
