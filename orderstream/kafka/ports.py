"""The ports: the whole surface of a Kafka client the project uses, whichever the driver.

The names and shapes are kafka-python's (the project's first client), so its consumer and
producer are ports as they are; `drivers/confluent/` presents librdkafka's behind the
same. Offsets are ints (or kafka-python's OffsetAndMetadata), partitions are
`TopicPartition(topic, partition)` named tuples, records have the attributes `topic,
partition, offset, key, value, headers`; errors are the classes `orderstream.kafka` exports
(KafkaError and its kinds). Clients are built by `clients.make_consumer`, `make_producer`
and `make_admin`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol


class RebalanceListener(Protocol):
    """Told of each change of a group member's partitions (sets of TopicPartition), on the
    thread that polls."""

    def on_partitions_revoked(self, revoked) -> None: ...

    def on_partitions_assigned(self, assigned) -> None: ...

    def on_partitions_lost(self, lost) -> None: ...


class Consumer(Protocol):
    def subscribe(self, topics: Iterable[str], listener: RebalanceListener) -> None: ...

    def topics(self) -> set[str]:
        """The cluster's topics (fresh metadata)."""

    def partitions_for_topic(self, topic: str) -> set[int] | None: ...

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict:
        """{TopicPartition: [record]}, returned as soon as some records came."""

    def commit_async(self, offsets: dict, callback: Callable[[dict, Any], None] | None = None):
        """`callback(offsets, answer)`: answer is an exception when the commit failed."""

    def commit(self, offsets: dict, timeout_ms: int | None = None) -> None: ...

    def committed(self, tp) -> int | None: ...

    def assignment(self) -> set: ...

    def assign(self, tps: Iterable) -> None: ...

    def pause(self, *tps) -> None: ...

    def resume(self, *tps) -> None: ...

    def paused(self) -> set: ...

    def seek(self, tp, offset: int) -> None: ...

    def seek_to_end(self, *tps) -> None: ...

    def seek_to_beginning(self, *tps) -> None: ...

    def position(self, tp, timeout_ms: int | None = None) -> int | None: ...

    def highwater(self, tp) -> int | None:
        """The end of `tp` as the last fetch said, None before one did."""

    def end_offsets(self, tps: Iterable) -> dict: ...

    def close(self, autocommit: bool = False) -> None: ...


class Delivery(Protocol):
    """The future of one sent record."""

    exception: Exception | None

    def succeeded(self) -> bool: ...

    def failed(self) -> bool: ...

    def get(self, timeout: float | None = None):
        """Where the record went (`.topic .partition .offset`); raises its error."""


class Producer(Protocol):
    def send(self, topic: str, value=None, key=None, headers=None, partition=None) -> Delivery:
        """Queue a record; raises KafkaError when it cannot be queued."""

    def flush(self, timeout: float | None = None) -> None:
        """Send what is queued; KafkaTimeoutError when not all was answered in time."""

    def partitions_for(self, topic: str) -> set[int]: ...

    def close(self, timeout: float | None = None) -> None: ...


class Admin(Protocol):
    def topic_names(self) -> set[str]: ...

    def broker_count(self) -> int:
        """The brokers the cluster lists now (live, unfenced)."""

    def create_topics(
        self,
        layout: dict[str, int],
        *,
        replication_factor: int = 1,
        configs: dict[str, str] | None = None,
    ) -> None:
        """Create the topics of `layout` (name -> partitions) with `replication_factor`
        copies and the topic settings `configs`; one that exists is no error."""

    def max_message_bytes(self, topic: str) -> int | None:
        """The topic's max.message.bytes, None when the broker does not say;
        UnknownTopicOrPartitionError for a topic the broker does not know."""

    def close(self) -> None: ...
