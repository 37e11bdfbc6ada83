"""Two races of kafka-python 3.0.12's group join, and what orderstream/kafka/ does about
them (docs/decisions/kafka-python-join-fix.md):

- a join answer that comes while the application is outside poll() (the client's network
  thread finishes the round trip) is taken at the next poll, not thrown away;
- a member subscribed by the project (`subscribe_once_known`) does not join with a
  metadata snapshot taken before its subscription, so the first metadata update after
  its join does not make it rejoin.

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

from orderstream.kafka import ConsumerRebalanceListener, ensure_topics, make_consumer
from orderstream.kafka.batch_loop import BatchLoop, BatchOutcome, LoopConfig
from orderstream.kafka.clients import subscribe_once_known
from orderstream.kafka.driver import JoinKeepingCoordinator, use_join_keeping_coordinator
from testkit.helpers import eventually
from testkit.running import running


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
    return f"test.{kind}.{uuid.uuid4().hex[:8]}"


def join_answer_came(consumer) -> bool:
    """The consumer's join round trip (JoinGroup and SyncGroup) has finished."""
    task = consumer._coordinator._join_task  # the client's own task: read, never written
    return task is not None and task.is_done


def subscribed(consumer, topic: str, rebalances: Rebalances) -> None:
    """`subscribe_once_known`, once the broker has the topic a test created."""
    eventually(lambda: subscribe_once_known(consumer, topic, rebalances), timeout=20)


def joined(consumer, rebalances: Rebalances, assignments: int = 1) -> None:
    eventually(
        lambda: consumer.poll(timeout_ms=100) is not None and rebalances.assigned >= assignments,
        timeout=30,
        message="the member was assigned its partitions",
    )


def test_every_consumer_the_project_builds_has_the_join_keeping_coordinator():
    assert consumer_group.ConsumerCoordinator is JoinKeepingCoordinator


def test_another_kafka_python_version_stops_the_fix(monkeypatch):
    monkeypatch.setattr(kafka, "__version__", "3.1.0")
    with pytest.raises(RuntimeError, match="check whether the new version still needs it"):
        use_join_keeping_coordinator()


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
        eventually(
            lambda: consumer.poll(timeout_ms=100) is not None and rebalances.assigned == 2,
            timeout=8,
            message="the answer that came outside poll was not taken",
        )
        assert rebalances.held == {(first, 0), (first, 1), (second, 0), (second, 1)}
        assert rebalances.revoked == 1
    finally:
        consumer.close(autocommit=False)


@pytest.mark.broker
def test_members_whose_join_answers_came_outside_poll_take_them_without_joining_again():
    """A second member joins a group of one. Both go on with polls of timeout 0 until the
    running member has started its rejoin: both are outside poll when the answers come.
    Unfixed, the next poll of each sent a new JoinGroup instead (the leader's made the
    group rebalance once more)."""
    topic, group = names("join"), names("join-group")
    ensure_topics({topic: 2})
    first, second = Rebalances(), Rebalances()
    running = make_consumer(group_id=group)
    joining = make_consumer(group_id=group)
    try:
        subscribed(running, topic, first)
        joined(running, first)
        subscribed(joining, topic, second)
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
    finally:
        joining.close(autocommit=False)
        running.close(autocommit=False)


@pytest.mark.broker
def test_a_member_subscribed_by_the_project_does_not_rejoin_at_its_first_metadata_update():
    """Unfixed, the client's metadata came before the subscription: the group coordinator's
    snapshot of the subscribed topics' partitions was empty when the member (the leader)
    assigned, and the first metadata update after the join made it rejoin (on Apache
    Kafka a rebalance ~0.15 s after every start). A long retry backoff holds back the
    update `subscribe` asks for, so the join always comes first."""
    topic = names("join")
    ensure_topics({topic: 2})
    rebalances = Rebalances()
    consumer = make_consumer(group_id=names("join-group"), retry_backoff_ms=2000)
    try:
        subscribed(consumer, topic, rebalances)
        joined(consumer, rebalances)
        consumer.topics()  # a metadata update (the one `subscribe` asked for, at the latest)
        consumer.poll(timeout_ms=100)  # a rejoin starts here (its revoke is called in poll)
        assert (rebalances.revoked, rebalances.assigned) == (0, 1)
    finally:
        consumer.close(autocommit=False)


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
            thread.join(15)


class NoWork:
    """A batch handler that answers nothing (the group's rebalances are what is watched)."""

    def handle(self, records: list, retry) -> BatchOutcome:
        return BatchOutcome()

    def reject(self, record, error: Exception, retry) -> BatchOutcome:
        return BatchOutcome()

    def periodic(self) -> None:
        pass


class NoCounters:
    def events_counted(self, outcomes) -> None:
        pass

    def batch_counted(self, size: int) -> None:
        pass

    def retry_counted(self, step: str, error: BaseException) -> None:
        pass


class CountingLoop(BatchLoop):
    """The project's batch loop, counting its member's rebalance callbacks."""

    def __init__(self, topic: str, group: str):
        config = LoopConfig(
            events_topic=topic, group=group, poll_timeout_ms=100, metrics=NoCounters()
        )
        super().__init__(config, NoWork())
        self.rebalances = Rebalances()

    def on_partitions_revoked(self, revoked) -> None:
        self.rebalances.on_partitions_revoked(revoked)
        super().on_partitions_revoked(revoked)

    def on_partitions_assigned(self, assigned) -> None:
        self.rebalances.on_partitions_assigned(assigned)
        super().on_partitions_assigned(assigned)


@pytest.mark.broker
def test_a_worker_starting_beside_a_running_one_makes_the_group_rebalance_once():
    """The running member's partitions are revoked once and assigned once when a second
    loop starts, and the group stays so (on Apache Kafka the new member used to rejoin
    once more after its first metadata update, or the leader threw a join answer away)."""
    topic, group = names("join"), names("join-group")
    ensure_topics({topic: 4})
    first, second = CountingLoop(topic, group), CountingLoop(topic, group)
    with running(first, ready=first.partitions, what="first loop"):
        eventually(lambda: first.partitions() == set(range(4)), message="first holds all")
        before = (first.rebalances.revoked, first.rebalances.assigned)
        with running(second, ready=second.partitions, what="second loop"):
            eventually(
                lambda: (
                    first.partitions() | second.partitions() == set(range(4))
                    and not first.partitions() & second.partitions()
                ),
                message="the two share the partitions",
            )
            # A second rebalance would come within about a metadata refresh (0.1 s on);
            # none may come in the next 3 s.
            again = eventually(
                lambda: first.rebalances.revoked > before[0] + 1 or second.rebalances.revoked,
                timeout=3,
                fail=False,
            )
            counts = (first.rebalances.revoked, first.rebalances.assigned)
        assert not again, "the group rebalanced more than once"
        assert counts == (before[0] + 1, before[1] + 1)
