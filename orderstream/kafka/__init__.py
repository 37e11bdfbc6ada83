"""The project's one Kafka layer: client construction and topics (`clients.py`), the
generic batch loop (`batch_loop.py`) with its group membership (`group_member.py`),
assignment watch (`assignment.py`), stats (`loop_stats.py`) and counters
(`loop_metrics.py`). The apps build their clients through this package."""

from orderstream.kafka.clients import (
    ensure_topics,
    make_consumer,
    make_producer,
    one_fetch_timeout_ms,
    record_value_room,
    topic_layout,
    topic_max_message_bytes,
)

__all__ = [
    "ensure_topics",
    "make_consumer",
    "make_producer",
    "one_fetch_timeout_ms",
    "record_value_room",
    "topic_layout",
    "topic_max_message_bytes",
]
