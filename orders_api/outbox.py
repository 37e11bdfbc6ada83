"""The transactional outbox: events written with their order, published after commit.

`outbox_event_add` writes the event row in the caller's transaction (or
`outbox_event_build` gives it to a caller that inserts it with its order) and
`outbox_publish_on_commit` hands it to this process's `OutboxPublisher` once the
transaction has committed (key = order_id). A publication the broker confirmed is marked
`published_at` by a background marker, in batches. Whatever is still unpublished when its
`next_attempt_at` comes (broker outage, crash between commit and publish) is published by
`OutboxRelay`, a thread with backoff that several processes can run at once: each pass
locks its rows with `SELECT ... FOR UPDATE SKIP LOCKED`. A row the broker refuses for good
(e.g. too large) is parked (`parked_at`, an ERROR log line) instead of retried forever.
The relay also purges published rows older than OUTBOX_RETENTION_SECONDS and expired
idempotency keys.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from orderstream import messages
from orderstream.kafka import make_producer
from orderstream.messages import OrderEvent, rfc3339
from orderstream.order_fields import external_id_of

from .exceptions import ApplicationError
from .models import Order, OutboxEvent

logger = logging.getLogger(__name__)

MARK_BATCH = 1000
# Confirmations gather this long before one UPDATE marks them all (one query per event
# showed as a sixth of an API process's Python time under load; the relay's grace is longer).
MARK_INTERVAL = 0.2

# Refusals of the record itself: sending it again can never succeed, so the relay parks
# the row. Other non-retriable errors (authorisation, OutOfOrderSequenceNumber) are about
# the producer or the cluster, not the row: those rows are retried with backoff (and the
# producer renewed), so they go out once the cause is fixed.
PERMANENT_ERRORS = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    CorruptRecordError,
)


class PendingEvent(NamedTuple):
    """An event built for the outbox: the message, its encoded value, its row (unsaved)."""

    event: OrderEvent
    value: bytes
    row: OutboxEvent


def outbox_event_build(*, order: Order, operation: str) -> PendingEvent:
    """The event of `operation` on `order`, encoded once, and its outbox row (not saved).

    Raises ApplicationError (413, field `payload`) for an event larger than the broker
    takes: it could never be published, so the change must not be accepted.
    """
    now = timezone.now()
    event = OrderEvent(
        event_id=str(uuid.uuid4()),
        order_id=str(order.order_id),
        user_id=str(order.user_id),
        payload=order.payload,
        status=operation,
        version=order.version,
        timestamp=rfc3339(now),
        external_id=external_id_of(order.payload),
    )
    value = event.to_bytes()
    limit = messages.MAX_EVENT_BYTES
    if len(value) > limit:
        raise ApplicationError(
            "payload",
            f"the order's event would be {len(value)} bytes, more than the limit of {limit}",
            status_code=413,
            code="too_large",
        )
    row = OutboxEvent(
        event_id=event.event_id,
        order_id=order.order_id,
        version=order.version,
        topic=settings.ORDERS_EVENTS_TOPIC,
        value=value.decode(),
        created_at=now,
        # The request publishes right after commit; the relay steps in after the grace.
        next_attempt_at=now + timedelta(seconds=settings.OUTBOX_RELAY_GRACE_SECONDS),
    )
    return PendingEvent(event, value, row)


def outbox_event_add(*, order: Order, operation: str) -> PendingEvent:
    """Write the event of `operation` on `order` to the outbox (caller's transaction)."""
    pending = outbox_event_build(order=order, operation=operation)
    pending.row.save(force_insert=True)
    return pending


def outbox_publish_on_commit(*, pending: PendingEvent, confirm: bool) -> None:
    """Publish `pending` once the current transaction commits (never before).

    With `confirm`, the commit hook waits (up to OUTBOX_PUBLISH_TIMEOUT) for the broker
    to confirm, so the caller can release a per-order lock knowing the order of events
    on the partition. A failed publication is logged and left to the relay.
    """
    from .runtime import publisher

    topic = settings.ORDERS_EVENTS_TOPIC
    event = pending.event

    def publish() -> None:
        # Never raise from here: the order is committed, the request must still answer.
        try:
            publisher().publish(event=event, value=pending.value, topic=topic, confirm=confirm)
        except Exception:
            logger.exception(
                "publish of %s v%d failed, left to the relay", event.order_id, event.version
            )

    transaction.on_commit(publish)


@contextlib.contextmanager
def outbox_order_lock(*, order_id: uuid.UUID):
    """Serialise commit-and-publish of one order's events across processes.

    A session-level PostgreSQL advisory lock on the order, held from before the row lock
    until the broker confirmed the event or OUTBOX_PUBLISH_TIMEOUT passed, so two
    concurrent updates reach the partition in version order while the broker answers in
    time (an event left to the relay may arrive after a newer one: the worker keeps the
    newest version, only its ACK statuses may be mislabelled).
    """
    key = int.from_bytes(order_id.bytes[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def relay_backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones (exponential, capped)."""
    base = max(settings.OUTBOX_RELAY_INTERVAL, 0.1)
    return min(settings.OUTBOX_RELAY_MAX_BACKOFF, base * 2 ** max(attempts - 1, 0))


def outbox_relay_once(*, producer, batch_size: int | None = None) -> tuple[int, int]:
    """Publish one batch of due, unpublished rows; return (published, failed).

    The rows stay locked (SKIP LOCKED for other relays) until the broker answered, and
    are sent in id order through one producer, so one order's events keep their order.
    A row the broker refuses for good (PERMANENT_ERRORS) is parked (`parked_at`, logged
    at ERROR) instead of being retried forever; parked rows are not counted as failed.
    """
    batch_size = batch_size or settings.OUTBOX_RELAY_BATCH
    timeout = settings.OUTBOX_PUBLISH_TIMEOUT
    with transaction.atomic():
        rows = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(
                published_at__isnull=True,
                parked_at__isnull=True,
                next_attempt_at__lte=timezone.now(),
            )
            .order_by("id")[:batch_size]
        )
        if not rows:
            return 0, 0
        sent, failed = [], []
        for row in rows:
            try:
                future = producer.send(
                    row.topic, key=str(row.order_id).encode(), value=row.value.encode()
                )
            except KafkaError as exc:
                failed.append((row, exc))
                continue
            sent.append((row, future))
        if sent:
            with contextlib.suppress(KafkaError):
                producer.flush(timeout=timeout)
        published = []
        for row, future in sent:
            try:
                future.get(timeout=0.01)
            except KafkaError as exc:
                failed.append((row, exc))
            else:
                published.append(row.id)
        now = timezone.now()
        if published:
            OutboxEvent.objects.filter(id__in=published).update(published_at=now)
        parked = [(row, exc) for row, exc in failed if isinstance(exc, PERMANENT_ERRORS)]
        failed = [(row, exc) for row, exc in failed if not isinstance(exc, PERMANENT_ERRORS)]
        for row, exc in failed:
            row.attempts += 1
            row.next_attempt_at = now + timedelta(seconds=relay_backoff(row.attempts))
            row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
        for row, exc in parked:
            row.attempts += 1
            row.parked_at = now
            row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            logger.error(
                "outbox relay parked %s v%d (event %s): the broker refuses it for good: %s",
                row.order_id,
                row.version,
                row.event_id,
                row.last_error,
            )
        if failed or parked:
            OutboxEvent.objects.bulk_update(
                [row for row, _ in failed + parked],
                ["attempts", "next_attempt_at", "last_error", "parked_at"],
            )
    if published:
        logger.info("outbox relay published %d event(s)", len(published))
    if failed:
        logger.warning("outbox relay could not publish %d event(s): %s", len(failed), failed[0][1])
    return len(published), len(failed)


def outbox_purge(*, older_than_seconds: int | None = None) -> int:
    """Delete published rows older than the retention; return how many."""
    seconds = (
        settings.OUTBOX_RETENTION_SECONDS if older_than_seconds is None else older_than_seconds
    )
    cutoff = timezone.now() - timedelta(seconds=seconds)
    deleted, _ = OutboxEvent.objects.filter(
        published_at__isnull=False, published_at__lt=cutoff
    ).delete()
    return deleted


class OutboxPublisher:
    """This process's producer for order events, and the marker of confirmed rows.

    The producer is built on first use, not here: with no broker answering, building one
    fails after OUTBOX_PUBLISH_TIMEOUT (kafka-python probes the broker in the
    constructor), and the process must serve requests anyway. A request retries the build
    at most every BUILD_RETRY_SECONDS; the relay retries it on every pass.
    """

    BUILD_RETRY_SECONDS = 5.0

    def __init__(self):
        self.brokers = tuple(settings.KAFKA_BROKERS)
        self.producer = None
        self._build_lock = threading.Lock()
        self._build_after = 0.0  # monotonic time before which requests do not rebuild
        self._confirmed: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._marker = threading.Thread(target=self._mark_loop, name="outbox-marker", daemon=True)
        self._marker.start()

    @staticmethod
    def _new_producer():
        bound_ms = int(settings.OUTBOX_PUBLISH_TIMEOUT * 1000)
        return make_producer(
            client_id="orderstream-api", max_block_ms=bound_ms, bootstrap_timeout_ms=bound_ms
        )

    def ensure_producer(self, *, force: bool = False):
        """The producer, built now if there is none; None when no broker answers (yet).

        Without `force` (a request), a build that failed less than BUILD_RETRY_SECONDS
        ago is not tried again: the request leaves its event to the relay.
        """
        producer = self.producer
        if producer is not None:
            return producer
        with self._build_lock:
            if self.producer is None and (force or time.monotonic() >= self._build_after):
                try:
                    self.producer = self._new_producer()
                except Exception as exc:
                    self._build_after = time.monotonic() + self.BUILD_RETRY_SECONDS
                    logger.warning("outbox publisher: no producer for %s: %s", self.brokers, exc)
            return self.producer

    def renew_producer(self) -> None:
        """Replace the producer: after a broker restart an idempotent producer's sequence
        state can be refused for good (OutOfOrderSequenceNumber)."""
        with self._build_lock:
            old, self.producer = self.producer, None
        if old is not None:
            with contextlib.suppress(Exception):
                old.close(timeout=1)
        logger.warning("outbox publisher: renewing the producer after repeated failures")
        self.ensure_producer(force=True)

    def publish(self, *, event: OrderEvent, value: bytes, topic: str, confirm: bool) -> bool:
        """Send `event` (encoded as `value`); with `confirm`, wait for the broker. False
        when it failed (yet)."""
        producer = self.ensure_producer()
        if producer is None:
            logger.warning(
                "publish of %s v%d left to the relay: no producer", event.order_id, event.version
            )
            return False
        try:
            future = producer.send(topic, key=event.key, value=value)
        except KafkaError as exc:
            logger.warning(
                "publish of %s v%d failed, left to the relay: %s",
                event.order_id,
                event.version,
                exc,
            )
            return False
        future.add_callback(self._on_confirmed, event.event_id)
        future.add_errback(self._on_failed, event)
        if not confirm:
            return True
        try:
            future.get(timeout=settings.OUTBOX_PUBLISH_TIMEOUT)
        except KafkaError:
            return False  # logged by _on_failed, or still in flight: the relay steps in
        return True

    def _on_confirmed(self, event_id: str, _metadata) -> None:
        self._confirmed.put(event_id)

    def _on_failed(self, event: OrderEvent, exc: BaseException) -> None:
        logger.warning(
            "publish of %s v%d failed, left to the relay: %s", event.order_id, event.version, exc
        )

    def _mark_loop(self) -> None:
        """Mark confirmed events as published, many per UPDATE."""
        try:
            while True:
                first = self._confirmed.get()
                if first is None:
                    return
                time.sleep(MARK_INTERVAL)
                batch = [first]
                while len(batch) < MARK_BATCH:
                    try:
                        item = self._confirmed.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self._mark(batch)
                        return
                    batch.append(item)
                self._mark(batch)
        finally:
            connection.close()

    def _mark(self, event_ids: list[str]) -> None:
        try:
            close_old_connections()
            OutboxEvent.objects.filter(event_id__in=event_ids, published_at__isnull=True).update(
                published_at=timezone.now()
            )
        except Exception:
            # The rows stay unpublished; the relay republishes them (duplicates are harmless).
            logger.exception("could not mark %d outbox row(s) as published", len(event_ids))

    def close(self, timeout: float = 5.0) -> None:
        producer = self.producer
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.flush(timeout=timeout)
        self._confirmed.put(None)
        self._marker.join(timeout)
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=timeout)


class OutboxRelay(threading.Thread):
    """Background thread: publish due outbox rows with backoff; purge old rows now and then."""

    # Consecutive failed passes after which the publisher's producer is replaced.
    RENEW_AFTER = 3

    def __init__(self, publisher: OutboxPublisher):
        super().__init__(name="outbox-relay", daemon=True)
        self.publisher = publisher
        self.stopping = threading.Event()

    def run(self) -> None:
        failures = 0
        next_purge = 0.0
        try:
            while not self.stopping.is_set():
                delay = settings.OUTBOX_RELAY_INTERVAL
                try:
                    close_old_connections()
                    producer = self.publisher.ensure_producer(force=True)
                    if producer is None:
                        published, failed = 0, 1  # no broker yet: back off, try again
                    else:
                        published, failed = outbox_relay_once(producer=producer)
                    failures = failures + 1 if failed else 0
                    if producer is not None and failures and failures % self.RENEW_AFTER == 0:
                        self.publisher.renew_producer()
                    if published >= settings.OUTBOX_RELAY_BATCH and not failed:
                        delay = 0  # a backlog: go on at once
                    if time.monotonic() >= next_purge:
                        self.purge()
                        next_purge = time.monotonic() + settings.OUTBOX_PURGE_INTERVAL
                except Exception:
                    failures += 1
                    logger.exception("outbox relay pass failed")
                if failures:
                    delay = relay_backoff(failures)
                self.stopping.wait(delay)
        finally:
            connection.close()

    def purge(self) -> None:
        from .idempotency import idempotency_purge

        purged = outbox_purge()
        expired = idempotency_purge()
        if purged or expired:
            logger.info("purged %d published outbox row(s), %d idempotency key(s)", purged, expired)

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout)
