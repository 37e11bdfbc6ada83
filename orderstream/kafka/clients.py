"""Kafka client setup shared by the API and the worker.

Every client is built here from settings, so bootstrap servers, timeouts and topic
layout are configured in one place. Settings are read when a client is built, never
at import time.
"""

from __future__ import annotations

import logging

from django.conf import settings
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError
from kafka.record.default_records import DefaultRecordBatchBuilder

from orderstream.kafka.join_fix import keep_finished_joins

logger = logging.getLogger(__name__)
keep_finished_joins()  # every consumer of the project is built here


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


# An idle poll waits this much longer than the broker holds an empty fetch.
FETCH_MARGIN_MS = 10


def one_fetch_timeout_ms() -> int:
    """A poll timeout that covers one fetch: an idle loop polls this long after its pause.

    The broker answers an empty fetch after fetch_max_wait_ms (the embedded development
    broker never sooner), so a shorter poll would return before the answer and leave the
    records it brings to the next turn.
    """
    return settings.KAFKA_FETCH_MAX_WAIT_MS + FETCH_MARGIN_MS


def topic_layout() -> dict[str, int]:
    """Topic name -> partition count, as the project expects them to exist."""
    return {
        settings.ORDERS_EVENTS_TOPIC: settings.ORDERS_EVENTS_PARTITIONS,
        settings.ORDERS_ACK_TOPIC: settings.ORDERS_EVENTS_PARTITIONS,
        settings.ORDERS_DLQ_TOPIC: 1,
    }


def ensure_topics(layout: dict[str, int] | None = None) -> list[str]:
    """Create the project's topics where missing; return the names created."""
    layout = layout or topic_layout()
    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BROKERS, client_id="orderstream-admin"
    )
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, partitions, 1)
            for name, partitions in layout.items()
            if name not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them between our list and create
        created = [topic.name for topic in missing]
        if created:
            logger.info("created topics %s", ", ".join(created))
        return created
    finally:
        admin.close()


def topic_max_message_bytes(
    topic: str, *, timeout_ms: int, brokers: list[str] | None = None
) -> int | None:
    """The topic's `max.message.bytes` (the largest record batch it takes, its own setting
    or the broker's default), or None when the broker does not say (the embedded Tansu, of a
    topic created without it).
    Raises KafkaError when no broker (of `brokers`, default KAFKA_BROKERS) answers within
    `timeout_ms`, and UnknownTopicOrPartitionError for a topic the broker does not know
    (yet): kafka-python answers that as it answers Tansu, with no settings."""
    admin = KafkaAdminClient(
        bootstrap_servers=brokers or settings.KAFKA_BROKERS,
        client_id="orderstream-admin",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
    )
    try:
        # Every setting of the topic: Tansu drops the connection when asked for one by name.
        wanted = ConfigResource(ConfigResourceType.TOPIC, topic)
        described = admin.describe_configs([wanted], config_filter="all")
        entry = described.get("topic", {}).get(topic, {}).get("max.message.bytes") or {}
        if not entry and topic not in admin.list_topics():
            raise UnknownTopicOrPartitionError(f"no topic {topic}")
    finally:
        admin.close()
    value = entry.get("value")
    return int(value) if value else None


def record_value_room(max_message_bytes: int, *, key_bytes: int) -> int:
    """The largest value a record with a key of `key_bytes` may have for its batch (the
    record alone, uncompressed) to stay within `max_message_bytes`: kafka-python's upper
    bound of the batch's size, with the value's length prefix at its widest (5 bytes, not
    the 1 of an empty value)."""
    overhead = DefaultRecordBatchBuilder.estimate_size_in_bytes(b"k" * key_bytes, b"", []) + 4
    return max(max_message_bytes - overhead, 0)
