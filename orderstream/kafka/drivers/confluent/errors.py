"""librdkafka's errors as the project's Kafka errors (the classes `orderstream.kafka.driver`
exports), and the log of a client's client-wide errors."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError as CKError
from confluent_kafka import KafkaException

from orderstream.kafka import driver as kp

logger = logging.getLogger(__name__)


class KafkaFatalError(kp.KafkaError):
    """librdkafka's client is in a fatal state (e.g. an idempotent producer's): renew it."""


class LibrdkafkaError(kp.KafkaError):
    """Any other librdkafka error, with its code (transient unless `fatal`)."""

    def __init__(self, error: CKError):
        super().__init__(f"{error.name()}: {error.str()}")
        self.code = error.code()
        self.retriable = error.retriable()


ERRORS_BY_CODE = {
    CKError.MSG_SIZE_TOO_LARGE: kp.MessageSizeTooLargeError,
    CKError.RECORD_LIST_TOO_LARGE: kp.RecordListTooLargeError,
    CKError.INVALID_RECORD: kp.InvalidRecordError,
    CKError.INVALID_MSG: kp.CorruptRecordError,
    CKError.ILLEGAL_GENERATION: kp.IllegalGenerationError,
    CKError.UNKNOWN_MEMBER_ID: kp.UnknownMemberIdError,
    CKError.REBALANCE_IN_PROGRESS: kp.RebalanceInProgressError,
    CKError._ASSIGNMENT_LOST: kp.CommitFailedError,
    CKError.STALE_MEMBER_EPOCH: kp.CommitFailedError,
    CKError.FENCED_INSTANCE_ID: kp.CommitFailedError,
    CKError._MSG_TIMED_OUT: kp.KafkaTimeoutError,
    CKError._TIMED_OUT: kp.KafkaTimeoutError,
    CKError.REQUEST_TIMED_OUT: kp.KafkaTimeoutError,
    CKError.TOPIC_ALREADY_EXISTS: kp.TopicAlreadyExistsError,
    CKError.UNKNOWN_TOPIC_OR_PART: kp.UnknownTopicOrPartitionError,
    CKError._UNKNOWN_TOPIC: kp.UnknownTopicOrPartitionError,
    CKError._UNKNOWN_PARTITION: kp.UnknownTopicOrPartitionError,
    # A topic the broker will not create (the worker stops: orders_worker/worker.py).
    CKError.TOPIC_AUTHORIZATION_FAILED: kp.AuthorizationError,
    CKError.CLUSTER_AUTHORIZATION_FAILED: kp.AuthorizationError,
    CKError.POLICY_VIOLATION: kp.PolicyViolationError,
    CKError.INVALID_REPLICATION_FACTOR: kp.InvalidReplicationFactorError,
}

# A partition just created answers these for a moment (no leader elected yet).
PARTITION_SETTLING = {
    CKError.NOT_LEADER_FOR_PARTITION,
    CKError.LEADER_NOT_AVAILABLE,
    CKError.UNKNOWN_TOPIC_OR_PART,
    CKError._UNKNOWN_PARTITION,
}


def project_error(error) -> kp.KafkaError:
    """The project's error for a librdkafka `KafkaError` (or a KafkaException holding one)."""
    if isinstance(error, KafkaException):
        error = error.args[0]
    if not isinstance(error, CKError):
        return LibrdkafkaError(CKError(CKError._FAIL, str(error)))
    if error.fatal():
        return KafkaFatalError(f"{error.name()}: {error.str()}")
    kind = ERRORS_BY_CODE.get(error.code())
    if kind is None:
        return LibrdkafkaError(error)
    return kind(f"{error.name()}: {error.str()}")


# once this often per error code and client.
ERROR_LOG_INTERVAL_S = 10.0


class OncePerInterval:
    """Whether a key's turn has come: true at most once per ERROR_LOG_INTERVAL_S per key."""

    def __init__(self) -> None:
        self._last: dict = {}

    def __call__(self, key) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < ERROR_LOG_INTERVAL_S:
            return False
        self._last[key] = now
        return True


class ErrorLog:
    """librdkafka's `error_cb` of one client: errors of the client as a whole (brokers
    down, ...), logged once per ERROR_LOG_INTERVAL_S per code; a fatal one always."""

    def __init__(self) -> None:
        self._due = OncePerInterval()

    def __call__(self, error: CKError) -> None:
        if not self._due(error.code()) and not error.fatal():
            return
        level = logging.ERROR if error.fatal() else logging.WARNING
        logger.log(level, "librdkafka: %s: %s", error.name(), error.str())


class RepeatedLogLines(logging.Filter):
    """A filter on librdkafka's log lines: a line of one facility and client passes once
    per ERROR_LOG_INTERVAL_S. While a broker is down librdkafka logs each failed
    reconnect (`FAIL`, every ~50 ms per client) and each metadata retry (`METADATAUPDATE`);
    seen in a broker restart test: hundreds of ERROR lines a minute per process."""

    def __init__(self) -> None:
        super().__init__()
        self._due = OncePerInterval()

    def filter(self, record: logging.LogRecord) -> bool:
        # confluent-kafka logs `"%s [%s] %s" % (facility, client name, text)`.
        args = record.args if isinstance(record.args, tuple) else ()
        return self._due(args[:2] if len(args) == 3 else (record.msg,))
