"""Reading a topic in a test: the one helper of every suite."""

from __future__ import annotations

import time

from orderstream.kafka import TopicPartition, make_consumer
from orderstream.messages import OrderAck
from testkit.helpers import eventually


class TopicReader:
    """Reads one topic without a consumer group, collecting its records: from its
    beginning, or (`from_start=False`) only what is published after the reader started."""

    def __init__(self, topic: str, *, from_start: bool = True):
        self.topic = topic
        self.records: list = []
        self._consumer = make_consumer(group_id=None, client_id="tests-topic-reader")
        partitions = eventually(
            lambda: self._consumer.partitions_for_topic(topic),
            message=f"the partitions of {topic}",
        )
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        if from_start:
            self._consumer.seek_to_beginning(*assigned)
        else:
            self._consumer.seek_to_end(*assigned)
        for partition in assigned:
            self._consumer.position(partition)  # fixed now, not at the first poll

    def poll(self) -> list:
        """One poll (at most 100 ms): the records it read, also kept in `records`."""
        new = [record for batch in self._consumer.poll(timeout_ms=100).values() for record in batch]
        self.records.extend(new)
        return new

    def read_until(self, done, timeout: float = 20.0) -> list:
        """Poll until `done(records)` is true (the test fails after `timeout` seconds);
        the records read so far."""

        def check():
            self.poll()
            return done(self.records)

        eventually(check, timeout=timeout, interval=0, message=f"records on {self.topic}")
        return self.records

    def read_for(self, seconds: float) -> list:
        """Collect whatever arrives during `seconds` (to show that nothing does)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()
        return self.records

    def read_to_end(self, timeout: float = 30.0) -> list:
        """Poll until every partition is read up to its end as it is now; the records."""
        assigned = self._consumer.assignment()
        ends = self._consumer.end_offsets(assigned)

        def at_end() -> bool:
            self.poll()
            return all(self._consumer.position(tp) >= end for tp, end in ends.items())

        eventually(at_end, timeout=timeout, interval=0, message=f"the end of {self.topic}")
        return self.records

    def acks(self) -> list[OrderAck]:
        return [OrderAck.from_bytes(r.value) for r in self.records]

    def statuses_by_event(self) -> dict[str, list[str]]:
        """The ACK statuses read so far, per event_id, in arrival order."""
        seen: dict[str, list[str]] = {}
        for ack in self.acks():
            seen.setdefault(ack.event_id, []).append(ack.status)
        return seen

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def committed_offsets(group: str, topic: str) -> int:
    """The sum of the offsets `group` has committed on the partitions of `topic`."""
    consumer = make_consumer(group_id=group)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in partitions)
    finally:
        consumer.close(autocommit=False)
