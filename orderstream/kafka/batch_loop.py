"""A generic Kafka batch loop: poll, hand the batch to a handler, produce, commit.

Per poll: the handler turns the records into a `BatchOutcome` (its ACKs and dead
letters), running each of its I/O steps through the loop's `retry`; the loop produces
the outcome's records and flushes once, and only then commits the offsets. A step that
fails for a transient reason (a database, Redis or the broker unavailable) is retried with
backoff, never skipped, by the loop's group member (`group_member.py`: the consumer, its
offsets and rebalances, the retries). A batch that fails for any other reason is
handled again one record at a time: this is the only place where a bad record is
isolated. The record that still fails alone is answered by the handler's `reject` (a dead
letter, and an error ACK where it can), the others are handled, and the loop goes on.
Between those records the loop polls now and then with every partition paused, so a
large batch that takes longer than max.poll.interval.ms to isolate keeps its partitions.

The loop knows nothing of what the records hold: the worker's handler is
`orders_worker/handler.py`, and `orders_worker/worker.py` puts the two together (the ACK
recorder's is in `orders_api/ack_recorder/recorder.py`). `stop()` (SIGTERM's
flag) ends the loop between batches, or abandons a batch that is waiting on a retry, uncommitted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from django.db import connections

from orderstream.batch_pacing import BatchPacer, PacingConfig
from orderstream.kafka.clients import make_consumer, make_producer, subscribe_once_known
from orderstream.kafka.driver import (
    ConsumerRebalanceListener,
    KafkaConsumer,
    KafkaError,
    KafkaProducer,
    OffsetAndMetadata,
    UnknownTopicOrPartitionError,
)
from orderstream.kafka.group_member import BatchAbandoned, GroupMember
from orderstream.kafka.loop_metrics import LoopMetrics
from orderstream.kafka.loop_stats import LoopStats, consumer_lag

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A loop's `retry(what, step)`: run `step` until it succeeds (see GroupMember.retry).
Retry = Callable[[str, Callable[[], T]], T]
# A loop that saw no record for this long polls only every `idle_poll_ms` (when set).
IDLE_AFTER_SECONDS = 2.0


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """What the loop itself needs: the topic, the group, polling, retries, liveness."""

    events_topic: str
    group: str
    batch_size: int = 500
    max_messages: int | None = None
    poll_timeout_ms: int = 500
    stats_interval: float = 10.0
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    ack_linger_ms: int = 20
    max_poll_interval_ms: int = 30_000
    heartbeat_file: str = ""
    idle_poll_ms: int = 0
    idle_poll_timeout_ms: int = 520
    pacing: PacingConfig = PacingConfig.off()  # off unless configured
    idle_after_seconds: float = IDLE_AFTER_SECONDS
    unassigned_warn_seconds: float = 60.0
    unassigned_max_seconds: float = 300.0
    client_id: str = "orderstream-worker"
    name: str = "worker"  # what the loop's log lines call it
    database: str = "worker"  # the alias whose connection is reset after a database error
    metrics: LoopMetrics  # what it counts (each app's loop has its own names)
    # False for a loop whose handler never answers with records (the ACK recorder): it
    # builds no producer.
    produces: bool = True


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to produce: an ACK or a dead-letter entry.

    `partition`, when the topic has it, is used instead of hashing the key: an ACK goes to
    its event's partition, which with as many partitions as the events' topic is the one
    its key (the same order_id) hashes to anyway; kafka-python's hashing in Python was
    about a twentieth of the worker's drain. Otherwise the key decides.
    """

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None


@dataclass(frozen=True)
class BatchOutcome:
    """What a handler made of some records: its own results, and the records to produce."""

    results: list = field(default_factory=list)
    acks: list[Outgoing] = field(default_factory=list)
    dead_letters: list[Outgoing] = field(default_factory=list)
    # How many records came to each outcome (`metrics.EVENT_OUTCOMES`), for the metrics.
    outcomes: dict[str, int] = field(default_factory=dict)


class BatchHandler(Protocol):
    """What the loop calls; `handler.OrderEventsHandler` is the one of the worker."""

    def handle(self, records: list, retry: Retry) -> BatchOutcome:
        """Handle `records` (in poll order); raise when some record makes a step fail."""

    def reject(self, record, error: Exception, retry: Retry) -> BatchOutcome:
        """The answer to a record that failed alone with `error`: its dead letter (any
        I/O of its own runs through `retry`)."""

    def periodic(self) -> None:
        """Housekeeping, called between batches (the handler paces itself)."""


class BatchLoop(ConsumerRebalanceListener):
    """One member of the group; `run()` loops until `stop()` or `max_messages`.

    Its membership is its `member` (`GroupMember`); the consumer reports rebalances to the
    loop, which passes them on to the member (so a subclass may watch them too).
    """

    def __init__(
        self,
        config: LoopConfig,
        handler: BatchHandler,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.handler = handler
        self.metrics = config.metrics
        self.stats = LoopStats()
        self.member = GroupMember(config, self.stats)
        self._clock = clock  # decides when the loop is idle (tests move it on)
        self._producer: KafkaProducer | None = None
        self._last_records_at = clock()
        self.pacer = BatchPacer(config.pacing)

    # ------------------------------------------------------------------ the member's state
    def stop(self) -> None:
        """Ask the loop to end after the current batch (from any thread)."""
        self.member.stop()

    @property
    def stopping(self) -> bool:
        return self.member.stopping

    @property
    def assigned(self):
        """A `threading.Event`, set once the group gave this member its partitions."""
        return self.member.assigned

    @property
    def assignment(self):
        """The member's `AssignmentWatch`: its partitions, and since when it has none."""
        return self.member.assignment

    def partitions(self) -> set[int]:
        """The partitions of the consumed topic currently assigned to this member."""
        return self.member.partitions()

    def on_partitions_revoked(self, revoked) -> None:
        self.member.on_partitions_revoked(revoked)

    def on_partitions_assigned(self, assigned) -> None:
        self.member.on_partitions_assigned(assigned)

    def on_partitions_lost(self, lost) -> None:
        self.member.on_partitions_lost(lost)

    def _remaining(self) -> int | None:
        if self.config.max_messages is None:
            return None
        return self.config.max_messages - self.stats.processed

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Consume until stopped; return the number of messages handled."""
        cfg = self.config
        logger.info(
            "%s starting: topic %s, group %s, batch size %d",
            cfg.name,
            cfg.events_topic,
            cfg.group,
            cfg.batch_size,
        )
        try:
            member = self.member
            member.consumer = member.retry("connect the consumer", self._build_consumer)
            if self.config.produces:
                self._producer = member.retry("connect the producer", self._build_producer)
            while not self.stopping and (self._remaining() is None or self._remaining() > 0):
                member.beat()
                busy = self._pause_when_idle()
                self._linger_under_load()
                records = self._poll(block=busy)
                if records:
                    self._last_records_at = self._clock()
                    self.pacer.started()
                    self._handle(records)
                else:
                    member.commit_pending()  # a failed commit goes again, batch or not
                self._maybe_log_stats()
                self.stats.lags_refresh(member.consumer)
                self.handler.periodic()
        except BatchAbandoned as exc:
            logger.warning("stop requested while retrying to %s: batch abandoned", exc)
        finally:
            self._close()
        return self.stats.processed

    def _build_consumer(self) -> KafkaConsumer:
        """A consumer subscribed to the topic, once the topic's partitions are known
        (`clients.subscribe_once_known`)."""
        consumer = make_consumer(
            group_id=self.config.group,
            client_id=self.config.client_id,
            max_poll_records=self.config.batch_size,
        )
        topic = self.config.events_topic
        if not subscribe_once_known(consumer, topic, self):
            consumer.close(autocommit=False)
            raise UnknownTopicOrPartitionError(f"{topic} has no partitions yet")
        return consumer

    def _build_producer(self) -> KafkaProducer:
        return make_producer(
            client_id=self.config.client_id,
            linger_ms=self.config.ack_linger_ms,
            batch_size=256 * 1024,
        )

    def _pause_when_idle(self) -> bool:
        """With `idle_poll_ms`, once no record came for `idle_after_seconds`: wait that
        long before the next poll, and return False (poll only as long as one fetch takes).

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
        idle = self._clock() - self._last_records_at > self.config.idle_after_seconds
        member = self.member
        quiet = idle and not member.rebalancing and member.consumer.assignment()
        if not (self.config.idle_poll_ms and quiet):
            return True
        member.wait(self.config.idle_poll_ms / 1000)
        return False

    def _linger_under_load(self) -> None:
        """Under load, let the next batch fill up a little (`orderstream.batch_pacing`);
        never during a rebalance (see `_pause_when_idle`)."""
        delay = self.pacer.linger()
        if delay and not self.member.rebalancing:
            self.member.wait(delay)

    def _poll(self, *, block: bool = True) -> dict:
        limit = self.config.batch_size
        remaining = self._remaining()
        if remaining is not None:
            limit = min(limit, remaining)
        timeout_ms = self.config.poll_timeout_ms
        if not block:
            timeout_ms = min(timeout_ms, self.config.idle_poll_timeout_ms)
        return self.member.poll(timeout_ms=timeout_ms, max_records=limit)

    # ------------------------------------------------------------------ one batch
    def _handle(self, records: dict) -> None:
        """Handle one polled batch end to end, then commit its offsets."""
        self.stats.batch_started()
        offsets = {
            tp: OffsetAndMetadata(recs[-1].offset + 1, "", -1)
            for tp, recs in records.items()
            if recs
        }
        ordered = [record for recs in records.values() for record in recs]
        self._process_isolating(ordered)
        self.member.commit(offsets)
        self.stats.batch_committed(len(ordered))
        self.pacer.handled(len(ordered))
        self.metrics.batch_counted(len(ordered))

    def _process_isolating(self, records: list) -> None:
        """Process `records` as one batch; if that fails (not transiently: those are
        retried inside), process them one at a time, so only a record that fails alone is
        rejected. Records already handled in the failed attempt are answered again as
        the handler answers duplicates. The member stays in the group meanwhile
        (`GroupMember.keep_alive` between the records)."""
        try:
            self._process(records)
        except BatchAbandoned:
            raise
        except Exception as exc:
            logger.warning(
                "batch of %d failed (%s: %s); processing it one record at a time",
                len(records),
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            try:
                for record in records:
                    self.member.keep_alive()
                    self._process_alone(record)
            finally:
                self.member.resume_partitions()

    def _process(self, records: list) -> None:
        """Handle `records`, then produce the outcome's records and flush once."""
        outcome = self.handler.handle(records, self.member.retry)
        self._publish(outcome, "produce ACKs and dead letters")

    def _process_alone(self, record) -> None:
        """Process one record; if it fails, produce the handler's rejection of it (its
        changes, if any were committed, are kept)."""
        try:
            self._process([record])
        except BatchAbandoned:
            raise
        except Exception as exc:
            rejection = self.handler.reject(record, exc, self.member.retry)
            self._publish(rejection, "produce a dead letter")

    def _publish(self, outcome: BatchOutcome, what: str) -> None:
        outgoing = outcome.acks + outcome.dead_letters
        if self.config.produces:
            self.member.retry(what, lambda: self._produce(outgoing))
        elif outgoing:
            raise RuntimeError(
                f"{self.config.name}: its handler answered with {len(outgoing)} records, but"
                " the loop produces none (LoopConfig.produces)"
            )
        self.stats.rejected += len(outcome.dead_letters)
        self.metrics.events_counted(outcome.outcomes)

    def _produce(self, outgoing: list[Outgoing]) -> None:
        partitions: dict[str, set[int]] = {}  # the topics' partitions, asked once a batch

        def partition_of(o: Outgoing) -> int | None:
            if o.partition is None:
                return None
            if o.topic not in partitions:
                partitions[o.topic] = self._producer.partitions_for(o.topic) or set()
            return o.partition if o.partition in partitions[o.topic] else None

        futures = [
            self._producer.send(
                o.topic, value=o.value, key=o.key, headers=o.headers, partition=partition_of(o)
            )
            for o in outgoing
        ]
        self._producer.flush(timeout=30)
        for future in futures:
            if future.failed():
                raise future.exception

    # ------------------------------------------------------------------ housekeeping
    def _maybe_log_stats(self, force: bool = False) -> None:
        """Every `stats_interval`: the stats line, and a warning while we hold no partition."""
        if not force and self.stats.window_seconds() < self.config.stats_interval:
            return
        self.member.warn_if_unassigned()
        lag = consumer_lag(self.member.consumer)
        self.stats.log_window(lag=lag, partitions=self.assignment.partitions, force=force)

    def _close(self) -> None:
        self._maybe_log_stats(force=True)
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except KafkaError as exc:
                logger.warning("producer close failed: %s", exc)
        self.member.close()
        connections.close_all()
        logger.info("%s stopped after %d messages", self.config.name, self.stats.processed)
