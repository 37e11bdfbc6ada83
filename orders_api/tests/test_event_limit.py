"""The effective event size limit: MAX_EVENT_BYTES or less, when the events topic's
`max.message.bytes` leaves less room; the API refuses (413) and the relay parks an event
over it, both by that one limit.

The tests against a topic's own limit create a topic with a small `max.message.bytes`
and need a broker that reports it: Apache Kafka does, and so does the embedded Tansu for a
setting the topic was created with (it enforces none: the test that the broker takes an
event of exactly the limit proves something on Apache Kafka only). They are skipped on a
broker that does not say.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.utils import timezone
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from orders_api import event_limit
from orders_api.event_limit import event_size_limit, event_size_limit_load
from orders_api.models import OutboxEvent
from orders_api.relay.loop import OutboxRelay, relay_producer
from orderstream import messages
from orderstream.kafka import topic_max_message_bytes
from testkit.helpers import eventually
from testkit.running import running

from .support import USER, assert_error

TOPIC_LIMIT = 200_000  # the small topic's max.message.bytes
# What a batch of one record keyed by an order id leaves for its value, by kafka-python's
# upper bound of the overhead: Apache Kafka takes up to 199 892 bytes (17 more).
ROOM = 199_875

transactional = pytest.mark.django_db(transaction=True)


def test_without_a_broker_the_limit_is_max_event_bytes_and_asking_never_waits(settings):
    """No broker answers: MAX_EVENT_BYTES, at once (the lookup runs in its own thread)."""
    settings.OUTBOX_PUBLISH_TIMEOUT = 5
    topic = f"test.no.broker.{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    assert event_size_limit(topic=topic) == messages.MAX_EVENT_BYTES
    assert event_size_limit(topic=topic) == messages.MAX_EVENT_BYTES
    assert time.monotonic() - started < 1  # waiting for the broker would take 5 s
    assert event_size_limit_load(topic=topic) == messages.MAX_EVENT_BYTES


def test_the_smaller_of_max_event_bytes_and_the_topics_room_wins(monkeypatch, settings):
    topic = f"test.limits.{uuid.uuid4().hex[:8]}"
    key = (tuple(settings.KAFKA_BROKERS), topic)
    monkeypatch.setitem(event_limit._lookups, key, event_limit._Lookup(ROOM, answered=True))
    assert event_size_limit(topic=topic) == ROOM
    monkeypatch.setattr(messages, "MAX_EVENT_BYTES", 1000)
    assert event_size_limit(topic=topic) == 1000


def test_a_topics_max_message_bytes_leaves_room_for_the_records_overhead(monkeypatch):
    """What the broker said, as the relay reads it at start (the broker stood in for:
    the real one is in the tests below)."""
    asked = []

    def answered(topic, *, timeout_ms, brokers):
        asked.append(topic)
        return TOPIC_LIMIT

    monkeypatch.setattr(event_limit, "topic_max_message_bytes", answered)
    topic = f"test.limits.{uuid.uuid4().hex[:8]}"
    assert event_size_limit_load(topic=topic) == ROOM
    assert event_size_limit_load(topic=topic) == event_size_limit(topic=topic) == ROOM
    assert asked == [topic]  # read once


@pytest.mark.broker
def test_a_topic_the_broker_allows_more_leaves_max_event_bytes(unique_topics):
    """Tansu says nothing of the topic; Apache Kafka says its default (1048588): both
    leave MAX_EVENT_BYTES."""
    assert event_size_limit_load() == messages.MAX_EVENT_BYTES


@pytest.fixture
def small_topic(unique_topics, kafka_bootstrap):
    """The test's events topic with max.message.bytes = TOPIC_LIMIT (skipped on a broker
    that does not report it)."""
    topic = unique_topics.ORDERS_EVENTS_TOPIC + ".small"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": str(TOPIC_LIMIT)})]
        )
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
    unique_topics.ORDERS_EVENTS_TOPIC = topic

    def reported() -> tuple | None:
        """(what the broker says,) once it knows the topic."""
        try:
            return (topic_max_message_bytes(topic, timeout_ms=5000),)
        except UnknownTopicOrPartitionError:
            return None

    (said,) = eventually(reported, message="the small topic known to the broker")
    if said is None:
        pytest.skip("the broker does not report the topic's max.message.bytes")
    assert said == TOPIC_LIMIT
    return topic


def event_value(size: int) -> str:
    """A JSON text of `size` bytes (the relay publishes an outbox row's value as it is)."""
    head = '{"note": "'
    return head + "x" * (size - len(head) - 2) + '"}'


def outbox_row(topic: str, size: int) -> OutboxEvent:
    now = timezone.now()
    return OutboxEvent.objects.create(
        event_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        version=1,
        topic=topic,
        value=event_value(size),
        created_at=now,
        next_attempt_at=now,
    )


@pytest.mark.django_db
def test_the_api_refuses_an_order_whose_event_exceeds_the_topics_limit(api, small_topic):
    """The order's event would fit MAX_EVENT_BYTES, not the topic: 413 naming payload and
    the topic's limit, nothing written; a smaller one is accepted."""
    eventually(lambda: event_size_limit() == ROOM, message="the topic's limit read")
    body = {"user_id": USER, "payload": {"note": "x" * 250_000}}
    assert_error(api.post("/orders?wait=false", body), 413, "payload", f"limit of {ROOM}")
    assert not OutboxEvent.objects.exists()
    body = {"user_id": USER, "payload": {"note": "x" * 150_000}}
    assert api.post("/orders?wait=false", body).status_code == 202


class SendsSeen:
    """A real producer that notes the size of every value it is given."""

    def __init__(self, producer):
        self._producer = producer
        self.sizes: list[int] = []

    def send(self, topic, value=None, **kwargs):
        self.sizes.append(len(value))
        return self._producer.send(topic, value=value, **kwargs)

    def __getattr__(self, name):
        return getattr(self._producer, name)


@transactional
def test_the_relay_parks_an_event_over_the_topics_limit_without_sending_it(small_topic):
    """An event accepted before the topic's limit was lowered: the relay (which reads the
    limit when it builds its producer) parks it unsent, naming the limit. An event of
    exactly the limit is taken by the broker: the room left for the record's overhead is
    enough."""
    over, at_limit = outbox_row(small_topic, ROOM + 1000), outbox_row(small_topic, ROOM)
    producers: list[SendsSeen] = []

    def producer_factory():
        producers.append(SendsSeen(relay_producer()))
        return producers[-1]

    relay = OutboxRelay(producer_factory=producer_factory)
    done = OutboxEvent.objects.filter(published_at__isnull=False) | OutboxEvent.objects.filter(
        parked_at__isnull=False
    )
    with running(relay, ready=lambda: done.count() == 2, what="relay"):
        pass
    over.refresh_from_db()
    at_limit.refresh_from_db()
    assert over.parked_at is not None and over.published_at is None
    assert f"limit of {ROOM}" in over.last_error
    assert at_limit.published_at is not None
    assert [size for producer in producers for size in producer.sizes] == [ROOM]
