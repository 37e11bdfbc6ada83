"""The consumer port on librdkafka's Consumer (see the package's docstring for what differs)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import NamedTuple

import confluent_kafka
from confluent_kafka import KafkaError as CKError
from confluent_kafka import KafkaException

from orderstream.kafka import driver as kp
from orderstream.kafka.drivers.confluent.config import consumer_config
from orderstream.kafka.drivers.confluent.errors import PARTITION_SETTLING, project_error
from orderstream.kafka.drivers.confluent.partitions import (
    METADATA_TIMEOUT_S,
    TopicPartition,
    offset_of,
    partitions_of,
    to_ck,
    to_tp,
    topic_names,
)

logger = logging.getLogger(__name__)


class Record:
    """A consumed record, with kafka-python's attributes (`ConsumerRecord`)."""

    __slots__ = ("topic", "partition", "offset", "key", "value", "headers", "timestamp")

    def __init__(self, message):
        self.topic = message.topic()
        self.partition = message.partition()
        self.offset = message.offset()
        self.key = message.key()
        self.value = message.value()
        self.headers = message.headers() or []
        self.timestamp = message.timestamp()[1]

    def __repr__(self) -> str:
        return f"Record({self.topic}[{self.partition}]@{self.offset})"


class _Commit(NamedTuple):
    sent: dict  # {TopicPartition: offset}, to match the answer
    offsets: dict  # as the caller gave them, passed back to its callback
    callback: object


class ConfluentConsumer:
    """A librdkafka consumer with the consumer port's surface (kafka-python's names)."""

    def __init__(self, *topics: str, **config):
        conf, self._max_records, self._groupless = consumer_config(config)
        conf["on_commit"] = self._on_commit
        self._consumer = confluent_kafka.Consumer(conf)
        self._listener = None
        self._paused: set[TopicPartition] = set()
        self._commits: list[_Commit] = []
        self._in_revoke = False
        self._positions: dict[TopicPartition, int] = {}  # the next offset, once consumed
        self._starts: dict[TopicPartition, int] = {}  # a reader's assignment and offsets
        self._closed = False
        if topics:
            self.subscribe(list(topics))

    # ------------------------------------------------------------------ membership
    def subscribe(self, topics: Iterable[str], listener=None) -> None:
        self._listener = listener
        self._consumer.subscribe(
            list(topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _on_assign(self, consumer, partitions) -> None:
        tps = {to_tp(p) for p in partitions}
        try:
            consumer.incremental_assign(partitions)
            if self._paused and partitions:  # the member waits paused: so do new partitions
                consumer.pause(partitions)
                self._paused |= tps
        except KafkaException as exc:
            logger.warning("librdkafka: assignment of %s failed: %s", sorted(tps), exc)
        self._call("on_partitions_assigned", tps)

    def _on_revoke(self, consumer, partitions) -> None:
        self._give_up(consumer, partitions, "on_partitions_revoked")

    def _on_lost(self, consumer, partitions) -> None:
        self._give_up(consumer, partitions, "on_partitions_lost")

    def _give_up(self, consumer, partitions, callback: str) -> None:
        tps = {to_tp(p) for p in partitions}
        self._in_revoke = callback == "on_partitions_revoked"
        try:
            self._call(callback, tps)
        finally:
            self._in_revoke = False
        try:
            if tps & self._paused:  # librdkafka keeps a partition's pause past its revoke
                consumer.resume([to_ck(tp) for tp in tps & self._paused])
            consumer.incremental_unassign(partitions)
        except KafkaException as exc:
            logger.warning("librdkafka: unassignment of %s failed: %s", sorted(tps), exc)
        self._paused -= tps
        for tp in tps:
            self._positions.pop(tp, None)

    def _call(self, name: str, tps: set[TopicPartition]) -> None:
        """The listener's `name` callback; an exception is logged, never raised (librdkafka
        would raise it from the poll that served the rebalance)."""
        if self._listener is None:
            return
        try:
            getattr(self._listener, name)(tps)
        except Exception:
            logger.exception("rebalance listener %s failed", name)

    # ------------------------------------------------------------------ records
    def poll(self, timeout_ms: int = 0, max_records: int | None = None, **_ignored) -> dict:
        """{TopicPartition: [Record]}: as soon as one record came within `timeout_ms`, that
        one and those already queued, up to `max_records`."""
        first = self._consumer.poll(timeout_ms / 1000)
        if first is None:
            return {}
        limit = max_records or self._max_records
        messages = [first]
        if limit > 1:
            messages += self._consumer.consume(limit - 1, 0)
        batches: dict[TopicPartition, list[Record]] = {}
        for message in messages:
            if message.error() is not None:
                self._consumer_error(message.error())
                continue
            record = Record(message)
            tp = TopicPartition(record.topic, record.partition)
            batches.setdefault(tp, []).append(record)
            self._positions[tp] = record.offset + 1
        return batches

    def _consumer_error(self, error: CKError) -> None:
        if error.fatal():
            raise project_error(error)
        if error.code() == CKError._PARTITION_EOF:
            return
        logger.warning("librdkafka consumer: %s: %s", error.name(), error.str())

    # ------------------------------------------------------------------ offsets
    def commit_async(self, offsets: dict, callback=None) -> None:
        """Commit `offsets` ({TopicPartition: offset or OffsetAndMetadata}); `callback(offsets,
        answer)` gets the offsets or the error. Inside a revoke: synchronous."""
        sent = {tp: offset_of(o) for tp, o in offsets.items()}
        partitions = [to_ck(tp, off) for tp, off in sent.items()]
        if self._in_revoke:
            try:
                answer = self._commit_sync(partitions)
            except kp.KafkaError as exc:
                logger.warning("offsets of revoked partitions not committed: %s", exc)
                answer = exc
            if callback is not None:
                callback(offsets, answer if isinstance(answer, Exception) else offsets)
            return
        entry = _Commit(sent, offsets, callback)
        self._commits.append(entry)
        try:
            self._consumer.commit(offsets=partitions, asynchronous=True)
        except KafkaException as exc:
            self._commits.remove(entry)
            raise project_error(exc) from exc

    def commit(self, offsets: dict, timeout_ms: int | None = None) -> None:
        """Commit `offsets` and wait for the answer (bounded by socket.timeout.ms)."""
        self._commit_sync([to_ck(tp, offset_of(o)) for tp, o in offsets.items()])

    def _commit_sync(self, partitions: list) -> list:
        try:
            answered = self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            raise project_error(exc) from exc
        for tp in answered or []:
            if tp.error is not None:
                raise project_error(tp.error)
        return answered

    def _on_commit(self, error, partitions) -> None:
        """librdkafka's answer to a commit: to the callback of the commit it answers."""
        answered = {to_tp(p): p.offset for p in partitions or []}
        entry = next((c for c in self._commits if c.sent == answered), None)
        if entry is None:
            return  # a synchronous commit's, or one sent without offsets
        self._commits.remove(entry)
        if entry.callback is None:
            return
        failed = error or next((p.error for p in partitions if p.error is not None), None)
        answer = project_error(failed) if failed is not None else entry.offsets
        try:
            entry.callback(entry.offsets, answer)
        except Exception:
            logger.exception("commit callback failed")

    def committed(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        timeout = METADATA_TIMEOUT_S if timeout_ms is None else timeout_ms / 1000
        try:
            (answer,) = self._consumer.committed([to_ck(tp)], timeout=timeout)
        except KafkaException as exc:
            raise project_error(exc) from exc
        return answer.offset if answer.offset >= 0 else None

    # ------------------------------------------------------------------ assignment
    def assignment(self) -> set[TopicPartition]:
        return {to_tp(p) for p in self._consumer.assignment()}

    def pause(self, *tps: TopicPartition) -> None:
        if tps:
            self._consumer.pause([to_ck(tp) for tp in tps])
            self._paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        if tps:
            self._consumer.resume([to_ck(tp) for tp in tps])
            self._paused.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def assign(self, tps: Iterable[TopicPartition]) -> None:
        """A group-less reader's partitions, from their start (auto.offset.reset) until
        `seek*` says otherwise."""
        self._starts = {tp: confluent_kafka.OFFSET_BEGINNING for tp in tps}
        self._apply_starts()

    def _apply_starts(self) -> None:
        self._consumer.assign([to_ck(tp, off) for tp, off in self._starts.items()])

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._positions[tp] = offset
        if tp in self._starts:  # a reader: assigned again from there
            self._starts[tp] = offset
            self._apply_starts()
            return
        try:
            self._consumer.seek(to_ck(tp, offset))
        except KafkaException as exc:
            raise project_error(exc) from exc

    def seek_to_end(self, *tps: TopicPartition) -> None:
        self._seek_logical(tps, confluent_kafka.OFFSET_END)

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self._seek_logical(tps, confluent_kafka.OFFSET_BEGINNING)

    def _seek_logical(self, tps, offset: int) -> None:
        """As kafka-python's: where the end (or start) is, is resolved by `position()` or
        by the first fetch."""
        for tp in tps or list(self._starts):
            self._starts[tp] = offset
            self._positions.pop(tp, None)
        self._apply_starts()

    def _watermarks(self, tp: TopicPartition, timeout_ms: int | None = None) -> tuple[int, int]:
        """`tp`'s first and next offsets, asked of its leader (a partition just created
        may have none for a moment: asked again until the timeout, METADATA_TIMEOUT_S
        unless told)."""
        timeout = METADATA_TIMEOUT_S if timeout_ms is None else timeout_ms / 1000
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._consumer.get_watermark_offsets(to_ck(tp), timeout=timeout)
            except KafkaException as exc:
                settling = exc.args[0].code() in PARTITION_SETTLING or exc.args[0].retriable()
                if not settling or time.monotonic() > deadline:
                    raise project_error(exc) from exc
            time.sleep(0.1)

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        """The next offset this consumer reads of `tp`: after its last record, else where
        it was placed (the start or end resolved now, and kept), else the committed
        offset, else the partition's start. With `timeout_ms=0`, only what is known
        without asking the broker (else None), as kafka-python's at that timeout."""
        if tp in self._positions:
            return self._positions[tp]
        start = self._starts.get(tp)
        if start is not None and start >= 0:
            return start
        if timeout_ms == 0:
            return None
        if start is not None:
            self._resolve_starts()
            return self._starts[tp]
        fetch_start = self.committed(tp, timeout_ms)
        if fetch_start is None:
            fetch_start = self._watermarks(tp, timeout_ms)[0]
        # Kept until a record, a seek or a revoke moves it: asked of the broker once, not
        # at every call (the loop's lag stats ask every second; asking each time held the
        # worker's drain to a fifth of kafka-python's on Apache Kafka, in the bench).
        self._positions[tp] = fetch_start
        return fetch_start

    def _resolve_starts(self) -> None:
        """Every start still at the logical end or beginning made an offset, and the
        partitions assigned again once from there."""
        for tp, start in self._starts.items():
            if start < 0:
                low, high = self._watermarks(tp)
                self._starts[tp] = high if start == confluent_kafka.OFFSET_END else low
        self._apply_starts()

    def highwater(self, tp: TopicPartition) -> int | None:
        """The end of `tp` as the last fetch said (None before one did)."""
        _, high = self._consumer.get_watermark_offsets(to_ck(tp), cached=True)
        return high if high >= 0 else None

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._watermarks(tp)[1] for tp in tps}

    # ------------------------------------------------------------------ metadata
    def topics(self) -> set[str]:
        return topic_names(self._consumer)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return partitions_of(self._consumer, topic) or None

    def close(self, autocommit: bool = False) -> None:
        """Leave the group (the revoke is served here: the listener commits what is
        pending) and release the client."""
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            logger.warning("librdkafka consumer close: %s", exc)

    def __del__(self):
        """A consumer dropped unclosed is closed here. Seen once in a test run without
        this: the garbage collector, run inside another client's `list_topics`, deallocated
        an unclosed consumer and hung in `rd_kafka_destroy_app` (17 minutes, a core busy).
        Not reproduced since (a member dropped alone is released either way): a safety
        net, not a proven fix; every consumer of the project is closed explicitly."""
        if not getattr(self, "_closed", True):
            logger.warning("a librdkafka consumer was dropped without close(): closing it")
            self._listener = None
            self.close()
