"""kafka-python, and everything this project does about it: the one module that imports it.

The rest of the project takes the client's classes, errors and structs from here (through
`orderstream.kafka`, which re-exports what the apps use), so a change of client, or of its
version, is a change of this module. The client's own behaviour that the project works
around lives here too:

- `FixedConsumerCoordinator`, the group coordinator of every consumer the project builds:
  it takes a group-join answer that came while the application was outside `poll()` at the
  next poll (`JoinKeepingCoordinator`: kafka-python 3.0.12 throws it away, or never takes
  it), lets `poll()` wait while a heartbeat waits for its answer
  (`HeartbeatWaitingCoordinator`), and gives up its membership on a poll timeout without
  a LeaveGroup, which Tansu mishandles during a rebalance (`PollTimeoutKeepingCoordinator`);
- `KnownLeaderFetcher`, the fetcher of every consumer: a partition whose leader the
  metadata lists no more (a fenced broker) waits for fresh metadata instead of making
  `poll()` raise and its partitions, once that node leads again, never fetched;
- `NetworkWaitingSender`, the I/O thread of every producer: it waits for the network
  while a broker cannot take a ready batch (with the heartbeat fix:
  docs/decisions/kafka-python-frozen-broker.md);
- `record_batch_overhead`: the client's own estimate of a record batch's size, for the
  largest value a topic takes (`topics.record_value_room`).

The join races and their fixes: docs/decisions/kafka-python-join-fix.md (the other one,
a metadata snapshot taken before `subscribe`, is fixed by how the project subscribes:
`clients.subscribe_once_known`). Another kafka-python version stops the import.
"""

from __future__ import annotations

import logging

import kafka
import kafka.consumer.fetcher as consumer_fetcher
import kafka.consumer.group as consumer_group
import kafka.coordinator.consumer as consumer_coordinator
import kafka.errors as Errors  # noqa: N812 (kafka-python's own name, as in the method below)
import kafka.producer.kafka as producer_kafka
import kafka.producer.sender as producer_sender
from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import (
    AuthorizationError,
    CommitFailedError,
    CorruptRecordError,
    IllegalGenerationError,
    InvalidRecordError,
    InvalidReplicationFactorError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RebalanceInProgressError,
    RecordListTooLargeError,
    TopicAlreadyExistsError,
    UnknownBrokerIdError,
    UnknownMemberIdError,
    UnknownTopicOrPartitionError,
)
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.structs import MemberState, OffsetAndMetadata
from kafka.util import Timer

logger = logging.getLogger(__name__)

__all__ = [
    "AuthorizationError",
    "CommitFailedError",
    "ConfigResource",
    "ConfigResourceType",
    "ConsumerRebalanceListener",
    "CorruptRecordError",
    "IllegalGenerationError",
    "InvalidRecordError",
    "InvalidReplicationFactorError",
    "KafkaAdminClient",
    "KafkaConnectionError",
    "KafkaConsumer",
    "KafkaError",
    "KafkaProducer",
    "KafkaTimeoutError",
    "MessageSizeTooLargeError",
    "NewTopic",
    "OffsetAndMetadata",
    "PolicyViolationError",
    "RebalanceInProgressError",
    "RecordListTooLargeError",
    "TopicAlreadyExistsError",
    "TopicPartition",
    "UnknownBrokerIdError",
    "UnknownMemberIdError",
    "UnknownTopicOrPartitionError",
    "record_batch_overhead",
]


def record_batch_overhead(*, key_bytes: int) -> int:
    """kafka-python's upper bound of the size of a record batch that holds one record with a
    key of `key_bytes` and an empty value (uncompressed, no headers)."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(b"k" * key_bytes, b"", [])


# ---------------------------------------------------------------------------- the join fix
FIXED_VERSION = "3.0.12"


class JoinKeepingCoordinator(consumer_coordinator.ConsumerCoordinator):
    """kafka-python's consumer group coordinator, keeping a join answer until a poll takes it.

    kafka-python 3.0.12 runs a group join (JoinGroup, then SyncGroup) as a task on the
    client's network thread, and `join_group_async` (called from `poll()`) awaits it as
    long as the poll's timeout allows; its comment says a later poll should "re-await the
    same Task". But it starts a new one when the task `is_done`: an answer that came after
    the poll returned, while the application was outside `poll()`, was thrown away and a
    new JoinGroup sent (a leader's makes the group rebalance again; Tansu answers a rejoin
    after 3 s, so a member that naps between short polls may never get its partitions).
    And it joins only while `need_rejoin()`, which a join asked for by a changed
    subscription or metadata snapshot (not by the broker) makes False during the round
    trip itself: the member then never took the answer, without heartbeats (off during a
    join) until the broker expelled it.

    Here `join_group_async` is kafka-python's own with one change, the one its comment
    describes: a finished task is awaited like one in flight (its answer, or its error,
    taken at the next poll); and a member with a join task not yet taken still needs to
    join. Another kafka-python version stops the import (`install_fixed_classes`): this
    method moves with the pin.
    """

    def need_rejoin(self) -> bool:
        return self.join_task is not None or super().need_rejoin()

    @property
    def join_task(self):
        """The join round trip not yet taken by a poll (kafka-python's, read only)."""
        return self._join_task

    async def join_group_async(self, timeout_ms=None):
        # kafka-python 3.0.12's BaseCoordinator.join_group_async (Apache License 2.0), but
        # for the marked line.
        if not self._use_group_apis:
            raise Errors.UnsupportedVersionError("Group Coordinator APIs require 0.9+ broker")
        timer = Timer(timeout_ms)
        while self.need_rejoin():
            if not await self.ensure_coordinator_ready_async(timeout_ms=timer.timeout_ms):
                return False
            if self._join_task is None:  # changed: kafka-python's also replaces a done task
                if not self.rejoining:
                    await self._on_join_prepare_async(
                        self._generation.generation_id,
                        self._generation.member_id,
                        timeout_ms=timer.timeout_ms,
                    )
                    self.rejoining = True
                    self._disable_heartbeat()
                self._join_task = self._manager.call_soon(self._do_join_and_sync_async)
            try:
                assignment_bytes = await self._manager.wait_for(self._join_task, timer.timeout_ms)
            except Errors.KafkaTimeoutError:
                return False  # the task stays; the next poll awaits it again
            except (
                Errors.UnknownMemberIdError,
                Errors.RebalanceInProgressError,
                Errors.IllegalGenerationError,
                Errors.MemberIdRequiredError,
            ):
                self._join_task = None
                continue
            except Errors.RetriableError:
                self._join_task = None
                if timer.expired:
                    return False
                backoff_ms = self.config["retry_backoff_ms"]
                if timer.timeout_ms is not None:
                    backoff_ms = min(backoff_ms, timer.timeout_ms)
                if backoff_ms > 0:
                    await self._manager._net.sleep(backoff_ms / 1000)
                continue
            except Errors.KafkaError:
                self._join_task = None
                raise
            self._join_task = None
            with self._lock:
                self.rejoining = False
                self.rejoin_needed = False
                self.state = MemberState.STABLE
                self._enable_heartbeat()
            await self._on_join_complete_async(
                self._generation.generation_id,
                self._generation.member_id,
                self._generation.protocol,
                assignment_bytes,
            )
            return True
        return True


# ------------------------------------------------- a heartbeat without answer (frozen broker)
def awaits_heartbeat_answer(heartbeat) -> bool:
    """Whether the last heartbeat sent has had neither an answer nor a failure yet."""
    return heartbeat.last_send > heartbeat.last_receive and heartbeat.heartbeat_failed is False


class HeartbeatWaitingCoordinator(consumer_coordinator.ConsumerCoordinator):
    """kafka-python's consumer group coordinator, letting `poll()` wait while the heartbeat
    it sent waits for its answer.

    `KafkaConsumer.poll` caps each fetch wait by `time_to_next_poll`, the time until the
    next heartbeat is due; a heartbeat the broker does not answer keeps the next one "due",
    the cap at 0 and poll() turning without waiting (docs/decisions/kafka-python-frozen-broker.md).
    The heartbeat is the I/O thread's work, sent once the last one is answered or failed:
    waking the application serves nothing, so the cap is the heartbeat interval then.
    """

    def time_to_next_poll(self) -> float:
        seconds = super().time_to_next_poll()
        if seconds > 0 or self.config["enable_auto_commit"]:
            return seconds  # (auto-commit, unused here, is left as kafka-python has it)
        if not awaits_heartbeat_answer(self.heartbeat):
            return seconds
        if not self.stable() or self.need_rejoin():
            # Joining: the join's answers come through poll(), which must keep turning
            # (with the wait, restarted workers on Tansu never got their partitions).
            return seconds
        return self.heartbeat.config["heartbeat_interval_ms"] / 1000


# ------------------------------------------------------------ a poll timeout (no LeaveGroup)
class PollTimeoutKeepingCoordinator(consumer_coordinator.ConsumerCoordinator):
    """kafka-python's consumer group coordinator, forgetting its membership on a poll
    timeout instead of sending a LeaveGroup.

    kafka-python 3.0.12's heartbeat loop (`_heartbeat_loop`) calls `maybe_leave_group_async`
    when the application has not polled for max_poll_interval_ms (as Java's client does).
    Tansu 0.6.0 removes a member that leaves a rebalance under way but keeps it as the
    group's leader: every JoinGroup answer from then on names the departed member as
    leader, nobody sends the assignment, and no member, later ones included, is ever
    assigned a partition again. A worker that waits on a frozen broker longer than the
    interval times out so, and its LeaveGroup reaches the broker after the thaw, when the
    group rebalances. Here the member forgets its membership locally (`reset_generation`,
    as the leave ends) and stops heartbeating: the broker expires it after
    session_timeout_ms, and Tansu elects a new leader when it expires one (Apache Kafka
    rebalances then too, a session timeout later than after a LeaveGroup). A leave the
    application asks for (`close`, `unsubscribe`, through `maybe_leave_group`) is sent as
    before.
    """

    leave_asked = False  # set by the application's leave (`maybe_leave_group`)

    def maybe_leave_group(self, reason=None, timeout_ms=None):
        self.leave_asked = True
        return super().maybe_leave_group(reason=reason, timeout_ms=timeout_ms)

    async def maybe_leave_group_async(self, reason=None, timeout_ms=None):
        if self.leave_asked:
            return await super().maybe_leave_group_async(reason=reason, timeout_ms=timeout_ms)
        # The heartbeat loop's poll timeout: no LeaveGroup.
        logger.warning(
            "no poll for max_poll_interval_ms: the member gives up its membership without"
            " a LeaveGroup; the broker expires it after session_timeout_ms"
        )
        self.reset_generation()
        return None


class FixedConsumerCoordinator(
    JoinKeepingCoordinator, HeartbeatWaitingCoordinator, PollTimeoutKeepingCoordinator
):
    """The coordinator of every consumer the project builds: the three fixes above."""


# ---------------------------------------------------------- a leader the metadata lists no more
class KnownLeaderFetcher(consumer_fetcher.Fetcher):
    """kafka-python's fetcher, fetching a partition only from a leader the metadata lists.

    A killed broker of a cluster is fenced: the metadata lists it no more while the
    consumer's view of a partition still names it leader. kafka-python 3.0.12 marked the
    node as fetching, then failed to connect to it (UnknownBrokerIdError out of `poll()`)
    and never cleared the mark: once the node came back and led a partition again, that
    partition was not fetched any more (its events never handled, the lag seen as 0). Such
    a partition counts here as one without a leader: skipped, fresh metadata asked for.
    """

    def _select_read_replica(self, tp):
        node_id = super()._select_read_replica(tp)
        if node_id is not None and node_id != -1:
            if self._manager.cluster.broker_metadata(node_id) is None:
                return -1
        return node_id


# ------------------------------------------------ a node that cannot take a batch (frozen broker)
def not_ready_delay_ms(client, node_id) -> float:
    """How long the sender may wait before it looks again at a node it cannot send to, in
    milliseconds (the client's backoff is in seconds): its reconnect backoff, else no timer
    of its own (the network wakes it, as Java's client does)."""
    seconds = client.connection_delay(node_id)
    return seconds * 1000 if seconds > 0 else float("inf")


class SenderClientView:
    """A producer's client as its sender sees it: the client itself, but for
    `connection_delay`, which the sender reads (in one place, `_send_producer_data`) as the
    milliseconds to wait before it looks again at a node with a ready batch it cannot send
    to. kafka-python's answers 0 for a node still connecting or at its in-flight maximum
    (and seconds, not milliseconds, for one in backoff), so the sender turned without
    waiting while a broker answered nothing (docs/decisions/kafka-python-frozen-broker.md)."""

    def __init__(self, client):
        self._wrapped_client = client

    def __getattr__(self, name: str):
        return getattr(self._wrapped_client, name)

    def connection_delay(self, node_id) -> float:
        return not_ready_delay_ms(self._wrapped_client, node_id)


class NetworkWaitingSender(producer_sender.Sender):
    """kafka-python's producer I/O thread, seeing its client through `SenderClientView`."""

    def __init__(self, client, *args, **kwargs):
        super().__init__(SenderClientView(client), *args, **kwargs)


# ----------------------------------------------------------------------- installing the fixes
def install_fixed_classes() -> None:
    """Make every consumer and producer built from now on use the fixed classes.

    `KafkaConsumer.__init__` builds its coordinator and its fetcher from the names
    `ConsumerCoordinator` and `Fetcher` of its module, kafka.consumer.group, and
    `KafkaProducer.__init__` its sender from the name `Sender` of kafka.producer.kafka;
    none takes a class as an option: those names are where the classes can be given.
    Another kafka-python version stops it.
    """
    if kafka.__version__ != FIXED_VERSION:
        raise RuntimeError(
            f"orderstream/kafka/driver.py fixes kafka-python {FIXED_VERSION}, found "
            f"{kafka.__version__}: check whether the new version still needs it"
        )
    consumer_group.ConsumerCoordinator = FixedConsumerCoordinator
    consumer_group.Fetcher = KnownLeaderFetcher
    producer_kafka.Sender = NetworkWaitingSender


install_fixed_classes()  # every client of the project is built from this module
