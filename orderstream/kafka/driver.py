"""kafka-python, and everything this project does about it: the one module that imports it.

The rest of the project takes the client's classes, errors and structs from here (through
`orderstream.kafka`, which re-exports what the apps use), so a change of client, or of its
version, is a change of this module. The client's own behaviour that the project works
around lives here too:

- `keep_finished_joins`, applied when this module is imported: a fix of the group join
  (below);
- `request_rejoin`: the consumer's coordinator asked to join again (a private attribute
  of the client; see `GroupMember.nudge_stalled_rebalance`);
- `record_batch_overhead`: the client's own estimate of a record batch's size, for the
  largest value a topic takes (`topics.record_value_room`).

The fix of the group join (kafka-python 3.0.12 throws a finished join answer away):
docs/decisions/kafka-python-join-fix.md. Another kafka-python version stops the import.
"""

from __future__ import annotations

import inspect
import textwrap

import kafka
import kafka.coordinator.base as coordinator_base
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
    method = coordinator_base.BaseCoordinator.join_group_async
    if getattr(method, "keeps_finished_joins", False):
        return
    if kafka.__version__ != FIXED_VERSION:
        raise RuntimeError(
            f"orderstream/kafka/driver.py fixes kafka-python {FIXED_VERSION}, found "
            f"{kafka.__version__}: check whether the new version still needs it"
        )
    source = textwrap.dedent(inspect.getsource(method))
    if source.count(DISCARDS_FINISHED) != 1:
        raise RuntimeError("kafka-python's join_group_async is not the one this fix knows")
    namespace: dict = {}
    code = compile(
        source.replace(DISCARDS_FINISHED, KEEPS_FINISHED), inspect.getfile(method), "exec"
    )
    exec(code, vars(coordinator_base), namespace)
    fixed = namespace["join_group_async"]
    fixed.keeps_finished_joins = True
    coordinator_base.BaseCoordinator.join_group_async = fixed


keep_finished_joins()  # every client of the project is built from this module's classes
