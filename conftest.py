"""Fixtures shared by every app's tests.

The whole session runs against one embedded broker on a free loopback port, started here,
so tests never touch the broker of a running `make run` stack: Tansu, or Apache Kafka with
BROKER=kafka. Set TEST_KAFKA_BROKERS to use an existing broker instead.
"""

import os
import uuid

import pytest
from django.conf import settings

from orderstream.devstack.brokers import embedded_broker
from orderstream.kafka import ensure_topics
from orderstream.tests.running import running


def broker_kind() -> str:
    return os.environ.get("BROKER", "tansu")


@pytest.fixture(scope="session", autouse=True)
def kafka_broker(tmp_path_factory):
    """The session's broker, with the project's (test-named) topics created."""
    external = os.environ.get("TEST_KAFKA_BROKERS")
    broker = None
    if external:
        settings.KAFKA_BROKERS = external.split(",")
    else:
        kind = broker_kind()
        logs = tmp_path_factory.mktemp("broker")
        broker = embedded_broker(
            kind, port=None, data_dir=logs / "data", log_path=logs / f"{kind}.log"
        ).start()
        settings.KAFKA_BROKERS = [broker.bootstrap]
    ensure_topics()
    yield broker
    if broker:
        broker.stop()


@pytest.fixture
def unique_topics(settings):
    """Fresh event/ACK/dead-letter topic names and worker group for one test."""
    suffix = uuid.uuid4().hex[:8]
    settings.ORDERS_EVENTS_TOPIC = f"test.orders.events.{suffix}"
    settings.ORDERS_ACK_TOPIC = f"test.orders.ack.{suffix}"
    settings.ORDERS_DLQ_TOPIC = f"test.orders.events.dlq.{suffix}"
    settings.WORKER_GROUP = f"test-order-workers-{suffix}"
    ensure_topics()
    return settings


@pytest.fixture
def running_worker(request, settings, kafka_broker):
    """The order worker consuming in a background thread, on this test's topics.

    Uses the test databases and Redis (tests need
    `@pytest.mark.django_db(transaction=True, databases=["default", "worker"])`), waits
    until the worker holds partitions, yields the `OrderWorker`, and on teardown stops
    it, joins the thread and fails the test if the worker crashed. Combine with
    `unique_topics` for topics of the test's own (it is applied first).
    """
    from orders_worker.consumer import OrderWorker, WorkerConfig

    if "unique_topics" in request.fixturenames:
        request.getfixturevalue("unique_topics")
    worker = OrderWorker(
        WorkerConfig.from_settings(poll_timeout_ms=100, stats_interval=60, backoff_max=1.0)
    )
    with running(worker, ready=worker.partitions, what="worker"):
        yield worker


@pytest.fixture
def running_relay(request, settings, kafka_broker):
    """The outbox relay in a background thread, publishing what the test commits.

    Uses the test's API database (tests need `@pytest.mark.django_db(transaction=True)`:
    the relay sees committed rows only) and this test's topics when combined with
    `unique_topics`. Yields the `OutboxRelay` once it made its first pass; on teardown
    stops it, joins the thread and fails the test if the relay crashed.
    """
    from orders_api.relay_loop import OutboxRelay

    if "unique_topics" in request.fixturenames:
        request.getfixturevalue("unique_topics")
    relay = OutboxRelay()
    with running(relay, ready=lambda: relay.passes, what="relay"):
        yield relay
