"""kafka-python 3.0.12's group join: an answer that comes while the application is outside
poll() (the client's network thread finishes the round trip) is taken at the next poll,
not thrown away (`JoinKeepingCoordinator`, docs/decisions/kafka-python-join-fix.md). The
other race of the join, a metadata snapshot taken before `subscribe`: test_kafka_subscribe.py.

The tests drive plain consumers step by step; they watch the client's own join task
(a read of a private attribute, here only) to know when its answer has come.
"""

from __future__ import annotations

import threading
import time
import uuid

import kafka
import kafka.consumer.group as consumer_group
import pytest

from orderstream.kafka import ensure_topics, make_consumer
from orderstream.kafka.driver import (
    FixedConsumerCoordinator,
    JoinKeepingCoordinator,
    install_fixed_classes,
)
from testkit.drivers import kafka_python_only
from testkit.helpers import eventually
from testkit.rebalances import Rebalances, a_member_and_a_newcomer, joined, names, subscribed

pytestmark = kafka_python_only("its group coordinator's join fix")


def generations(*consumers) -> list[int]:
    """The group generation each consumer is in (set when its JoinGroup is answered)."""
    return [consumer.group_metadata().generation_id for consumer in consumers]


def join_answer_came(consumer) -> bool:
    """The consumer's join round trip (JoinGroup and SyncGroup) has finished."""
    task = consumer._coordinator._join_task  # the client's own task: read, never written
    return task is not None and task.is_done


def test_every_consumer_the_project_builds_has_the_join_keeping_coordinator():
    assert consumer_group.ConsumerCoordinator is FixedConsumerCoordinator
    assert issubclass(FixedConsumerCoordinator, JoinKeepingCoordinator)


def test_another_kafka_python_version_stops_the_fix(monkeypatch):
    monkeypatch.setattr(kafka, "__version__", "3.1.0")
    with pytest.raises(RuntimeError, match="check whether the new version still needs it"):
        install_fixed_classes()


@pytest.mark.broker
def test_a_join_answer_that_came_outside_poll_is_taken_at_the_next_poll():
    """The member changes its subscription; its poll (timeout 0) starts the join and
    returns; the answer comes while it is outside poll. Unfixed, the next polls never
    took it (kafka-python joins only while `need_rejoin()`, and the finished round trip
    had already made that False): no assignment, no heartbeat, until expelled."""
    first, second = names("join"), names("join")
    ensure_topics({first: 2, second: 2})
    rebalances = Rebalances()
    consumer = make_consumer(group_id=names("join-group"))
    try:
        subscribed(consumer, first, rebalances)
        joined(consumer, rebalances)
        consumer.subscribe([first, second], listener=rebalances)
        consumer.topics()  # the member knows both topics' partitions before it joins
        consumer.poll(timeout_ms=0)
        assert rebalances.revoked == 1, "the poll did not start the join"
        eventually(lambda: join_answer_came(consumer), timeout=20, message="no join answer")
        answered = generations(consumer)
        eventually(
            lambda: consumer.poll(timeout_ms=100) is not None and rebalances.assigned == 2,
            timeout=8,
            message="the answer that came outside poll was not taken",
        )
        assert rebalances.held == {(first, 0), (first, 1), (second, 0), (second, 1)}
        assert rebalances.revoked == 1
        assert generations(consumer) == answered, "the member joined again"
    finally:
        consumer.close(autocommit=False)


@pytest.mark.broker
def test_members_whose_join_answers_came_outside_poll_take_them_without_joining_again():
    """A second member joins a group of one. Both go on with polls of timeout 0 until the
    running member has started its rejoin: both are outside poll when the answers come.
    Unfixed, the next poll of each sent a new JoinGroup instead (the leader's made the
    group rebalance once more)."""
    with a_member_and_a_newcomer("join") as (topic, running, first, joining, second):
        eventually(  # the new member's JoinGroup waits for the running member's
            lambda: (
                joining.poll(timeout_ms=0) is not None
                and running.poll(timeout_ms=0) is not None
                and first.revoked
            ),
            timeout=20,
            message="the running member did not start its rejoin",
        )
        eventually(
            lambda: join_answer_came(running) and join_answer_came(joining),
            timeout=20,
            message="no join answers",
        )
        answered = generations(running, joining)  # as the answers set them
        eventually(
            lambda: (
                running.poll(timeout_ms=50) is not None
                and joining.poll(timeout_ms=50) is not None
                and first.assigned == 2
                and second.assigned == 1
            ),
            timeout=20,
            message="the answers were not taken",
        )
        assert sorted(first.held | second.held) == [(topic, 0), (topic, 1)]
        assert first.held and second.held
        assert (first.revoked, second.revoked) == (1, 0)
        assert generations(running, joining) == answered, "a member joined again"


@pytest.mark.broker
def test_members_that_look_in_between_naps_all_get_partitions_when_one_joins(settings):
    """Three plain consumers of one group that poll 20 ms, then nap 100 ms (most join
    answers arrive during a nap). Unfixed, on Tansu the group never settled: every answer
    was thrown away and the join sent again."""
    topic = f"test.join.{uuid.uuid4().hex[:8]}"
    ensure_topics({topic: 6})
    group = f"test-join-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    held: dict[int, set[int]] = {}

    def member(n: int) -> None:
        consumer = make_consumer(topic, group_id=group, fetch_max_wait_ms=10)
        try:
            while not stop.is_set():
                consumer.poll(timeout_ms=20)
                held[n] = {tp.partition for tp in consumer.assignment()}
                time.sleep(0.1)
        finally:
            consumer.close(autocommit=False)

    threads = [threading.Thread(target=member, args=(n,), daemon=True) for n in range(3)]
    try:
        for thread in threads[:2]:
            thread.start()
        eventually(
            lambda: set().union(*held.values()) == set(range(6)), timeout=30, message="two hold all"
        )
        time.sleep(1)
        threads[2].start()
        eventually(
            lambda: (
                len(held) == 3
                and all(held.values())
                and sorted(p for ps in held.values() for p in ps) == list(range(6))
            ),
            timeout=20,
            message="the three members share every partition once",
        )
    finally:
        stop.set()
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join(15)
