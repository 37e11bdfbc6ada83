"""The project's Kafka producers, consumers and admin clients, built from settings.

Every client is built here, so bootstrap servers and timeouts are configured in one
place (the topics: `topics.py`), and of the driver KAFKA_CLIENT names (`drivers/`; the
confluent one is imported only when chosen). The options are kafka-python's names; the
confluent driver translates them. Settings are read when a client is built, never at
import time.
"""

from __future__ import annotations

import importlib

from django.conf import settings

from orderstream.kafka import ports

DRIVER_MODULES = {
    "kafka-python": "orderstream.kafka.drivers.kafka_python",
    "confluent": "orderstream.kafka.drivers.confluent",
}


def driver_module():
    """The module of the driver KAFKA_CLIENT names."""
    return importlib.import_module(DRIVER_MODULES[settings.KAFKA_CLIENT])


def uses_confluent() -> bool:
    return settings.KAFKA_CLIENT == "confluent"


def make_producer(**overrides) -> ports.Producer:
    """An idempotent producer that waits for all in-sync replicas (acks=all)."""
    config = {
        "bootstrap_servers": settings.KAFKA_BROKERS,
        "client_id": "orderstream",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 0,
        "retries": 5,
        "request_timeout_ms": 10_000,
        "max_block_ms": 5_000,
        # kafka-python's client metrics (sensors updated on every request and record) are
        # read by nothing here; in a profile under load they were ~5 % of the worker's CPU.
        "metrics_enabled": False,
    }
    config.update(overrides)
    if uses_confluent():
        return driver_module().ConfluentProducer(**config)
    return driver_module().KafkaProducer(**config)


def make_consumer(*topics: str, group_id: str | None, **overrides) -> ports.Consumer:
    """A consumer with manual commits; `group_id=None` for a group-less reader."""
    config = {
        "bootstrap_servers": settings.KAFKA_BROKERS,
        "client_id": "orderstream",
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": settings.KAFKA_MAX_POLL_INTERVAL_MS,
        "session_timeout_ms": settings.KAFKA_SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": settings.KAFKA_HEARTBEAT_INTERVAL_MS,
        "fetch_max_wait_ms": settings.KAFKA_FETCH_MAX_WAIT_MS,
        "metrics_enabled": False,  # as for the producer
    }
    config.update(overrides)
    if uses_confluent():
        return driver_module().ConfluentConsumer(*topics, **config)
    return driver_module().KafkaConsumer(*topics, **config)


def make_admin(*, brokers: list[str] | None = None, timeout_ms: int | None = None) -> ports.Admin:
    """An admin client of `brokers` (default KAFKA_BROKERS); `timeout_ms` bounds its wait
    for a broker and each request."""
    module = driver_module()
    admin = module.ConfluentAdmin if uses_confluent() else module.KafkaPythonAdmin
    return admin(bootstrap_servers=brokers or settings.KAFKA_BROKERS, timeout_ms=timeout_ms)


def subscribe_once_known(consumer: ports.Consumer, topic: str, listener) -> bool:
    """Subscribe `consumer` to `topic` with the rebalance `listener`, then bring its
    metadata up to date; False while the client knows no partition of the topic yet (a
    topic created a moment ago: the caller tries again, or closes the consumer).

    A member that joins before its client has seen the topic's partitions is assigned
    nothing, and the client notices the partitions only at its next metadata refresh,
    minutes later: so the topic comes first. And the metadata is taken after `subscribe`:
    kafka-python's group coordinator keeps a snapshot of the subscribed topics'
    partitions, rebuilt only when metadata comes; a leader assigns from it and rejoins
    when the next metadata differs from it. Metadata taken before the subscription left
    it empty, and the first refresh after the join made every new worker rejoin (on
    Apache Kafka a rebalance ~0.15 s after each start). `consumer.topics()` asks for
    metadata and waits for it.
    """
    consumer.subscribe([topic], listener=listener)
    consumer.topics()
    return bool(consumer.partitions_for_topic(topic))


# An idle poll waits this much longer than the broker holds an empty fetch.
FETCH_MARGIN_MS = 10


def one_fetch_timeout_ms() -> int:
    """A poll timeout that covers one fetch: an idle loop polls this long after its pause.

    The broker answers an empty fetch after fetch_max_wait_ms (the embedded development
    broker never sooner), so a shorter poll would return before the answer and leave the
    records it brings to the next turn.
    """
    return settings.KAFKA_FETCH_MAX_WAIT_MS + FETCH_MARGIN_MS
