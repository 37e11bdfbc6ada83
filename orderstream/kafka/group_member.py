"""A member of a Kafka consumer group that can wait on an outage without leaving the group.

`GroupMember` is the object the batch loop (`batch_loop.py`) keeps its membership in: it
holds the loop's consumer and the offsets applied but not yet committed (committed before
partitions are revoked, dropped when they are lost), answers the rebalance callbacks
(the loop passes them on), and retries a step that failed for a transient reason with
exponential backoff. While it backs off it polls now and then with every partition
paused, so a long outage does not get it dropped from the group, and it honours a stop
request by abandoning the batch (`BatchAbandoned`); a long batch calls `keep_alive`
between its steps for the same reason. It knows nothing of what the records hold.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import Error as DatabaseError
from django.db import connections
from redis.exceptions import RedisError

from orderstream.heartbeat import Heartbeat
from orderstream.kafka.assignment import AssignmentWatch
from orderstream.kafka.driver import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaConsumer,
    KafkaError,
    MessageSizeTooLargeError,
    OffsetAndMetadata,
    RebalanceInProgressError,
    TopicPartition,
    UnknownMemberIdError,
)
from orderstream.kafka.loop_stats import LoopStats

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
# The longest poll of a retry wait during a rebalance (a stop is noticed within this), and
# the longest a long batch waits between two steps for a rebalance to end.
REBALANCE_POLL_SECONDS = 0.5
# The longest single poll of that wait: it returns within this once the rebalance ended.
REBALANCE_POLL_STEP_MS = 100
# The longest a stopping member waits for the rebalance it is in to end before it leaves
# the group (see `_finish_join_before_leaving`).
JOIN_END_BEFORE_LEAVE_SECONDS = 5.0
# How often a loop that polls nothing sends offsets still pending again (`commit_pending`).
PENDING_COMMIT_RESEND_SECONDS = 1.0


class BatchAbandoned(Exception):
    """Stop was requested while a batch waited on a retry; nothing was committed."""


class GroupMember:
    """The group membership, pending offsets and retries of one loop (see the module).
    `config` is the loop's `LoopConfig`; `stats` the loop's counters (retries are counted
    there). The loop sets `consumer` once it has built it."""

    def __init__(self, config, stats: LoopStats):
        self.config = config
        self.metrics = config.metrics
        self.stats = stats
        self.consumer: KafkaConsumer | None = None
        self.assigned = threading.Event()  # set once the group gave us our partitions
        self.assignment = AssignmentWatch(
            warn_after=config.unassigned_warn_seconds, fail_after=config.unassigned_max_seconds
        )
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict[TopicPartition, OffsetAndMetadata] = {}
        self._heartbeat = Heartbeat(config.heartbeat_file)
        self._rebalancing = False  # from a revoke or loss until the next assignment
        self._polled_at = time.monotonic()  # of the last poll, regular or paused
        self._commit_sent_at = 0.0  # monotonic time the last commit was sent

    def stop(self) -> None:
        """Ask the loop to end after the current batch (from any thread)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait `seconds`, or until a stop is asked; True when it was."""
        return self._stop.wait(seconds)

    @property
    def rebalancing(self) -> bool:
        """From a revoke or loss until the next assignment."""
        return self._rebalancing

    def partitions(self) -> set[int]:
        """The partitions of the consumed topic currently assigned to this member."""
        return set(self.assignment.partitions)

    def beat(self) -> None:
        """Touch the liveness heartbeat, unless the group has left us without partitions
        for longer than `unassigned_max_seconds` (see assignment.py)."""
        if self.assignment.alive():
            self._heartbeat.touch()

    def warn_if_unassigned(self) -> None:
        if self.assignment.stalled():
            logger.warning(
                "holding no partitions of %s for %.0fs (group %s): events of partitions"
                " nobody holds wait; the liveness check fails after %gs",
                self.config.events_topic,
                self.assignment.unassigned_for(),
                self.config.group,
                self.config.unassigned_max_seconds,
            )

    # ------------------------------------------------------------------ offsets
    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit `offsets` without waiting for the broker's answer.

        A synchronous commit took a sequential client's events longer than their whole
        handling (the worker waited for the group coordinator before its next poll). The
        offsets stay pending until the answer says committed, and every commit sends all
        pending ones, so a commit that failed goes again with the next; the revoke (also
        at close) and the assignment after a rebalance commit what is pending. Offsets the
        group took away are dropped by the rebalance callbacks: their next owner gets the
        records again.
        """
        with self._lock:
            self._pending.update(offsets)
            pending = dict(self._pending)
        self._send_commit(pending)

    def commit_pending(self) -> None:
        """Send the pending offsets again when no batch came to carry them (a turn of the
        loop that polled nothing), at most every PENDING_COMMIT_RESEND_SECONDS.

        A commit that failed after the last batch of a burst (seen on three nodes: the
        coordinator's connection at its in-flight maximum, `NodeNotReadyError`) would
        otherwise wait for the next record: the group's lag stays above 0 while the
        events are applied, and the next owner of the partitions replays them."""
        if time.monotonic() - self._commit_sent_at < PENDING_COMMIT_RESEND_SECONDS:
            return  # the common case of an idle turn: no lock, no copy
        with self._lock:
            pending = dict(self._pending)
        if pending:
            self._send_commit(pending)

    def _send_commit(self, pending: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Send the commit of `pending`; the answer comes to `_committed`."""
        self._commit_sent_at = time.monotonic()
        try:
            self.consumer.commit_async(offsets=pending, callback=self._committed)
        except KafkaError as exc:
            logger.warning("offsets not committed now (sent again with the next): %s", exc)

    def _commit_pending_and_wait(self, timeout_ms: int = 5000) -> None:
        """At the end of the loop: commit what is pending, waiting for the answer (from
        the loop's thread: a wait on the client's network thread would block it)."""
        with self._lock:
            pending = dict(self._pending)
        if not pending:
            return
        try:
            self.consumer.commit(offsets=pending, timeout_ms=timeout_ms)
        except KafkaError as exc:
            logger.warning("applied offsets not committed at the end: %s", exc)
            return
        self._forget_committed(pending)

    def _committed(self, offsets: dict[TopicPartition, OffsetAndMetadata], answer) -> None:
        """The broker's answer to a commit (called by the consumer's client)."""
        if isinstance(answer, LOST_COMMIT_ERRORS):
            # Redelivered to the partitions' next owner and answered as duplicates.
            logger.warning("offsets not committed, the group rebalanced: %s", answer)
            return
        if isinstance(answer, Exception):
            logger.warning("offsets not committed (sent again with the next): %s", answer)
            return
        self._forget_committed(offsets)

    def _forget_committed(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Drop `offsets` from the pending ones, unless a newer offset replaced them."""
        with self._lock:
            for tp, offset in offsets.items():
                if self._pending.get(tp) == offset:
                    del self._pending[tp]

    # ------------------------------------------------------------------ retries
    def retry(self, what: str, step: Callable[[], T]) -> T:
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
                    self.metrics.retry_counted(what, exc)
                    logger.warning(
                        "could not %s (attempt %d, next in %.1fs): %s", what, attempt, delay, exc
                    )
                    if isinstance(exc, DatabaseError):
                        connections[self.config.database].close()
                    if self._backoff(delay):
                        raise BatchAbandoned(what) from exc
                    delay = min(delay * 2, self.config.backoff_max)
        finally:
            if attempt:
                self.resume_partitions()

    def _backoff(self, delay: float) -> bool:
        """Wait `delay` seconds, staying in the group meanwhile; True when stop was asked.

        A retry can outlast max_poll_interval_ms. Without a poll in that time the group
        would drop this member and hand the batch to another one (which then applies it
        as a duplicate and ACKs it a second time). So the wait polls now and then, with
        every partition paused: the group keeps us, and no new records are handed out.

        While the group rebalances, the wait is spent inside poll() instead: kafka-python
        drops a join answer that arrives outside it (see `BatchLoop._pause_when_idle`), so
        a member that only looked in now and then would never get its new partitions.
        """
        deadline = time.monotonic() + delay
        step = self._poll_step()
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
            self.beat()  # backing off from an outage is alive (see heartbeat.py)

    def poll(self, *, timeout_ms: int, max_records: int) -> dict:
        """The loop's regular poll: the records, or none when the poll failed (the next
        poll, `backoff_max` later, is the retry)."""
        try:
            self._polled_at = time.monotonic()
            return self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            self.stats.retries += 1
            self.metrics.retry_counted("poll", exc)
            logger.warning("poll failed, retrying: %s", exc)
            self._stop.wait(self.config.backoff_max)
            return {}

    def close(self) -> None:
        """At the end of the loop: let a join under way end, commit what is pending, and
        close the consumer (which leaves the group)."""
        if self.consumer is None:
            return
        self._finish_join_before_leaving()
        self._commit_pending_and_wait()
        try:
            self.consumer.close(autocommit=False)
        except KafkaError as exc:
            logger.warning("consumer close failed: %s", exc)

    def _finish_join_before_leaving(self) -> None:
        """Poll, every partition paused, until the rebalance this member is in gives it its
        partitions (at most JOIN_END_BEFORE_LEAVE_SECONDS).

        A member that stops between its revoke and its assignment has a JoinGroup in flight;
        the broker answers it before the LeaveGroup sent behind it on the same connection.
        On Tansu the member that left then stayed in the group as the next generation's
        leader, never sent the assignment, and no later member ever got a partition (seen
        in the degrade test: workers restarted after a stop never consumed). Leaving from
        a finished join is what every broker handles.
        """
        self._poll_while_rebalancing(JOIN_END_BEFORE_LEAVE_SECONDS, even_when_stopping=True)
        if self._rebalancing:
            logger.warning(
                "leaving the group with its rebalance unfinished after %.0fs",
                JOIN_END_BEFORE_LEAVE_SECONDS,
            )

    def _poll_step(self) -> float:
        """Seconds between two polls of a member busy elsewhere: a third of
        max_poll_interval_ms, well within it."""
        return max(self.config.max_poll_interval_ms / 1000 / 3, 0.05)

    def keep_alive(self) -> None:
        """Between two steps of a long batch: poll, with every partition paused, once a
        third of max_poll_interval_ms has passed since the last poll, and touch the
        liveness heartbeat. While the group rebalances, stay in poll until this member has
        its partitions again (up to REBALANCE_POLL_SECONDS between two steps), so the
        group does not wait on it.

        Why, and why polls with a timeout during a rebalance:
        docs/decisions/polls-during-long-batches.md.
        """
        if self._rebalancing or time.monotonic() - self._polled_at >= self._poll_step():
            self._poll_paused()
            self._poll_while_rebalancing(REBALANCE_POLL_SECONDS, even_when_stopping=False)
        self.beat()

    def _poll_while_rebalancing(self, seconds: float, *, even_when_stopping: bool) -> None:
        """Poll, every partition paused, while this member is between a revoke and its
        assignment, for at most `seconds` (a stop request ends it unless
        `even_when_stopping`)."""
        deadline = time.monotonic() + seconds
        while self._rebalancing and time.monotonic() < deadline:
            if self.stopping and not even_when_stopping:
                return
            self._poll_paused(timeout_ms=REBALANCE_POLL_STEP_MS)

    def _poll_paused(self, timeout_ms: int = 0) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        self._polled_at = time.monotonic()
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

    def resume_partitions(self) -> None:
        consumer = self.consumer
        if consumer is not None and consumer.paused():
            consumer.resume(*consumer.paused())

    # ------------------------------------------------------------------ rebalance
    def on_partitions_revoked(self, revoked) -> None:
        """Commit what was applied for the partitions we give up (normally nothing)."""
        self._rebalancing = True
        with self._lock:
            pending = {tp: self._pending.pop(tp) for tp in revoked if tp in self._pending}
        if pending:
            logger.info("committing applied offsets before revoke: %s", pending)
            # Not waited for: the callback runs on the client's network thread.
            self.consumer.commit_async(offsets=pending)
        if revoked:
            logger.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))
        self.assignment.update(self.assignment.partitions - {tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned) -> None:
        """Take the new assignment, and commit the offsets still pending of the
        partitions kept (see `_pending_kept`)."""
        logger.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))
        self._rebalancing = False
        held = self.consumer.assignment()
        self.assignment.update({tp.partition for tp in held})
        if pending := self._pending_kept(held):
            self._send_commit(pending)  # not waited for: this runs on the client's thread
        self.assigned.set()

    def _pending_kept(self, held) -> dict[TopicPartition, OffsetAndMetadata]:
        """Keep the pending offsets of the partitions `held`, and return them.

        A batch that ended while the group rebalanced (a long batch polls meanwhile) had
        its commit refused; the partitions this member keeps are not fetched again, so
        their offsets are committed now rather than with the next batch, whenever that
        comes. The offsets of a partition that went to another member are dropped: its
        next owner gets the records again.
        """
        with self._lock:
            self._pending = {tp: o for tp, o in self._pending.items() if tp in held}
            return dict(self._pending)

    def on_partitions_lost(self, lost) -> None:
        self._rebalancing = True
        with self._lock:
            for tp in lost:
                self._pending.pop(tp, None)
        logger.warning("partitions lost: %s", sorted(tp.partition for tp in lost))
        self.assignment.update(self.assignment.partitions - {tp.partition for tp in lost})
