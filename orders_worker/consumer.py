"""The worker loop: poll a batch of order events, apply it, publish the results, commit.

Per poll: every record is parsed (a bad one goes to the dead-letter topic and gets an
error ACK), the valid events are applied in one database transaction, the results are
written to Redis with one pipeline, one ACK per event is produced and the producer is
flushed once, and only then are the offsets committed. A step that fails for a transient
reason (PostgreSQL, Redis or Kafka unavailable) is retried with backoff, never skipped;
a crash at any point only causes redelivery, which the upsert rules answer with the same
ACKs and no change. A step that fails for any other reason (a message no check foresaw)
makes the batch run again one message at a time: the message that still fails is
dead-lettered and answered `rejected`, the others are applied, and the loop goes on.
`stop()` (the signal handler's flag) ends the loop between batches, or abandons a batch
that is waiting on a retry, uncommitted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connections
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    MessageSizeTooLargeError,
    RebalanceInProgressError,
    UnknownMemberIdError,
    UnknownTopicOrPartitionError,
)
from kafka.structs import OffsetAndMetadata
from redis.exceptions import RedisError

from orderstream.kafka import make_consumer, make_producer, one_fetch_timeout_ms
from orderstream.messages import InvalidMessage, OrderAck, OrderEvent, rfc3339, utc_now

from .assignment import AssignmentWatch
from .heartbeat import Heartbeat
from .results import order_results_write
from .services import DB_ALIAS, EventResult, orders_apply_batch, processed_events_purge

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Failures of a service that may come back: retried with backoff, never skipped.
TRANSIENT_ERRORS = (DatabaseError, RedisError, KafkaError, OSError)
# The group moved on: these offsets can no longer be committed by this member.
LOST_COMMIT_ERRORS = (
    CommitFailedError,
    IllegalGenerationError,
    UnknownMemberIdError,
    RebalanceInProgressError,
)
# Errors no retry can heal, although KafkaError: the record is larger than the broker takes.
PERMANENT_ERRORS = (MessageSizeTooLargeError,)
PURGE_INTERVAL = 3600.0
# A rejection's error text (ACK and dead-letter header) may echo the bad value: bounded.
MAX_ERROR_CHARS = 1000
# A dead letter keeps the original key and bytes up to this size, which leaves room for
# the headers within the producer's 1 MiB request; beyond it, their coordinates only.
MAX_DEAD_LETTER_BYTES = 1_000_000


# A worker that saw no event for this long polls only every `idle_poll_ms` (when set).
IDLE_AFTER_SECONDS = 2.0
# The longest poll of a retry wait during a rebalance (a stop is noticed within this).
REBALANCE_POLL_SECONDS = 0.5
# A rebalance of this member that brought no assignment for this long is nudged (see
# `_nudge_stalled_rebalance`).
REJOIN_NUDGE_SECONDS = 3.0


class BatchAbandoned(Exception):
    """Stop was requested while a batch waited on a retry; nothing was committed."""


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the loop needs; `from_settings` fills it from Django settings."""

    events_topic: str
    ack_topic: str
    dlq_topic: str
    group: str
    batch_size: int = 500
    result_ttl: int = 0
    max_messages: int | None = None
    poll_timeout_ms: int = 500
    stats_interval: float = 10.0
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    ack_linger_ms: int = 20
    event_retention_seconds: int = 7 * 24 * 3600
    max_poll_interval_ms: int = 30_000
    heartbeat_file: str = ""
    idle_poll_ms: int = 0
    idle_poll_timeout_ms: int = 520
    unassigned_warn_seconds: float = 60.0
    unassigned_max_seconds: float = 300.0

    @classmethod
    def from_settings(cls, **overrides) -> WorkerConfig:
        values = {
            "events_topic": settings.ORDERS_EVENTS_TOPIC,
            "ack_topic": settings.ORDERS_ACK_TOPIC,
            "dlq_topic": settings.ORDERS_DLQ_TOPIC,
            "group": settings.WORKER_GROUP,
            "batch_size": settings.WORKER_BATCH_SIZE,
            "result_ttl": settings.ORDER_RESULT_TTL,
            "stats_interval": settings.WORKER_STATS_INTERVAL,
            "ack_linger_ms": settings.WORKER_ACK_LINGER_MS,
            "event_retention_seconds": settings.WORKER_EVENT_RETENTION_SECONDS,
            "max_poll_interval_ms": settings.KAFKA_MAX_POLL_INTERVAL_MS,
            "heartbeat_file": settings.WORKER_HEARTBEAT_FILE,
            "idle_poll_ms": settings.WORKER_IDLE_POLL_MS,
            "idle_poll_timeout_ms": one_fetch_timeout_ms(),
            "unassigned_warn_seconds": settings.WORKER_UNASSIGNED_WARN_SECONDS,
            "unassigned_max_seconds": settings.WORKER_UNASSIGNED_MAX_SECONDS,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class WorkerStats:
    """Counters since start, and since the last log line."""

    processed: int = 0
    rejected: int = 0
    batches: int = 0
    retries: int = 0
    window_start: float = field(default_factory=time.monotonic)
    window_processed: int = 0
    window_batches: int = 0
    first_batch_at: float | None = None  # monotonic time the first batch arrived
    last_batch_at: float | None = None  # monotonic time the last batch was committed


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to produce: an ACK or a dead-letter entry."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


def bounded_error(error: str) -> str:
    """`error` cut to MAX_ERROR_CHARS characters."""
    if len(error) <= MAX_ERROR_CHARS:
        return error
    return error[: MAX_ERROR_CHARS - 1] + "…"


def dead_letter(record, error: str, dlq_topic: str) -> Outgoing:
    """The DLQ entry: the original key and bytes, the error and the origin in headers.

    Key and bytes that would not fit beside the headers are left out (the header
    `value_omitted_bytes` says how many there were): the origin headers still say where
    they are, and a dead letter that the broker refused would stall the worker.
    """
    key, value = record.key, record.value if record.value is not None else b""
    headers = [
        ("error", bounded_error(error).encode(errors="backslashreplace")),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
        ("failed_at", rfc3339(utc_now()).encode()),
    ]
    if len(value) + len(key or b"") > MAX_DEAD_LETTER_BYTES:
        headers.append(("value_omitted_bytes", str(len(value)).encode()))
        key, value = None, b""
    return Outgoing(topic=dlq_topic, key=key, value=value, headers=headers)


def _ids_of(record) -> tuple[str | None, str | None]:
    """The order_id and event_id of a record, as far as they can be read."""
    try:
        event = OrderEvent.from_bytes(record.value)
    except InvalidMessage as exc:
        return exc.order_id, exc.event_id
    except (RecursionError, ValueError, TypeError):
        return None, None
    return event.order_id, event.event_id


class OrderWorker(ConsumerRebalanceListener):
    """One member of the worker group; `run()` loops until `stop()` or `max_messages`."""

    def __init__(self, config: WorkerConfig):
        self.config = config
        self.stats = WorkerStats()
        self.assigned = threading.Event()  # set once the group gave us our partitions
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict[TopicPartition, OffsetAndMetadata] = {}
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._last_purge = 0.0
        self._heartbeat = Heartbeat(config.heartbeat_file)
        self.assignment = AssignmentWatch(
            warn_after=config.unassigned_warn_seconds, fail_after=config.unassigned_max_seconds
        )
        self._last_records_at = time.monotonic()
        self._rebalancing = False  # from a revoke or loss until the next assignment
        self._rebalance_since = 0.0  # monotonic time of that revoke (or of the last nudge)

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Ask the loop to end after the current batch (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def partitions(self) -> set[int]:
        """The partitions of the events topic currently assigned to this worker."""
        return set(self.assignment.partitions)

    def _beat(self) -> None:
        """Touch the liveness heartbeat, unless the group has left us without partitions
        for longer than `unassigned_max_seconds` (see assignment.py)."""
        if self.assignment.alive():
            self._heartbeat.touch()

    def _remaining(self) -> int | None:
        if self.config.max_messages is None:
            return None
        return self.config.max_messages - self.stats.processed

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Consume until stopped; return the number of messages handled."""
        cfg = self.config
        logger.info(
            "worker starting: topic %s, group %s, batch size %d",
            cfg.events_topic,
            cfg.group,
            cfg.batch_size,
        )
        try:
            self._consumer = self._retry("connect the consumer", self._build_consumer)
            self._producer = self._retry("connect the producer", self._build_producer)
            while not self.stopping and (self._remaining() is None or self._remaining() > 0):
                self._beat()
                self._nudge_stalled_rebalance()
                busy = self._pause_when_idle()
                records = self._poll(block=busy)
                if records:
                    self._last_records_at = time.monotonic()
                    self._handle(records)
                self._maybe_log_stats()
                self._maybe_purge()
        except BatchAbandoned as exc:
            logger.warning("stop requested while retrying to %s: batch abandoned", exc)
        finally:
            self._close()
        return self.stats.processed

    def _build_consumer(self) -> KafkaConsumer:
        """A consumer subscribed to the events topic, once the topic's partitions are known.

        A member that joins before its client has seen the topic's partitions (a topic
        created a moment ago) is assigned nothing, and the client notices the partitions
        only at its next metadata refresh, minutes later: so the topic comes first.
        """
        consumer = make_consumer(
            group_id=self.config.group,
            client_id="orderstream-worker",
            max_poll_records=self.config.batch_size,
        )
        topic = self.config.events_topic
        if not consumer.partitions_for_topic(topic):
            consumer.close(autocommit=False)
            raise UnknownTopicOrPartitionError(f"{topic} has no partitions yet")
        consumer.subscribe([topic], listener=self)
        return consumer

    def _build_producer(self) -> KafkaProducer:
        return make_producer(
            client_id="orderstream-worker",
            linger_ms=self.config.ack_linger_ms,
            batch_size=256 * 1024,
        )

    def _nudge_stalled_rebalance(self) -> None:
        """Ask the client to join again when a rebalance brought no assignment for
        REJOIN_NUDGE_SECONDS.

        Seen on Apache Kafka (kafka-python 3.0.12): right after its first assignment the
        member rejoined, the broker completed the new generation within milliseconds, and
        the client never took the answer: no assignment, no JoinGroup, no heartbeat, until
        the broker expelled it and the worker sat without partitions. A new join request
        (its `_coordinator`, the consumer's own) lets it take the answer or join afresh;
        during a rebalance still under way it only repeats the member's join.
        """
        if not self._rebalancing:
            return
        if time.monotonic() - self._rebalance_since < REJOIN_NUDGE_SECONDS:
            return
        logger.warning(
            "no assignment %.0fs after the partitions were revoked: asking to join again",
            time.monotonic() - self._rebalance_since,
        )
        self._consumer._coordinator.request_rejoin()
        self._rebalance_since = time.monotonic()

    def _pause_when_idle(self) -> bool:
        """With `idle_poll_ms`, once no event came for IDLE_AFTER_SECONDS: wait that long
        before the next poll, and return False (poll only as long as one fetch takes).

        Each poll is a fetch round trip in Python; a broker that holds an empty fetch for
        the whole fetch_max_wait_ms (the embedded development broker) makes an idle worker
        poll some hundred times a second. The price is up to `idle_poll_ms` more latency
        for the first event after a quiet spell. Off (0) by default: a Kafka broker
        answers a long poll as soon as data comes.

        Never during a rebalance: kafka-python (3.0.12) drops a group join whose answer
        arrives while the application is outside `poll()` and joins again, and a broker
        that answers a rejoin after a fixed delay (Tansu: 3 s) then lands every answer
        in the pause, so the member never gets its partitions (seen: minutes, or for good).
        """
        idle = time.monotonic() - self._last_records_at > IDLE_AFTER_SECONDS
        quiet = idle and not self._rebalancing and self._consumer.assignment()
        if not (self.config.idle_poll_ms and quiet):
            return True
        self._stop.wait(self.config.idle_poll_ms / 1000)
        return False

    def _poll(self, *, block: bool = True) -> dict:
        limit = self.config.batch_size
        remaining = self._remaining()
        if remaining is not None:
            limit = min(limit, remaining)
        timeout_ms = self.config.poll_timeout_ms
        if not block:
            timeout_ms = min(timeout_ms, self.config.idle_poll_timeout_ms)
        try:
            return self._consumer.poll(timeout_ms=timeout_ms, max_records=limit)
        except KafkaError as exc:
            self.stats.retries += 1
            logger.warning("poll failed, retrying: %s", exc)
            self._stop.wait(self.config.backoff_max)
            return {}

    def _handle(self, records: dict) -> None:
        """Apply one polled batch end to end, then commit its offsets."""
        if self.stats.first_batch_at is None:
            self.stats.first_batch_at = time.monotonic()
        offsets = {
            tp: OffsetAndMetadata(recs[-1].offset + 1, "", -1)
            for tp, recs in records.items()
            if recs
        }
        ordered = [record for recs in records.values() for record in recs]
        try:
            self._process(ordered)
        except BatchAbandoned:
            raise
        except Exception:
            # Not transient (those are retried inside): some message makes a step fail.
            logger.exception(
                "batch of %d failed unexpectedly; processing it one message at a time",
                len(ordered),
            )
            for record in ordered:
                self._process_alone(record)
        self._commit(offsets)
        self.stats.processed += len(ordered)
        self.stats.window_processed += len(ordered)
        self.stats.batches += 1
        self.stats.window_batches += 1
        self.stats.last_batch_at = time.monotonic()

    def _process(self, ordered: list) -> None:
        """Parse, apply in one transaction, write Redis in one pipeline, produce and flush."""
        cfg = self.config
        parsed: list[tuple[object, OrderEvent | InvalidMessage]] = []
        for record in ordered:
            try:
                parsed.append((record, OrderEvent.from_bytes(record.value)))
            except InvalidMessage as exc:
                parsed.append((record, exc))
            except (RecursionError, ValueError, TypeError) as exc:
                parsed.append((record, InvalidMessage(f"unreadable message: {exc!r}")))
        events = [item for _, item in parsed if isinstance(item, OrderEvent)]
        processed_at = utc_now()

        results = iter(
            self._retry(
                "apply the batch to PostgreSQL",
                lambda: orders_apply_batch(events=events, processed_at=processed_at),
            )
        )
        outgoing: list[Outgoing] = []
        final_states = {}
        stamp = rfc3339(processed_at)
        for record, item in parsed:
            if isinstance(item, OrderEvent):
                result: EventResult = next(results)
                if result.rejected:
                    outgoing.extend(
                        self._reject(record, result.error, item.order_id, item.event_id)
                    )
                    continue
                final_states[item.order_id] = result.state
                ack = OrderAck(item.event_id, item.order_id, result.ack_status, stamp)
                outgoing.append(Outgoing(cfg.ack_topic, record.key, ack.to_bytes()))
            else:
                outgoing.extend(self._reject(record, item.reason, item.order_id, item.event_id))

        self._retry(
            "write results to Redis",
            lambda: order_results_write(states=final_states.values(), ttl=cfg.result_ttl),
        )
        self._retry("produce ACKs and dead letters", lambda: self._produce(outgoing))

    def _process_alone(self, record) -> None:
        """Process one message; if it fails unexpectedly, dead-letter it and answer
        `rejected` (its database changes, if any were committed, are kept)."""
        try:
            self._process([record])
        except BatchAbandoned:
            raise
        except Exception as exc:
            logger.exception(
                "message %s[%d]@%d key=%r failed unexpectedly",
                record.topic,
                record.partition,
                record.offset,
                record.key,
            )
            order_id, event_id = _ids_of(record)
            reason = f"could not be processed: {type(exc).__name__}: {exc}"[:500]
            outgoing = self._reject(record, reason, order_id, event_id)
            self._retry("produce a dead letter", lambda: self._produce(outgoing))

    def _reject(
        self, record, error: str, order_id: str | None, event_id: str | None
    ) -> list[Outgoing]:
        error = bounded_error(error)
        self.stats.rejected += 1
        logger.warning(
            "rejected message %s[%d]@%d key=%r: %s",
            record.topic,
            record.partition,
            record.offset,
            record.key,
            error,
        )
        out = [dead_letter(record, error, self.config.dlq_topic)]
        if order_id:
            ack = OrderAck(event_id, order_id, "rejected", rfc3339(utc_now()), error=error)
            out.append(Outgoing(self.config.ack_topic, order_id.encode(), ack.to_bytes()))
        return out

    def _produce(self, outgoing: list[Outgoing]) -> None:
        futures = [
            self._producer.send(o.topic, value=o.value, key=o.key, headers=o.headers)
            for o in outgoing
        ]
        self._producer.flush(timeout=30)
        for future in futures:
            if future.failed():
                raise future.exception

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        with self._lock:
            self._pending.update(offsets)

        def commit() -> None:
            try:
                self._consumer.commit(offsets=dict(offsets))
            except LOST_COMMIT_ERRORS as exc:
                # Redelivered to the partitions' next owner and answered as duplicates.
                logger.warning("offsets not committed, the group rebalanced: %s", exc)
                return
            with self._lock:
                for tp, offset in offsets.items():
                    if self._pending.get(tp) == offset:
                        del self._pending[tp]

        self._retry("commit offsets", commit)

    # ------------------------------------------------------------------ retries
    def _retry(self, what: str, step: Callable[[], T]) -> T:
        """Run `step` until it succeeds, backing off on transient errors; honour stop."""
        delay = self.config.backoff_initial
        attempt = 0
        try:
            while True:
                try:
                    return step()
                except PERMANENT_ERRORS:
                    raise  # handled as an unexpected error: the message alone, dead-lettered
                except TRANSIENT_ERRORS as exc:
                    attempt += 1
                    self.stats.retries += 1
                    logger.warning(
                        "could not %s (attempt %d, next in %.1fs): %s", what, attempt, delay, exc
                    )
                    if isinstance(exc, DatabaseError):
                        connections[DB_ALIAS].close()
                    if self._backoff(delay):
                        raise BatchAbandoned(what) from exc
                    delay = min(delay * 2, self.config.backoff_max)
        finally:
            if attempt:
                self._resume_partitions()

    def _backoff(self, delay: float) -> bool:
        """Wait `delay` seconds, staying in the group meanwhile; True when stop was asked.

        A retry can outlast max_poll_interval_ms. Without a poll in that time the group
        would drop this member and hand the batch to another one (which then applies it
        as a duplicate and ACKs it a second time). So the wait polls now and then, with
        every partition paused: the group keeps us, and no new records are handed out.

        While the group rebalances, the wait is spent inside poll() instead: kafka-python
        drops a join answer that arrives outside it (see `_pause_when_idle`), so a member
        that only looked in now and then would never get its new partitions.
        """
        deadline = time.monotonic() + delay
        step = max(self.config.max_poll_interval_ms / 1000 / 3, 0.05)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._rebalancing:
                self._poll_paused(timeout_ms=int(min(REBALANCE_POLL_SECONDS, remaining) * 1000))
            elif self._stop.wait(min(step, remaining)):
                return True
            else:
                self._poll_paused()
            if self.stopping:
                return True
            self._beat()  # backing off from an outage is alive (see heartbeat.py)

    def _poll_paused(self, timeout_ms: int = 0) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        try:
            assigned = consumer.assignment()
            if assigned:
                consumer.pause(*assigned)
            records = consumer.poll(timeout_ms=timeout_ms)
        except KafkaError as exc:
            logger.debug("poll while retrying failed: %s", exc)
            return
        # Partitions newly assigned during this poll were not paused: rewind whatever they
        # returned, so the records come again with the next regular poll.
        for tp, recs in records.items():
            if recs:
                consumer.seek(tp, recs[0].offset)

    def _resume_partitions(self) -> None:
        consumer = self._consumer
        if consumer is not None and consumer.paused():
            consumer.resume(*consumer.paused())

    # ------------------------------------------------------------------ rebalance
    def on_partitions_revoked(self, revoked) -> None:
        """Commit what was applied for the partitions we give up (normally nothing)."""
        self._rebalancing = True
        self._rebalance_since = time.monotonic()
        with self._lock:
            pending = {tp: self._pending.pop(tp) for tp in revoked if tp in self._pending}
        if pending:
            logger.info("committing applied offsets before revoke: %s", pending)
            self._consumer.commit_async(offsets=pending)
        if revoked:
            logger.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))
        self.assignment.update(self.assignment.partitions - {tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned) -> None:
        logger.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))
        self._rebalancing = False
        self.assignment.update({tp.partition for tp in self._consumer.assignment()})
        self.assigned.set()

    def on_partitions_lost(self, lost) -> None:
        self._rebalancing = True
        self._rebalance_since = time.monotonic()
        with self._lock:
            for tp in lost:
                self._pending.pop(tp, None)
        logger.warning("partitions lost: %s", sorted(tp.partition for tp in lost))
        self.assignment.update(self.assignment.partitions - {tp.partition for tp in lost})

    # ------------------------------------------------------------------ housekeeping
    def lag(self) -> int | None:
        """Messages behind the end of our partitions, when known."""
        total = 0
        try:
            for tp in self._consumer.assignment():
                high = self._consumer.highwater(tp)
                if high is None:
                    return None
                total += max(high - self._consumer.position(tp, timeout_ms=100), 0)
        except (KafkaError, AssertionError, TypeError):
            return None
        return total

    def _maybe_log_stats(self, force: bool = False) -> None:
        stats = self.stats
        elapsed = time.monotonic() - stats.window_start
        if not force and elapsed < self.config.stats_interval:
            return
        if self.assignment.stalled():
            logger.warning(
                "holding no partitions of %s for %.0fs (group %s): events of partitions"
                " nobody holds wait; the liveness check fails after %gs",
                self.config.events_topic,
                self.assignment.unassigned_for(),
                self.config.group,
                self.config.unassigned_max_seconds,
            )
        if stats.window_processed or force:
            mean_batch = (
                stats.window_processed / stats.window_batches if stats.window_batches else 0
            )
            logger.info(
                "processed %d in %.1fs (%.0f/s), mean batch %.0f, total %d, rejected %d,"
                " retries %d, lag %s, partitions %s",
                stats.window_processed,
                elapsed,
                stats.window_processed / elapsed if elapsed else 0,
                mean_batch,
                stats.processed,
                stats.rejected,
                stats.retries,
                self.lag(),
                sorted(self.assignment.partitions),
            )
        stats.window_start = time.monotonic()
        stats.window_processed = 0
        stats.window_batches = 0

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < PURGE_INTERVAL:
            return
        self._last_purge = now
        try:
            purged = processed_events_purge(
                older_than=timedelta(seconds=self.config.event_retention_seconds), now=utc_now()
            )
        except DatabaseError as exc:
            connections[DB_ALIAS].close()
            logger.warning("could not purge old event ids (will retry later): %s", exc)
            return
        if purged:
            logger.info(
                "forgot %d event ids older than %ss", purged, self.config.event_retention_seconds
            )

    def _close(self) -> None:
        self._maybe_log_stats(force=True)
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except KafkaError as exc:
                logger.warning("producer close failed: %s", exc)
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except KafkaError as exc:
                logger.warning("consumer close failed: %s", exc)
        connections.close_all()
        logger.info("worker stopped after %d messages", self.stats.processed)
