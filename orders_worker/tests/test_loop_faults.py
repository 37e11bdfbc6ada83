"""The worker loop's error paths, each driven on purpose against the real broker.

The faults are injected into the worker's own Kafka clients: a wrapper around the real
producer or consumer fails a call a given number of times (or for good), everything else
is the real client. What each test asserts is what the README promises for that fault:
retried, never skipped, never acknowledged twice, and a stop request honoured mid-retry.
"""

from __future__ import annotations

import logging
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaConnectionError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from orders_worker.models import ProcessedEvent
from orders_worker.worker import OrderWorker, WorkerConfig
from orderstream.kafka import make_consumer
from orderstream.kafka.group_member import GroupMember
from testkit.factories import OrderEventFactory
from testkit.failing_clients import Failing
from testkit.helpers import eventually
from testkit.topics import committed_offsets

from .support import worker_running

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True, databases=["default", "worker"]),
]


class FaultyWorker(OrderWorker):
    """The worker, with a fault injector around its producer's or consumer's `method`."""

    def __init__(self, config: WorkerConfig, *, client: str, method: str, error: Exception):
        super().__init__(config)
        self.injector: Failing | None = None
        self._fault = (client, method, error)

    def _build_consumer(self) -> KafkaConsumer:
        consumer = super()._build_consumer()
        return self._wrap("consumer", consumer)

    def _build_producer(self):
        return self._wrap("producer", super()._build_producer())

    def _wrap(self, kind: str, real):
        client, method, error = self._fault
        if kind != client:
            return real
        self.injector = Failing(real, method, error)
        return self.injector


class CommitsLost(GroupMember):
    """A group member whose routine commits never reach the broker (their offsets stay
    pending, as after a refused commit)."""

    lost_commits = 0

    def commit(self, offsets) -> None:
        with self._lock:
            self._pending.update(offsets)
        self.lost_commits += 1


class CommitsLostWorker(OrderWorker):
    """The worker, with a `CommitsLost` member."""

    def __init__(self, config: WorkerConfig):
        super().__init__(config)
        self.member = CommitsLost(config, self.stats)


def worker_config() -> WorkerConfig:
    return WorkerConfig.from_settings(
        poll_timeout_ms=100, stats_interval=60, backoff_initial=0.05, backoff_max=0.2
    )


def acks_of(ack_reader, event_id: str) -> list[str]:
    return ack_reader.statuses_by_event().get(event_id, [])


def update_of(event):
    """The next version of `event`'s order: same key, so the same partition, after it."""
    return OrderEventFactory(
        order_id=event.order_id, user_id=event.user_id, version=event.version + 1
    )


def test_acks_that_fail_to_produce_are_retried_and_sent_once(
    unique_topics, send_events, ack_reader
):
    worker = FaultyWorker(
        worker_config(), client="producer", method="send", error=KafkaTimeoutError("injected")
    )
    with worker_running(worker):
        worker.injector.fail(3)
        first = OrderEventFactory()
        second = update_of(first)
        send_events(first)
        ack_reader.read_until(lambda records: acks_of(ack_reader, first.event_id))
        send_events(second)
        # The second ACK follows the first on the order's partition: once it is read,
        # every ACK of the first event is too.
        ack_reader.read_until(lambda records: acks_of(ack_reader, second.event_id))

    assert worker.injector.failed == 3
    assert worker.stats.retries >= 3
    assert acks_of(ack_reader, first.event_id) == ["created"]
    assert acks_of(ack_reader, second.event_id) == ["updated"]
    assert committed_offsets(unique_topics.WORKER_GROUP, unique_topics.ORDERS_EVENTS_TOPIC) == 2


def test_a_stop_requested_while_retrying_ends_the_loop_without_commit_and_the_event_is_redone(
    unique_topics, send_events, ack_reader
):
    """SIGTERM during an outage (here: no ACK can be produced): the loop ends within the
    backoff, commits nothing and acknowledges nothing, so the next worker of the group
    gets the event again and answers it, once, as it was applied."""
    group, topic = unique_topics.WORKER_GROUP, unique_topics.ORDERS_EVENTS_TOPIC
    event = OrderEventFactory()
    worker = FaultyWorker(
        worker_config(), client="producer", method="send", error=KafkaTimeoutError("injected")
    )
    with worker_running(worker) as thread:
        worker.injector.fail(None)
        send_events(event)
        eventually(lambda: worker.injector.failed >= 2, timeout=30)
        worker.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "a stop request mid-retry was not honoured within 10 s"

    assert committed_offsets(group, topic) == 0
    assert ProcessedEvent.objects.using("worker").filter(event_id=event.event_id).count() == 1

    with worker_running(OrderWorker(worker_config())):
        ack_reader.read_until(lambda records: acks_of(ack_reader, event.event_id))
        later = update_of(event)
        send_events(later)
        ack_reader.read_until(lambda records: acks_of(ack_reader, later.event_id))
    assert acks_of(ack_reader, event.event_id) == ["created"]


def test_a_failing_poll_is_retried_and_the_loop_goes_on(
    unique_topics, send_events, ack_reader, caplog
):
    worker = FaultyWorker(
        worker_config(), client="consumer", method="poll", error=KafkaConnectionError("injected")
    )
    caplog.set_level(logging.WARNING, logger="orderstream.kafka")
    with worker_running(worker):
        worker.injector.fail(2)
        eventually(lambda: worker.injector.failed == 2, timeout=10)
        event = OrderEventFactory()
        send_events(event)
        ack_reader.read_until(lambda records: acks_of(ack_reader, event.event_id))

    retried = [r for r in caplog.records if r.getMessage().startswith("poll failed, retrying")]
    assert len(retried) == 2
    assert acks_of(ack_reader, event.event_id) == ["created"]


def test_a_refused_commit_is_sent_again_while_no_batch_comes(
    unique_topics, send_events, ack_reader, caplog
):
    """A commit refused (here: the group moved on) does not stop the loop: its offsets stay
    pending and, with no further batch to carry them, the loop sends them again at most
    once a second until they are committed (`GroupMember.commit_pending`). (Whether pending
    offsets are committed at a revoke is the next test.)"""
    group, topic = unique_topics.WORKER_GROUP, unique_topics.ORDERS_EVENTS_TOPIC
    worker = FaultyWorker(
        worker_config(),
        client="consumer",
        method="commit_async",
        error=CommitFailedError("injected"),
    )
    caplog.set_level(logging.WARNING, logger="orderstream.kafka")
    with worker_running(worker):
        # A batch handled and committed first: on Apache Kafka a new member may rejoin
        # once right after its first assignment, and that rejoin's revoke would commit
        # (and meet the injected failure) inside the client's rebalance callback.
        warm_up = OrderEventFactory()
        send_events(warm_up)
        ack_reader.read_until(lambda records: acks_of(ack_reader, warm_up.event_id))
        eventually(lambda: committed_offsets(group, topic) == 1, timeout=10)
        worker.injector.fail(None)
        first = OrderEventFactory()
        send_events(first)
        ack_reader.read_until(lambda records: acks_of(ack_reader, first.event_id))
        eventually(lambda: worker.injector.failed >= 1, timeout=10)
        failed_at_first = worker.injector.failed
        time.sleep(3.0)
        resent = worker.injector.failed - failed_at_first
        assert 1 <= resent <= 4, f"sent again {resent} times in 3 s"  # again, not spinning
        assert committed_offsets(group, topic) == 1
        worker.injector.heal()
        eventually(lambda: committed_offsets(group, topic) == 2, timeout=10)

    lost = [r for r in caplog.records if "offsets not committed" in r.getMessage()]
    assert len(lost) == worker.injector.failed
    assert acks_of(ack_reader, first.event_id) == ["created"]


def test_offsets_pending_at_a_revoke_are_committed_before_the_partitions_go(
    unique_topics, send_events, ack_reader
):
    """An applied batch whose commit failed is committed when its partitions are revoked
    (a second member joins), so their next owner does not apply it again. Every routine
    commit of the worker's own is lost here: only the revoke's can make the offset
    committed."""
    group, topic = unique_topics.WORKER_GROUP, unique_topics.ORDERS_EVENTS_TOPIC
    worker = CommitsLostWorker(worker_config())
    with worker_running(worker):
        event = OrderEventFactory()
        send_events(event)
        ack_reader.read_until(lambda records: acks_of(ack_reader, event.event_id))
        eventually(lambda: worker.member.lost_commits, timeout=10)
        # (On Apache Kafka the member may rejoin once right after its first assignment:
        # that revoke commits the offset already.)
        joining = make_consumer(topic, group_id=group)
        try:
            # The newcomer's join makes the group rebalance: the worker's revoke commits.
            eventually(
                lambda: (
                    joining.poll(timeout_ms=200) is not None
                    and committed_offsets(group, topic) == 1
                ),
                timeout=60,
                message="the pending offset was not committed at the revoke",
            )
        finally:
            joining.close(autocommit=False)
        assert not worker.member._pending


def test_lost_partitions_drop_their_pending_offsets_and_leave_the_assignment():
    """Partitions lost (the member was expelled) are no longer ours: their applied but
    uncommitted offsets must not be committed later by this member (the group has a new
    owner), and they leave the assignment the heartbeat looks at."""
    worker = OrderWorker(worker_config())
    kept, lost = TopicPartition("orders.events", 0), TopicPartition("orders.events", 1)
    worker.member._pending = {
        kept: OffsetAndMetadata(5, "", -1),
        lost: OffsetAndMetadata(7, "", -1),
    }
    worker.assignment.update({0, 1})

    worker.on_partitions_lost({lost})

    assert worker.member._pending == {kept: OffsetAndMetadata(5, "", -1)}
    assert worker.partitions() == {0}
    assert worker.member.rebalancing


class CommitsRecorded:
    """A consumer that holds `assigned` and records what `commit_async` is asked to commit."""

    def __init__(self, assigned: set):
        self.assigned = assigned
        self.commits: list[dict] = []

    def assignment(self):
        return set(self.assigned)

    def commit_async(self, offsets, callback=None):
        self.commits.append(dict(offsets))


def test_an_assignment_commits_the_pending_offsets_of_the_partitions_kept_and_drops_the_rest():
    """A batch whose commit was refused because the group was rebalancing (a rebalance
    during a long batch: its polls keep the member in the group) is committed as soon as
    the member has its partitions again, not only with the next batch; the offsets of a
    partition that went to another member are dropped (its next owner has the records)."""
    worker = OrderWorker(worker_config())
    kept, gone = TopicPartition("orders.events", 0), TopicPartition("orders.events", 1)
    worker.member._pending = {
        kept: OffsetAndMetadata(40, "", -1),
        gone: OffsetAndMetadata(7, "", -1),
    }
    worker.member.consumer = consumer = CommitsRecorded({kept, TopicPartition("orders.events", 2)})
    worker.member._rebalancing = True

    worker.on_partitions_assigned(consumer.assignment())

    assert consumer.commits == [{kept: OffsetAndMetadata(40, "", -1)}]
    assert worker.member._pending == {kept: OffsetAndMetadata(40, "", -1)}  # until the answer
    assert worker.partitions() == {0, 2}
    assert not worker.member.rebalancing


class AssignedOnlyInsideAWait:
    """A consumer in a rebalance that gives `member` its partitions only during a poll
    with a timeout (as Apache Kafka's rejoin did, see `GroupMember.keep_alive`); it
    keeps the timeout of every poll."""

    def __init__(self, member):
        self.member = member
        self.timeouts: list[int] = []

    def assignment(self):
        return set()

    def poll(self, timeout_ms=0, **kwargs):
        self.timeouts.append(timeout_ms)
        if timeout_ms:
            self.member.on_partitions_assigned(set())
        return {}


def test_a_rebalance_during_a_long_batch_is_waited_for_inside_poll():
    """Between two records of a batch isolated one at a time, a member whose group
    rebalances stays in poll until it has its partitions again: its commit then goes to
    the new generation, and the group does not wait on it."""
    worker = OrderWorker(worker_config())
    worker.member.consumer = consumer = AssignedOnlyInsideAWait(worker.member)
    worker.member._rebalancing = True

    worker.member.keep_alive()

    assert not worker.member.rebalancing
    assert consumer.timeouts == [0, 100]


class NothingAssigned:
    """A consumer that reports no assignment, as when partitions arrive during a poll,
    and keeps what each poll returned."""

    def __init__(self, consumer):
        self._consumer = consumer
        self.returned: list = []

    def assignment(self):
        return set()

    def poll(self, *args, **kwargs):
        records = self._consumer.poll(*args, **kwargs)
        self.returned.extend(r for recs in records.values() for r in recs)
        return records

    def __getattr__(self, name):
        return getattr(self._consumer, name)


def test_records_returned_by_a_poll_while_retrying_are_rewound(unique_topics, send_events):
    """A poll made while retrying pauses every assigned partition; partitions assigned
    during that very poll are not paused and may hand out records, which the worker must
    give back (seek) so the next regular poll returns them."""
    topic = unique_topics.ORDERS_EVENTS_TOPIC
    event = OrderEventFactory()
    send_events(event)
    consumer = make_consumer(group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        worker = OrderWorker(worker_config())
        worker.member.consumer = spy = NothingAssigned(consumer)

        eventually(lambda: worker.member._poll_paused(timeout_ms=200) or spy.returned, timeout=20)

        assert [r.value for r in spy.returned] == [event.to_bytes()]
        assert {consumer.position(tp) for tp in partitions} == {0}, "not rewound"
        again = eventually(lambda: consumer.poll(timeout_ms=200), timeout=20)
        assert [r.value for recs in again.values() for r in recs] == [event.to_bytes()]
    finally:
        consumer.close(autocommit=False)


def request_rejoin(consumer) -> None:
    """Make kafka-python's member join the group again at its next poll (its coordinator,
    the client's own, read; a rebalance asked for by the member, not by the broker)."""
    consumer._coordinator.request_rejoin()


class SlowAloneWorker(OrderWorker):
    """The worker, whose handler takes at least `delay` seconds for a record handled
    alone (as when a failed batch is isolated): a batch that takes long to isolate. With
    `rejoin_at`, the member asks the group to rebalance when it handles that many records
    alone (as when another member joins)."""

    def __init__(self, config: WorkerConfig, *, delay: float, rejoin_at: int | None = None):
        super().__init__(config)
        handle = self.handler.handle
        alone = 0

        def slow_alone(records, retry):
            nonlocal alone
            if len(records) == 1:
                alone += 1
                if alone == rejoin_at:
                    request_rejoin(self.member.consumer)
                time.sleep(delay)
            return handle(records, retry)

        self.handler.handle = slow_alone


@pytest.mark.parametrize("rebalance", [False, True], ids=["steady", "rebalanced-midway"])
def test_isolating_a_batch_longer_than_the_poll_interval_keeps_the_member_and_moves_on(
    unique_topics, settings, send_events, ack_reader, dlq_reader, rules_fail_for, caplog, rebalance
):
    """The issue "Degrade, don't fall over": a batch that fails for one poison record is
    handled again one record at a time; here that takes twice max.poll.interval.ms. The
    member stays in the group (it polls, paused, meanwhile), so its commit holds: the
    partition moves on, the poison is dead-lettered once, every other event applied and
    acknowledged once. (It used to be expelled, its commit failed, and it got the same
    batch back to isolate again, for ever.) A rebalance during the isolation (here the
    member rejoins; on Apache Kafka a new member also rejoins once by itself, sometimes
    during the batch) changes none of that."""
    settings.KAFKA_MAX_POLL_INTERVAL_MS = 3000
    if settings.KAFKA_CLIENT == "confluent":
        if rebalance:
            pytest.skip("the rejoin asks kafka-python's coordinator (request_rejoin)")
        # librdkafka refuses a max.poll.interval.ms below session.timeout.ms.
        settings.KAFKA_MAX_POLL_INTERVAL_MS = settings.KAFKA_SESSION_TIMEOUT_MS
    events = [OrderEventFactory() for _ in range(40)]
    poison = events[20]
    rules_fail_for(poison.order_id)
    # One key: one partition, so the 40 records come in one batch.
    send_events(*(e.to_bytes() for e in events), key=b"one-partition")
    caplog.set_level(logging.INFO, logger="orderstream.kafka")
    group, topic = unique_topics.WORKER_GROUP, unique_topics.ORDERS_EVENTS_TOPIC
    # Alone, the 40 records take twice max.poll.interval.ms.
    delay = 2 * settings.KAFKA_MAX_POLL_INTERVAL_MS / 1000 / len(events)
    worker = SlowAloneWorker(worker_config(), delay=delay, rejoin_at=5 if rebalance else None)

    with worker_running(worker):
        eventually(
            lambda: committed_offsets(group, topic) == len(events),
            timeout=60,
            interval=0.5,
            message="the isolated batch committed",
        )
        ack_reader.read_until(lambda records: len(records) >= len(events))

    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "one record at a time" in m]) == 1
    if rebalance:  # revoked during the isolation, and at the stop
        isolating = messages.index(next(m for m in messages if "one record at a time" in m))
        assert len([m for m in messages[isolating:] if "partitions revoked" in m]) >= 2
    assert ack_reader.statuses_by_event() == {
        e.event_id: ["rejected" if e is poison else "created"] for e in events
    }
    assert [r.value for r in dlq_reader.read_for(1.0)] == [poison.to_bytes()]
    assert ProcessedEvent.objects.using("worker").count() == len(events) - 1
