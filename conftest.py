"""Fixtures shared by every app's tests.

The whole session runs against one embedded Tansu broker on a free loopback port,
started here, so tests never touch the broker of a running `make run` stack. Set
TEST_KAFKA_BROKERS to use an existing broker instead.
"""

import os
import uuid

import pytest
from django.conf import settings

from orderstream.devbroker import TansuBroker
from orderstream.kafka import ensure_topics


@pytest.fixture(scope="session", autouse=True)
def kafka_broker():
    """The session's broker, with the project's (test-named) topics created."""
    external = os.environ.get("TEST_KAFKA_BROKERS")
    broker = None
    if external:
        settings.KAFKA_BROKERS = external.split(",")
    else:
        broker = TansuBroker().start()
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
