"""One relay pass: publish the due outbox rows, each order's events in version order.

A pass locks its rows with `SELECT ... FOR UPDATE SKIP LOCKED`, so several relays can run
at once, holds at most OUTBOX_RELAY_BATCH rows and OUTBOX_RELAY_BATCH_BYTES of events (one
event always), and takes of each order only the oldest unpublished row (its *head*): a
newer event of an order whose older one is still waiting (locked by another relay, or
backing off after a failure) is not sent before it. The rows stay locked until the broker
answered. A row the broker refuses for good (PERMANENT_ERRORS, e.g. too large), or one
over the event size limit (`event_limit`, not sent), is parked (`parked_at`, an ERROR log
line) instead of retried forever, and stops holding back the newer events of its order;
`outbox_operations` puts parked rows back.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from orders_api.event_limit import event_size_limit
from orders_api.models import OutboxEvent
from orders_api.relay.metrics import relay_rows_counted
from orderstream.kafka import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from orderstream.log_format import log_fields

logger = logging.getLogger(__name__)


class EventOverLimit(Exception):
    """The event is larger than the effective limit (`event_limit`): the topic refuses it.
    The relay parks it without sending it (a broker's refusal would also fail the other
    records of the request)."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"the event is {size} bytes, more than the limit of {limit}")


# Refusals of the record itself: sending it again can never succeed, so the relay parks
# the row. Other non-retriable errors (authorisation, OutOfOrderSequenceNumber) are about
# the producer or the cluster, not the row: those rows are retried with backoff (and the
# producer renewed), so they go out once the cause is fixed.
PERMANENT_ERRORS = (
    EventOverLimit,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    CorruptRecordError,
)
MAX_ERROR_CHARS = 1000


def relay_backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones (exponential, capped)."""
    base = max(settings.OUTBOX_RELAY_INTERVAL, 0.1)
    return min(settings.OUTBOX_RELAY_MAX_BACKOFF, base * 2 ** max(attempts - 1, 0))


@functools.cache
def _due_heads_sql(table: str = OutboxEvent._meta.db_table) -> str:
    """The pass's query, written once; its older-row check reads "waiting" as
    `coalesce(published_at, parked_at) IS NULL` on purpose (an unanalyzed table made the
    other form quadratic): docs/decisions/relay-query-and-unanalyzed-tables.md.

    `locked` takes the due heads (ids and sizes only: `octet_length` of a text reads its
    size without decompressing it); the rows returned whole are those within the pass's
    bytes, and always the first. The rows beyond stay locked until the pass ends, then
    come due again for the next pass (of this relay or another).
    """
    quoted = connection.ops.quote_name(table)
    return (
        f"WITH locked AS (SELECT head.id, octet_length(head.value) AS size FROM {quoted} head "
        "WHERE head.published_at IS NULL AND head.parked_at IS NULL "
        "AND head.next_attempt_at <= %s "
        f"AND NOT EXISTS (SELECT 1 FROM {quoted} older "
        "WHERE coalesce(older.published_at, older.parked_at) IS NULL "
        "AND older.order_id = head.order_id AND older.version < head.version) "
        "ORDER BY head.id LIMIT %s FOR UPDATE OF head SKIP LOCKED), "
        "within AS (SELECT id, sum(size) OVER (ORDER BY id) AS running, "
        "row_number() OVER (ORDER BY id) AS n FROM locked) "
        f"SELECT * FROM {quoted} WHERE id = ANY(ARRAY(SELECT id FROM within "
        "WHERE n = 1 OR running <= %s)) ORDER BY id"
    )


def _due_heads(batch_size: int, batch_bytes: int) -> list[OutboxEvent]:
    """Lock up to `batch_size` due rows, oldest first, each the oldest waiting row of its
    order (rows another relay holds are skipped); return those within `batch_bytes`."""
    params = [timezone.now(), batch_size, batch_bytes]
    return list(OutboxEvent.objects.raw(_due_heads_sql(), params))


def _mark_published(ids: list[int], now) -> None:
    table = connection.ops.quote_name(OutboxEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET published_at = %s WHERE id = ANY(%s)", [now, ids])


def _send_all(producer, rows: list[OutboxEvent]) -> tuple[list[int], list[tuple]]:
    """Send `rows` and wait for the broker (up to OUTBOX_PUBLISH_TIMEOUT); return the ids
    it confirmed and the (row, error) pairs it did not."""
    sent, failed = [], []
    for row in rows:
        value = row.value.encode()
        limit = event_size_limit(topic=row.topic)
        if len(value) > limit:  # accepted before the topic's limit was lowered
            failed.append((row, EventOverLimit(len(value), limit)))
            continue
        try:
            future = producer.send(row.topic, key=str(row.order_id).encode(), value=value)
        except KafkaError as exc:
            failed.append((row, exc))
            continue
        sent.append((row, future))
    if sent:
        try:
            producer.flush(timeout=settings.OUTBOX_PUBLISH_TIMEOUT)
        except KafkaError as exc:
            logger.warning("outbox relay: flush did not complete: %s", exc)
    published = []
    for row, future in sent:
        try:
            metadata = future.get(timeout=0.01)
        except KafkaError as exc:  # refused, or not confirmed in time (KafkaTimeoutError)
            failed.append((row, exc))
        else:
            published.append(row.id)
            if logger.isEnabledFor(logging.DEBUG):  # one line per event: skip the fields
                logger.debug(
                    "outbox relay published %s v%d (event %s) at %s[%d]@%d",
                    row.order_id,
                    row.version,
                    row.event_id,
                    metadata.topic,
                    metadata.partition,
                    metadata.offset,
                    extra=log_fields(order_id=row.order_id, event_id=row.event_id, record=metadata),
                )
    return published, failed


def _record_failures(failed: list[tuple], now) -> tuple[int, int]:
    """Park the rows refused for good, schedule the others' retry; return how many are
    retried and how many parked."""
    retried = 0
    for row, exc in failed:
        row.attempts += 1
        row.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        if isinstance(exc, PERMANENT_ERRORS):
            row.parked_at = now
            logger.error(
                "outbox relay parked %s v%d (event %s): the broker refuses it for good: %s",
                row.order_id,
                row.version,
                row.event_id,
                row.last_error,
                extra=log_fields(order_id=row.order_id, event_id=row.event_id),
            )
        else:
            row.next_attempt_at = now + timedelta(seconds=relay_backoff(row.attempts))
            retried += 1
    if failed:
        OutboxEvent.objects.bulk_update(
            [row for row, _ in failed], ["attempts", "next_attempt_at", "last_error", "parked_at"]
        )
    return retried, len(failed) - retried


def outbox_relay_once(*, producer, batch_size: int | None = None) -> tuple[int, int]:
    """Publish one batch of due rows; return (published, failed). Parked rows are not
    counted as failed."""
    with transaction.atomic():
        rows = _due_heads(
            batch_size or settings.OUTBOX_RELAY_BATCH, settings.OUTBOX_RELAY_BATCH_BYTES
        )
        if not rows:
            return 0, 0
        published, failed = _send_all(producer, rows)
        now = timezone.now()
        if published:
            _mark_published(published, now)
        retried, parked = _record_failures(failed, now)
    relay_rows_counted(published=len(published), retried=retried, parked=parked)
    if published:
        logger.info("outbox relay published %d event(s)", len(published))
    if retried:
        first_error = next(exc for _, exc in failed if not isinstance(exc, PERMANENT_ERRORS))
        logger.warning("outbox relay could not publish %d event(s): %s", retried, first_error)
    return len(published), retried
