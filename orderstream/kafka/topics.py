"""The project's topics: their layout, their creation, and the size of record they take.

Settings are read when a function is called, never at import time.
"""

from __future__ import annotations

import logging

from django.conf import settings

from orderstream.kafka.driver import (
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewTopic,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    record_batch_overhead,
)

logger = logging.getLogger(__name__)


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
    overhead = record_batch_overhead(key_bytes=key_bytes) + 4
    return max(max_message_bytes - overhead, 0)
