"""kafka-python, and everything this project does about it: the one module that imports it.

The rest of the project takes the client's classes, errors and structs from here (through
`orderstream.kafka`, which re-exports what the apps use), so a change of client, or of its
version, is a change of this module. The client's own behaviour that the project works
around lives here too:

- `JoinKeepingCoordinator`: the group coordinator of every consumer the project builds,
  which keeps a group-join answer that came while the application was outside `poll()`
  (kafka-python 3.0.12 throws it away, or never takes it);
- `record_batch_overhead`: the client's own estimate of a record batch's size, for the
  largest value a topic takes (`topics.record_value_room`).

The join races and their fixes: docs/decisions/kafka-python-join-fix.md (the other one,
a metadata snapshot taken before `subscribe`, is fixed by how the project subscribes:
`clients.subscribe_once_known`). Another kafka-python version stops the import.
"""

from __future__ import annotations

import kafka
import kafka.consumer.group as consumer_group
from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.coordinator.consumer import ConsumerCoordinator
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
    "JoinKeepingCoordinator",
    "record_batch_overhead",
]


def record_batch_overhead(*, key_bytes: int) -> int:
    """kafka-python's upper bound of the size of a record batch that holds one record with a
    key of `key_bytes` and an empty value (uncompressed, no headers)."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(b"k" * key_bytes, b"", [])


# ---------------------------------------------------------------------------- the join fix
FIXED_VERSION = "3.0.12"


class JoinKeepingCoordinator(ConsumerCoordinator):
    """kafka-python's consumer group coordinator, keeping a join answer until it is taken.

    kafka-python 3.0.12 runs a group join (JoinGroup, then SyncGroup) as a task on the
    client's network thread, and `BaseCoordinator.join_group_async` (called from `poll()`)
    awaits it as long as the poll's timeout allows. An answer that comes after the poll
    returned, while the application is outside `poll()`, is lost:

    - the next poll finds the task done and, as for no task (`if self._join_task is None
      or self._join_task.is_done:`), sends a new JoinGroup (a leader's makes the group
      rebalance again; Tansu answers a rejoin after 3 s, so a member that naps between
      short polls may never get its partitions);
    - or it does not join at all: it joins only while `need_rejoin()`, and a join asked
      for by a changed subscription or metadata snapshot (not by the broker) makes that
      False in the round trip itself. The member then waits for nothing, without
      heartbeats (off during a join), until the broker expels it.

    Here the answer of a finished round trip is kept until `_on_join_complete_async`
    takes it; meanwhile the member still needs to join, and the round trip the next
    poll asks for returns the kept answer instead of going to the broker. An answer the
    member can no longer use (its generation was reset meanwhile: no rebalance in
    progress) is dropped and the member joins afresh.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kept_join_answer: bytes | None = None  # the assignment of a finished round trip

    def need_rejoin(self) -> bool:
        return self.kept_join_answer is not None or super().need_rejoin()

    async def _do_join_and_sync_async(self):
        if self.kept_join_answer is not None and self.rebalance_in_progress():
            return self.kept_join_answer
        self.kept_join_answer = None
        answer = await super()._do_join_and_sync_async()
        self.kept_join_answer = answer
        return answer

    async def _on_join_complete_async(self, *args, **kwargs):
        self.kept_join_answer = None
        return await super()._on_join_complete_async(*args, **kwargs)


def use_join_keeping_coordinator() -> None:
    """Make every consumer built from now on use `JoinKeepingCoordinator`.

    `KafkaConsumer.__init__` builds its coordinator from the name `ConsumerCoordinator` of
    its module, kafka.consumer.group, and takes no coordinator class as an option: that
    name is where a consumer's coordinator class can be given.
    """
    if kafka.__version__ != FIXED_VERSION:
        raise RuntimeError(
            f"orderstream/kafka/driver.py fixes kafka-python {FIXED_VERSION}, found "
            f"{kafka.__version__}: check whether the new version still needs it"
        )
    consumer_group.ConsumerCoordinator = JoinKeepingCoordinator


use_join_keeping_coordinator()  # every consumer of the project is built from this module
