"""The project's Kafka producers and consumers, built from settings.

Every client is built here, so bootstrap servers and timeouts are configured in one
place (the topics: `topics.py`). Settings are read when a client is built, never at
import time.
"""

from __future__ import annotations

from django.conf import settings

from orderstream.kafka.driver import KafkaConsumer, KafkaProducer


def make_producer(**overrides) -> KafkaProducer:
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
    return KafkaProducer(**config)


def make_consumer(*topics: str, group_id: str | None, **overrides) -> KafkaConsumer:
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
    return KafkaConsumer(*topics, **config)


def subscribe_once_known(consumer: KafkaConsumer, topic: str, listener) -> bool:
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
