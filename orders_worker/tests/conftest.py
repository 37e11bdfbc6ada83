"""Fixtures of the worker tests: a producer for events, readers of ACKs and dead letters,
a proxy that makes Redis or the worker's PostgreSQL unavailable on demand, and failures
no check foresees, for one order."""

from __future__ import annotations

import copy
from urllib.parse import urlparse

import pytest
from django.conf import settings

from orders_worker import results, services
from orderstream.kafka import make_producer
from orderstream.messages import OrderEvent
from testkit.outages import PausableProxy, database_outage
from testkit.topics import TopicReader


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


@pytest.fixture
def redis_outage(settings):
    """Redis reached through a proxy the test can cut (`.pause()`) and restore."""
    url = urlparse(settings.REDIS_URL)
    proxy = PausableProxy((url.hostname, url.port or 6379)).start()
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = f"redis://127.0.0.1:{proxy.port}{url.path or '/0'}"
    settings.CACHES = caches
    yield proxy
    proxy.pause()


@pytest.fixture
def worker_db_outage():
    """The `worker` database of threads that connect from now on (the `running_worker`
    thread: request this fixture before it) reached through a proxy the test can cut
    (`.pause()`) and restore (see `testkit.outages.database_outage`)."""
    with database_outage("worker") as proxy:
        yield proxy


@pytest.fixture
def rules_fail_for(monkeypatch):
    """`rules_fail_for(order_id)`: deciding an event of that order raises
    `RuntimeError("boom")`, an error no check foresaw; other orders are decided as usual."""

    def fail_for(order_id: str) -> None:
        decide = services.order_event_decide

        def decide_failing(*, stored, event, processed_at):
            if event.order_id == order_id:
                raise RuntimeError("boom")
            return decide(stored=stored, event=event, processed_at=processed_at)

        monkeypatch.setattr(services, "order_event_decide", decide_failing)

    return fail_for


@pytest.fixture
def redis_result_fails_for(monkeypatch):
    """`redis_result_fails_for(order_id)`: building that order's Redis result raises
    `OverflowError` (after the database step succeeded); other orders are written."""

    def fail_for(order_id: str) -> None:
        result_of = results.order_result_of

        def result_of_failing(state):
            if state.order_id == order_id:
                raise OverflowError("date value out of range")
            return result_of(state)

        monkeypatch.setattr(results, "order_result_of", result_of_failing)

    return fail_for
