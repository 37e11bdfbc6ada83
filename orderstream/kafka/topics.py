"""The project's topics: their layout, their creation, and the size of record they take.

Settings are read when a function is called, never at import time.
"""

from __future__ import annotations

import logging

from django.conf import settings

from orderstream.kafka.clients import make_admin
from orderstream.kafka.driver import record_batch_overhead

logger = logging.getLogger(__name__)


def topic_layout() -> dict[str, int]:
    """Topic name -> partition count, as the project expects them to exist."""
    return {
        settings.ORDERS_EVENTS_TOPIC: settings.ORDERS_EVENTS_PARTITIONS,
        settings.ORDERS_ACK_TOPIC: settings.ORDERS_EVENTS_PARTITIONS,
        settings.ORDERS_DLQ_TOPIC: 1,
    }


# Copies of each partition on a cluster of at least this many brokers; a write (acks=all)
# then needs MIN_IN_SYNC of them, so one broker may be down and none is lost with it.
REPLICAS = 3
MIN_IN_SYNC = 2


def replication(live_brokers: int) -> tuple[int, dict[str, str]]:
    """The replication factor and topic settings of a topic made on `live_brokers`:
    min(3, brokers) copies, `min.insync.replicas=2` with three (fewer: the broker's)."""
    factor = min(REPLICAS, live_brokers)
    return factor, {"min.insync.replicas": str(MIN_IN_SYNC)} if factor == REPLICAS else {}


def ensure_topics(layout: dict[str, int] | None = None) -> list[str]:
    """Create the project's topics where missing, replicated as the cluster's size allows
    (`replication`: the brokers it lists now, asked rather than configured, so the same
    call suits a one-node development broker and a production cluster); return the
    names created."""
    layout = layout or topic_layout()
    admin = make_admin()
    try:
        existing = admin.topic_names()
        missing = {name: n for name, n in layout.items() if name not in existing}
        if missing:
            factor, configs = replication(admin.broker_count())
            # created meanwhile by another process: no error
            admin.create_topics(missing, replication_factor=factor, configs=configs)
            logger.info("created topics %s (%d replicas)", ", ".join(missing), factor)
        return list(missing)
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
    admin = make_admin(brokers=brokers, timeout_ms=timeout_ms)
    try:
        return admin.max_message_bytes(topic)
    finally:
        admin.close()


def record_value_room(max_message_bytes: int, *, key_bytes: int) -> int:
    """The largest value a record with a key of `key_bytes` may have for its batch (the
    record alone, uncompressed) to stay within `max_message_bytes`: kafka-python's upper
    bound of the batch's size, with the value's length prefix at its widest (5 bytes, not
    the 1 of an empty value)."""
    overhead = record_batch_overhead(key_bytes=key_bytes) + 4
    return max(max_message_bytes - overhead, 0)
