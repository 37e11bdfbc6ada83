"""Plain group members for the tests of the group join: a listener that counts a member's
rebalance callbacks, and the steps that subscribe and join it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from orderstream.kafka import ConsumerRebalanceListener, ensure_topics, make_consumer
from orderstream.kafka.clients import subscribe_once_known
from testkit.helpers import eventually


class Rebalances(ConsumerRebalanceListener):
    """Counts the rebalance callbacks of one member (revocations of partitions it held: a
    first join revokes nothing; and joins started), and what it was assigned last."""

    def __init__(self) -> None:
        self.joins = 0
        self.revoked = 0
        self.assigned = 0
        self.held: set[tuple[str, int]] = set()

    def on_partitions_revoked(self, revoked) -> None:
        self.joins += 1
        self.revoked += bool(revoked)

    def on_partitions_assigned(self, assigned) -> None:
        self.assigned += 1
        self.held = {(tp.topic, tp.partition) for tp in assigned}


def names(kind: str) -> str:
    """A topic or group name of its own for one test."""
    return f"test.{kind}.{uuid.uuid4().hex[:8]}"


def subscribed(consumer, topic: str, rebalances: Rebalances) -> None:
    """`subscribe_once_known`, once the broker has the topic a test created."""
    eventually(lambda: subscribe_once_known(consumer, topic, rebalances), timeout=20)


def joined(consumer, rebalances: Rebalances, assignments: int = 1) -> None:
    """Poll until the member has had `assignments` assignments."""
    eventually(
        lambda: consumer.poll(timeout_ms=100) is not None and rebalances.assigned >= assignments,
        timeout=30,
        message="the member was assigned its partitions",
    )


class Newcomer(NamedTuple):
    """A member that holds the partitions of `topic` (`running`, its callbacks `first`) and
    one that has subscribed to it but not polled yet (`joining`, its callbacks `second`)."""

    topic: str
    running: object
    first: Rebalances
    joining: object
    second: Rebalances


@contextmanager
def a_member_and_a_newcomer(kind: str, partitions: int = 2) -> Iterator[Newcomer]:
    """Two plain consumers of a group of their own, as `Newcomer` describes; closed on exit
    (without commits)."""
    topic, group = names(kind), names(f"{kind}-group")
    ensure_topics({topic: partitions})
    first, second = Rebalances(), Rebalances()
    running = make_consumer(group_id=group)
    joining = make_consumer(group_id=group)
    try:
        subscribed(running, topic, first)
        joined(running, first)
        subscribed(joining, topic, second)
        yield Newcomer(topic, running, first, joining, second)
    finally:
        joining.close(autocommit=False)
        running.close(autocommit=False)
