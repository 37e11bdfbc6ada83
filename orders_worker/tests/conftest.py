"""Fixtures of the worker tests: a producer for events and a reader of ACKs/dead letters."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from kafka import KafkaConsumer

from orderstream.kafka import make_consumer, make_producer
from orderstream.messages import OrderAck, OrderEvent


class TopicReader:
    """Reads one topic from the beginning, without a group, collecting records."""

    def __init__(self, topic: str):
        self.topic = topic
        self.records = []
        self._consumer: KafkaConsumer = make_consumer(topic, group_id=None)

    def read_until(self, done, timeout: float = 20.0) -> list:
        """Poll until `done(records)` is true; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done(self.records):
            if time.monotonic() > deadline:
                pytest.fail(f"{self.topic}: condition not met in {timeout}s, got {self.records}")
            for recs in self._consumer.poll(timeout_ms=200).values():
                self.records.extend(recs)
        return self.records

    def acks(self) -> list[OrderAck]:
        return [OrderAck.from_bytes(r.value) for r in self.records]

    def close(self) -> None:
        self._consumer.close(autocommit=False)


@pytest.fixture
def send_events(unique_topics):
    """`send_events(*events_or_raw_bytes)`: produce to the test's event topic and flush."""
    producer = make_producer()

    def send(*messages, key: bytes | None = None) -> None:
        for message in messages:
            if isinstance(message, OrderEvent):
                producer.send(settings.ORDERS_EVENTS_TOPIC, message.to_bytes(), key=message.key)
            else:
                producer.send(settings.ORDERS_EVENTS_TOPIC, message, key=key)
        producer.flush(timeout=10)

    yield send
    producer.close(timeout=5)


@pytest.fixture
def ack_reader(unique_topics):
    reader = TopicReader(settings.ORDERS_ACK_TOPIC)
    yield reader
    reader.close()


@pytest.fixture
def dlq_reader(unique_topics):
    reader = TopicReader(settings.ORDERS_DLQ_TOPIC)
    yield reader
    reader.close()
