"""A second member joining a group of one under load (issue 22: "no stop-the-world").

With the confluent driver (cooperative-sticky) the first member gives up only the partitions
that move: those it keeps are never revoked, and it goes on handling them. With kafka-python
(eager) every partition is revoked and assigned again. Measured and printed for either
driver: the time until the new member has partitions, and the longest pause of the first
member's handling of the partitions it keeps.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.conf import settings

from orderstream.kafka import ensure_topics, make_producer
from orderstream.kafka.batch_loop import BatchLoop, BatchOutcome, LoopConfig
from testkit.helpers import eventually
from testkit.loops import CountedEvents
from testkit.running import running

PARTITIONS = 4


class Timed:
    """A handler noting when it handled a record of each partition."""

    def __init__(self) -> None:
        self.handled: list[tuple[float, int]] = []

    def handle(self, records: list, retry) -> BatchOutcome:
        now = time.monotonic()
        self.handled.extend((now, record.partition) for record in records)
        return BatchOutcome()

    def reject(self, record, error: Exception, retry) -> BatchOutcome:
        return BatchOutcome()

    def periodic(self) -> None:
        pass


class WatchedLoop(BatchLoop):
    """The project's batch loop (consumer only), keeping every partition it was revoked."""

    def __init__(self, topic: str, group: str):
        config = LoopConfig(
            events_topic=topic,
            group=group,
            poll_timeout_ms=100,
            metrics=CountedEvents(),
            produces=False,
        )
        super().__init__(config, Timed())
        self.revoked: set[int] = set()

    def on_partitions_revoked(self, revoked) -> None:
        self.revoked |= {tp.partition for tp in revoked}
        super().on_partitions_revoked(revoked)


def steady_load(topic: str, stop: threading.Event) -> None:
    """About 200 records a second over every partition, until `stop`."""
    producer = make_producer(client_id="test-load")
    try:
        sent = 0
        while not stop.is_set():
            for _ in range(20):
                producer.send(topic, value=b"x", partition=sent % PARTITIONS)
                sent += 1
            producer.flush(timeout=10)
            stop.wait(0.1)
    finally:
        producer.close(timeout=5)


def longest_pause(times: list[float], since: float, until: float) -> float:
    """The longest time without a handled record between `since` and `until`."""
    marks = [since, *sorted(t for t in times if since < t < until), until]
    return max(b - a for a, b in zip(marks, marks[1:], strict=False))


@pytest.mark.broker
def test_a_member_joining_under_load_takes_partitions_without_stopping_the_others(capsys):
    suffix = uuid.uuid4().hex[:8]
    topic, group = f"test.coop.{suffix}", f"test-coop-{suffix}"
    ensure_topics({topic: PARTITIONS})
    stop = threading.Event()
    load = threading.Thread(target=steady_load, args=(topic, stop), daemon=True)
    load.start()
    first, second = WatchedLoop(topic, group), WatchedLoop(topic, group)
    try:
        with running(first, ready=first.partitions, what="first loop"):
            eventually(lambda: first.partitions() == set(range(PARTITIONS)), timeout=30)
            eventually(lambda: len(first.handler.handled) > 100, message="the first handles")
            joined_at = time.monotonic()
            with running(second, ready=second.partitions, what="second loop"):
                assigned_after = time.monotonic() - joined_at
                eventually(
                    lambda: (
                        first.partitions() | second.partitions() == set(range(PARTITIONS))
                        and not first.partitions() & second.partitions()
                    ),
                    message="the two share the partitions",
                )
                settled_at = time.monotonic()
                kept, taken = first.partitions(), second.partitions()
                eventually(  # the first goes on with what it keeps
                    lambda: any(t > settled_at + 1 and p in kept for t, p in first.handler.handled),
                    message="the first handles its kept partitions after the rebalance",
                )
                revoked = set(first.revoked)  # before the stop revokes the rest
    finally:
        stop.set()
        load.join(timeout=20)
    kept_times = [t for t, p in first.handler.handled if p in kept]
    pause = longest_pause(kept_times, joined_at, settled_at + 1)
    with capsys.disabled():
        print(
            f"\n[{settings.KAFKA_CLIENT}] new member assigned after {assigned_after:.2f} s;"
            f" first kept {sorted(kept)}, revoked {sorted(revoked)}; longest pause of"
            f" its kept partitions from the join to 1 s after: {pause:.2f} s",
            flush=True,
        )
    assert kept and taken
    if settings.KAFKA_CLIENT == "confluent":  # cooperative: what stays is never revoked
        assert revoked == taken
    else:  # eager: everything is revoked, and assigned again
        assert revoked == set(range(PARTITIONS))
