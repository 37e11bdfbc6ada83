"""The project's one Kafka layer.

- `ports.py`: the surface of a client the project uses; `drivers/`: kafka-python's
  (`driver.py`: the only module that imports kafka-python, and every workaround for it)
  and confluent-kafka's (`drivers/confluent/`), chosen by KAFKA_CLIENT;
- `clients.py`: producers, consumers and admins built from settings; `topics.py`: the topics;
- `batch_loop.py`: the generic batch loop (poll, handle, produce, commit), with its group
  membership (`group_member.py`), assignment watch (`assignment.py`), stats
  (`loop_stats.py`) and counters (`loop_metrics.py`).

The apps import from here what they need of the client (its classes, errors and structs,
re-exported from the driver: its `__all__`) and the clients and topics; the loop's modules by name.
"""

from orderstream.kafka import driver
from orderstream.kafka.clients import (
    make_admin,
    make_consumer,
    make_producer,
    one_fetch_timeout_ms,
)
from orderstream.kafka.driver import *  # noqa: F403  (the client's names: driver.__all__)
from orderstream.kafka.topics import (
    ensure_topics,
    record_value_room,
    topic_layout,
    topic_max_message_bytes,
)

__all__ = [
    *driver.__all__,
    "ensure_topics",
    "make_admin",
    "make_consumer",
    "make_producer",
    "one_fetch_timeout_ms",
    "record_value_room",
    "topic_layout",
    "topic_max_message_bytes",
]
