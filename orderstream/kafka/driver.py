"""kafka-python, and everything this project does about it: the one module that imports it.

The rest of the project takes the client's classes, errors and structs from here (through
`orderstream.kafka`, which re-exports what the apps use), so a change of client, or of its
version, is a change of this module. The client's own behaviour that the project works
around lives here too:

- `keep_finished_joins`, applied when this module is imported: a fix of the group join
  (below);
- `wait_for_unanswered_heartbeats` and `wait_for_unready_nodes`, applied likewise: a
  consumer and a producer that turned without waiting while a broker answered nothing
  (docs/decisions/kafka-python-frozen-broker.md);
- `request_rejoin`: the consumer's coordinator asked to join again (a private attribute
  of the client; see `GroupMember.nudge_stalled_rebalance`);
- `record_batch_overhead`: the client's own estimate of a record batch's size, for the
  largest value a topic takes (`topics.record_value_room`).

The fix of the group join (kafka-python 3.0.12 throws a finished join answer away):
docs/decisions/kafka-python-join-fix.md. Another kafka-python version stops the import.
"""

from __future__ import annotations

import functools
import inspect
import textwrap

import kafka
import kafka.coordinator.base as coordinator_base
import kafka.coordinator.consumer as consumer_coordinator
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
    CommitFailedError,
    CorruptRecordError,
    IllegalGenerationError,
    InvalidRecordError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RebalanceInProgressError,
    RecordListTooLargeError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
    UnknownTopicOrPartitionError,
)
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.structs import OffsetAndMetadata

__all__ = [
    "CommitFailedError",
    "ConfigResource",
    "ConfigResourceType",
    "ConsumerRebalanceListener",
    "CorruptRecordError",
    "IllegalGenerationError",
    "InvalidRecordError",
    "KafkaAdminClient",
    "KafkaConnectionError",
    "KafkaConsumer",
    "KafkaError",
    "KafkaProducer",
    "KafkaTimeoutError",
    "MessageSizeTooLargeError",
    "NewTopic",
    "OffsetAndMetadata",
    "RebalanceInProgressError",
    "RecordListTooLargeError",
    "TopicAlreadyExistsError",
    "TopicPartition",
    "UnknownMemberIdError",
    "UnknownTopicOrPartitionError",
    "keep_finished_joins",
    "record_batch_overhead",
    "request_rejoin",
    "wait_for_unanswered_heartbeats",
    "wait_for_unready_nodes",
]


def request_rejoin(consumer: KafkaConsumer) -> None:
    """Ask `consumer`'s group coordinator (the client's own, a private attribute) to join
    the group again at its next poll."""
    consumer._coordinator.request_rejoin()


def record_batch_overhead(*, key_bytes: int) -> int:
    """kafka-python's upper bound of the size of a record batch that holds one record with a
    key of `key_bytes` and an empty value (uncompressed, no headers)."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(b"k" * key_bytes, b"", [])


# ---------------------------------------------------------------------------- the join fix
FIXED_VERSION = "3.0.12"
DISCARDS_FINISHED = "if self._join_task is None or self._join_task.is_done:"
KEEPS_FINISHED = "if self._join_task is None:"


def keep_finished_joins() -> None:
    """Replace `BaseCoordinator.join_group_async` by the fixed method (once)."""
    install_once(
        coordinator_base.BaseCoordinator,
        "join_group_async",
        "keeps_finished_joins",
        lambda method: with_line_replaced(
            method, DISCARDS_FINISHED, KEEPS_FINISHED, vars(coordinator_base)
        ),
    )


def install_once(owner, name: str, marker: str, fixed_from) -> None:
    """Set `owner.name` to `fixed_from(kafka-python's method)`, marked `marker`, unless it
    is already; any other kafka-python version stops it. The fix keeps kafka-python's own
    as `__wrapped__`."""
    method = getattr(owner, name)
    if getattr(method, marker, False):
        return
    refuse_other_versions(marker)
    fixed = fixed_from(method)
    fixed.__wrapped__ = method
    setattr(fixed, marker, True)
    setattr(owner, name, fixed)


def with_line_replaced(method, old: str, new: str, scope: dict):
    """`method` compiled again from its source with `old` (found once) replaced by `new`, its
    globals `scope` (its module's); RuntimeError when the source is not the one a fix knows."""
    source = textwrap.dedent(inspect.getsource(method))
    if source.count(old) != 1:
        raise RuntimeError(f"kafka-python's {method.__name__} is not the one this fix knows")
    namespace: dict = {}
    exec(compile(source.replace(old, new), inspect.getfile(method), "exec"), scope, namespace)
    return namespace[method.__name__]


def refuse_other_versions(fix: str) -> None:
    if kafka.__version__ != FIXED_VERSION:
        raise RuntimeError(
            f"orderstream/kafka/driver.py ({fix}) fixes kafka-python {FIXED_VERSION}, found "
            f"{kafka.__version__}: check whether the new version still needs it"
        )


# ------------------------------------------------- a heartbeat without answer (frozen broker)
# `KafkaConsumer.poll` caps each fetch wait by `time_to_next_poll`, the time until the next
# heartbeat is due; a heartbeat the broker does not answer keeps the next one "due", the cap
# at 0 and poll() turning without waiting (docs/decisions/kafka-python-frozen-broker.md).
KNOWN_TIME_TO_NEXT_POLL = "return self.time_to_next_heartbeat()"


def awaits_heartbeat_answer(heartbeat) -> bool:
    """Whether the last heartbeat sent has had neither an answer nor a failure yet."""
    return heartbeat.last_send > heartbeat.last_receive and heartbeat.heartbeat_failed is False


def wait_for_unanswered_heartbeats() -> None:
    """Wrap `ConsumerCoordinator.time_to_next_poll` (once): while the heartbeat sent waits
    for its answer, the heartbeat interval instead of 0 (the heartbeat is the I/O thread's
    work, sent once the last one is answered or failed: waking the application serves
    nothing)."""

    def fixed_from(method):
        if KNOWN_TIME_TO_NEXT_POLL not in inspect.getsource(method):
            raise RuntimeError("kafka-python's time_to_next_poll is not the one this fix knows")

        @functools.wraps(method)
        def time_to_next_poll(self):
            seconds = method(self)
            if seconds > 0 or self.config["enable_auto_commit"]:
                return seconds  # (auto-commit, unused here, is left as kafka-python has it)
            if not awaits_heartbeat_answer(self.heartbeat):
                return seconds
            if not self.stable() or self.need_rejoin():
                # Joining: the join's answers come through poll(), which must keep turning
                # (with the wait, restarted workers on Tansu never got their partitions).
                return seconds
            return self.heartbeat.config["heartbeat_interval_ms"] / 1000

        return time_to_next_poll

    install_once(
        consumer_coordinator.ConsumerCoordinator,
        "time_to_next_poll",
        "waits_for_unanswered_heartbeats",
        fixed_from,
    )


# ------------------------------------------------ a node that cannot take a batch (frozen broker)
# The producer's sender waits `connection_delay(node)` before it looks again at a node with
# a batch ready that it cannot send to: 0 while the connection is being set up or is at its
# in-flight maximum, so it turned without waiting (docs/decisions/kafka-python-frozen-broker.md).
WAITS_NOTHING = "node_delay_ms = self._client.connection_delay(node)"
WAITS_FOR_NETWORK = "node_delay_ms = not_ready_delay_ms(self._client, node)"


def not_ready_delay_ms(client, node_id) -> float:
    """How long the sender may wait before it looks again at a node it cannot send to, in
    milliseconds (the client's backoff is in seconds): its reconnect backoff, else no timer
    of its own (the network wakes it, as Java's client does)."""
    seconds = client.connection_delay(node_id)
    return seconds * 1000 if seconds > 0 else float("inf")


def wait_for_unready_nodes() -> None:
    """Replace `Sender._send_producer_data` by the fixed method (once)."""
    scope = {**vars(producer_sender), "not_ready_delay_ms": not_ready_delay_ms}
    install_once(
        producer_sender.Sender,
        "_send_producer_data",
        "waits_for_unready_nodes",
        lambda method: with_line_replaced(method, WAITS_NOTHING, WAITS_FOR_NETWORK, scope),
    )


# Every client of the project is built from this module's classes.
keep_finished_joins()
wait_for_unanswered_heartbeats()
wait_for_unready_nodes()
