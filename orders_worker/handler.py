"""The order handler: a batch of event records in; results, ACKs and dead letters out.

`order_events_handle` parses every record (a bad one is rejected: a dead letter, and an
error ACK when its order_id can be read), applies the valid events in one transaction
(`services.orders_apply_batch`), writes the final state of each order to Redis in one
script call (`results.order_results_write`) and builds one ACK per event. It produces
nothing: the loop (`orderstream/kafka/batch_loop.py`) produces the outcome, and runs the
database and Redis steps through its `retry`, so a step that fails for a transient reason
is retried on its own. A step that fails for another reason (the database refuses what
some event holds, or an error no check foresaw) raises: the loop then handles the records
one at a time, and a record that still fails alone is answered by `order_event_reject`.
Each rejected record is also kept in the worker database
(`dead_letters.dead_letters_record`, a step of its own: see that module for why).

Unit tests call it with plain records (anything with topic, partition, offset, key and
value) and no broker.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta

from django.db import Error as DatabaseError
from django.db import connections

from orders_worker.dead_letters import Rejection, dead_letters_purge, dead_letters_record
from orders_worker.models import DeadLetterKind
from orders_worker.results import order_results_write
from orders_worker.services import (
    DB_ALIAS,
    EventDataRefused,
    orders_apply_batch,
    processed_events_purge,
)
from orderstream.kafka.batch_loop import BatchOutcome, Outgoing, Retry
from orderstream.log_format import log_fields
from orderstream.messages import InvalidMessage, OrderAck, OrderEvent
from orderstream.original_format import original_event_id
from orderstream.statuses import AckStatus
from orderstream.timestamps import rfc3339, utc_now

logger = logging.getLogger(__name__)

# A rejection's error text (ACK and dead-letter header) may echo the bad value: bounded.
MAX_ERROR_CHARS = 1000
# A dead letter keeps the original key and bytes up to this size, which leaves room for
# the headers within the producer's 1 MiB request; beyond it, their coordinates only.
MAX_DEAD_LETTER_BYTES = 1_000_000
# What the metrics count a rejected record as (`metrics.EVENT_OUTCOMES`): a readable event
# refused is `rejected`; a record that is no event, or failed unexpectedly, `dead_lettered`.
METRIC_OUTCOME_OF_KIND = {
    DeadLetterKind.INVALID_MESSAGE: "dead_lettered",
    DeadLetterKind.REFUSED_BY_RULES: "rejected",
    DeadLetterKind.REFUSED_BY_DATABASE: "rejected",
    DeadLetterKind.UNEXPECTED_ERROR: "dead_lettered",
}
# Seconds between two purges of old handled event ids.
PURGE_INTERVAL = 3600.0


@dataclass(frozen=True, kw_only=True)
class HandlerConfig:
    """What the order handler needs: where ACKs and dead letters go, the results' TTL."""

    ack_topic: str
    dlq_topic: str
    result_ttl: int = 0
    event_retention_seconds: int = 7 * 24 * 3600
    dead_letter_retention_seconds: int = 30 * 24 * 3600  # 0: keep them


def run_once(what: str, step):
    """A `retry` that does not retry: each step runs once (unit tests)."""
    return step()


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


def _parsed(record) -> OrderEvent | InvalidMessage:
    """The record's event, or why it is not one. An event without an event id (the Go
    original's) gets one from the record's coordinates: a redelivery is a duplicate."""
    derived_id = original_event_id(
        topic=record.topic, partition=record.partition, offset=record.offset
    )
    try:
        return OrderEvent.from_bytes(record.value, event_id_if_missing=derived_id)
    except InvalidMessage as exc:
        return exc
    except (RecursionError, ValueError, TypeError) as exc:
        return InvalidMessage(f"unreadable message: {exc!r}")


def _rejection(
    record, error: str, item: OrderEvent | InvalidMessage, config: HandlerConfig
) -> BatchOutcome:
    """A rejected record's dead letter, and its error ACK when the order_id is known (with
    the event's version when the event could be read)."""
    order_id, event_id = item.order_id, item.event_id
    error = bounded_error(error)
    logger.warning(
        "rejected message %s[%d]@%d key=%r: %s",
        record.topic,
        record.partition,
        record.offset,
        record.key,
        error,
        extra=log_fields(order_id=order_id, event_id=event_id, record=record),
    )
    acks = []
    if order_id:
        version = item.version if isinstance(item, OrderEvent) else None
        ack = OrderAck(
            event_id, order_id, AckStatus.REJECTED, rfc3339(utc_now()), error=error, version=version
        )
        acks.append(Outgoing(config.ack_topic, order_id.encode(), ack.to_bytes()))
    return BatchOutcome(acks=acks, dead_letters=[dead_letter(record, error, config.dlq_topic)])


def _ack_of(record, event: OrderEvent, ack: OrderAck, config: HandlerConfig) -> Outgoing:
    """The ACK record: on the event's partition under its key; for an event that came
    without a key (the Go original's, on any partition) under its order_id, so the ACKs
    of one order keep one partition."""
    if record.key is None:
        return Outgoing(config.ack_topic, event.order_id.encode(), ack.to_bytes())
    return Outgoing(config.ack_topic, record.key, ack.to_bytes(), partition=record.partition)


def order_events_handle(
    *, records: list, config: HandlerConfig, retry: Retry = run_once
) -> BatchOutcome:
    """Apply the events of `records` (in order) and say what to produce.

    The outcome's `results` are `services.EventResult`s of the events that parsed, in
    order; its ACKs and dead letters follow the records' order. Raises what a step raised
    when it is not transient (`EventDataRefused`, an unexpected error): see the module.
    """
    parsed = [(record, _parsed(record)) for record in records]
    events = [item for _, item in parsed if isinstance(item, OrderEvent)]
    processed_at = utc_now()
    results = retry(
        "apply the batch to PostgreSQL",
        lambda: orders_apply_batch(events=events, processed_at=processed_at),
    )
    acks: list[Outgoing] = []
    dead_letters: list[Outgoing] = []
    rejections: list[Rejection] = []
    outcomes: Counter[str] = Counter()
    final_states = {}
    stamp = rfc3339(processed_at)
    result_of = iter(results)
    for record, item in parsed:
        if isinstance(item, InvalidMessage):
            rejection = Rejection(record, item.reason, DeadLetterKind.INVALID_MESSAGE)
        elif (result := next(result_of)).rejected:
            rejection = Rejection(record, result.error, DeadLetterKind.REFUSED_BY_RULES)
        else:
            final_states[item.order_id] = result.state
            if logger.isEnabledFor(logging.DEBUG):  # one line per event: skip the fields
                logger.debug(
                    "event %s of order %s at %s[%d]@%d: %s, ACK %s",
                    item.event_id,
                    item.order_id,
                    record.topic,
                    record.partition,
                    record.offset,
                    result.outcome,
                    result.ack_status,
                    extra=log_fields(order_id=item.order_id, event_id=item.event_id, record=record),
                )
            ack = OrderAck(
                item.event_id, item.order_id, result.ack_status, stamp, version=item.version
            )
            acks.append(_ack_of(record, item, ack, config))
            outcomes[result.outcome.value] += 1
            continue
        rejected = _rejection(record, rejection.error, item, config)
        acks.extend(rejected.acks)
        dead_letters.extend(rejected.dead_letters)
        rejections.append(rejection)
        outcomes[METRIC_OUTCOME_OF_KIND[rejection.kind]] += 1

    _record(rejections, retry)
    retry(
        "write results to Redis",
        lambda: order_results_write(states=final_states.values(), ttl=config.result_ttl),
    )
    return BatchOutcome(
        results=results, acks=acks, dead_letters=dead_letters, outcomes=dict(outcomes)
    )


def _record(rejections: list[Rejection], retry: Retry) -> None:
    """Keep the rejected records in the worker database (retried while it is down)."""
    if not rejections:
        return
    bounded = [Rejection(r.record, bounded_error(r.error), r.kind) for r in rejections]
    failed_at = utc_now()
    retry(
        "record dead letters in PostgreSQL",
        lambda: dead_letters_record(rejections=bounded, failed_at=failed_at),
    )


def order_event_reject(
    *, record, error: Exception, config: HandlerConfig, retry: Retry = run_once
) -> BatchOutcome:
    """The answer to a record that failed alone with `error`: a dead letter and an error
    ACK (`rejected`) when its order_id can be read; the record is kept in the worker
    database. A refusal of the database is expected (logged as a warning); any other error
    is logged with its traceback."""
    if isinstance(error, EventDataRefused):
        reason = error.reason
        kind = DeadLetterKind.REFUSED_BY_DATABASE
    else:
        logger.error(
            "message %s[%d]@%d key=%r failed unexpectedly",
            record.topic,
            record.partition,
            record.offset,
            record.key,
            exc_info=error,
            extra=log_fields(record=record),
        )
        reason = f"could not be processed: {type(error).__name__}: {error}"[:500]
        kind = DeadLetterKind.UNEXPECTED_ERROR
    outcome = _rejection(record, reason, _parsed(record), config)
    _record([Rejection(record, reason, kind)], retry)
    return replace(outcome, outcomes={METRIC_OUTCOME_OF_KIND[kind]: 1})


class OrderEventsHandler:
    """The `batch_loop.BatchHandler` of the order worker."""

    def __init__(self, config: HandlerConfig, *, clock=time.monotonic):
        self.config = config
        self._clock = clock
        self._purged_at = float("-inf")

    def handle(self, records: list, retry: Retry) -> BatchOutcome:
        return order_events_handle(records=records, config=self.config, retry=retry)

    def reject(self, record, error: Exception, retry: Retry) -> BatchOutcome:
        return order_event_reject(record=record, error=error, config=self.config, retry=retry)

    def periodic(self) -> None:
        """Forget handled event ids older than `event_retention_seconds` and dead letters
        older than `dead_letter_retention_seconds` (0: kept), each once per PURGE_INTERVAL;
        a database error only postpones it."""
        now = self._clock()
        if now - self._purged_at < PURGE_INTERVAL:
            return
        self._purged_at = now
        _purge_safely("event ids", processed_events_purge, self.config.event_retention_seconds)
        retention = self.config.dead_letter_retention_seconds
        if retention:
            _purge_safely("dead letters", dead_letters_purge, retention)


def _purge_safely(what: str, purge, retention: int) -> None:
    """`purge` what is older than `retention` seconds, logging what it forgot; a database
    error is logged and the connection closed (the next interval tries again)."""
    try:
        purged = purge(older_than=timedelta(seconds=retention), now=utc_now())
    except DatabaseError as exc:
        connections[DB_ALIAS].close()
        logger.warning("could not purge old %s (will retry later): %s", what, exc)
        return
    if purged:
        logger.info("forgot %d %s older than %ss", purged, what, retention)
