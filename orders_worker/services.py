"""Apply a batch of order events to the worker database in one transaction.

`orders_apply_batch` reads every order and event_id the batch touches in one query,
decides each event with the pure `rules.order_event_decide` in order, and writes the final
state of each changed order and the handled event_ids in one statement
(`batch_statements`). The order upsert only ever replaces a row with a higher `version`,
so even two workers racing on one order (during a rebalance) cannot move it backwards; an
order the other worker wrote first is read again, with the events that worker recorded:
those answer as it recorded them, the others from the stored state, like stale events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DataError, IntegrityError, connections, transaction
from django.db import Error as DatabaseError

from orders_worker.batch_statements import batch_write, recorded_statuses_set, stored_read
from orders_worker.models import ProcessedEvent
from orders_worker.rules import OrderState, UpsertOutcome, order_event_decide, order_stale_answer
from orderstream.messages import InvalidMessage, OrderEvent
from orderstream.statuses import AckStatus

logger = logging.getLogger(__name__)

DB_ALIAS = "worker"
# Database errors caused by the data of one event; anything else is retried. PostgreSQL
# reports a value beyond its limits (an index row too large, say) as SQLSTATE class 54,
# which the driver files under OperationalError, next to a lost connection.
DATA_ERRORS = (DataError, IntegrityError)
DATA_SQLSTATE_CLASSES = ("22", "23", "54")


class EventDataRefused(Exception):
    """PostgreSQL refused what some event of the batch holds (a value it cannot store):
    retrying cannot help. Nothing of the batch was applied; `reason` is the rejection
    text for the event, once it is applied alone (the loop isolates it)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EventResult:
    """What one event came to: the ACK status and the order state after it, or an error."""

    event: OrderEvent
    ack_status: str
    state: OrderState | None = None
    outcome: UpsertOutcome | None = None
    error: str | None = None

    @property
    def rejected(self) -> bool:
        return self.error is not None


def _answer_from_stored(
    cursor, results: list[EventResult], order_ids: set[str], recorded: set[str]
) -> list[EventResult]:
    """Answer the events of `order_ids` from their stored rows, like stale events.

    These rows hold a version at least as new as the one this batch computed: another
    worker wrote them after our read (two workers overlapping during a rebalance). An
    event handled before keeps the ACK status it got the first time: the re-read asks
    for the events of these orders that this batch did not record (`recorded`), so an
    event the other worker recorded meanwhile is a duplicate answered as it recorded it
    (a create it applied stays `created`, though its row now holds a later update).
    """
    theirs = {
        r.event.event_id
        for r in results
        if r.event.order_id in order_ids and r.event.event_id not in recorded
    }
    stored, seen = stored_read(cursor, list(order_ids), list(theirs))
    logger.warning(
        "orders written meanwhile with a newer version, answered from the database: %s",
        sorted(order_ids),
    )
    answers: dict[str, EventResult] = {}
    answered = []
    for result in results:
        event = result.event
        if result.rejected or event.order_id not in order_ids:
            answered.append(result)
            continue
        if event.event_id not in answers:
            state = stored[event.order_id]
            if event.event_id in seen:
                answers[event.event_id] = EventResult(
                    event, seen[event.event_id], state, UpsertOutcome.DUPLICATE
                )
            elif result.outcome is UpsertOutcome.DUPLICATE:
                answers[event.event_id] = EventResult(
                    event, result.ack_status, state, UpsertOutcome.DUPLICATE
                )
            else:
                decision = order_stale_answer(stored=state, event=event)
                answers[event.event_id] = EventResult(
                    event, decision.ack_status, state, decision.outcome
                )
        answered.append(answers[event.event_id])
    return answered


def _events_to_record(results: list[EventResult]) -> list[tuple]:
    """(event_id, order_id, version, ack_status) of each event applied or answered (the
    last result of an event repeated in the batch); an event without a version (the Go
    original's) is recorded with the order's version after it."""
    rows = {
        r.event.event_id: (
            r.event.event_id,
            r.event.order_id,
            r.event.version if r.event.version is not None else r.state.version,
            r.ack_status,
        )
        for r in results
        if not r.rejected
    }
    return list(rows.values())


def _correct_recorded(cursor, results: list[EventResult], recorded: set[str], lost: set[str]):
    """Give the events of `lost` orders that this batch recorded the ACK status they were
    answered with after all (`_answer_from_stored`)."""
    answers = {
        r.event.event_id: r.ack_status
        for r in results
        if not r.rejected and r.event.order_id in lost and r.event.event_id in recorded
    }
    if answers:
        recorded_statuses_set(cursor, answers)


def _apply(events: list[OrderEvent], processed_at: datetime) -> list[EventResult]:
    connection = connections[DB_ALIAS]
    # The raw psycopg2 cursor; errors still become Django's.
    with transaction.atomic(using=DB_ALIAS), connection.cursor() as wrapper:
        cursor = wrapper.cursor
        with connection.wrap_database_errors:
            states, seen = stored_read(
                cursor, list({e.order_id for e in events}), list({e.event_id for e in events})
            )
        changed: dict[str, OrderState] = {}
        results = []
        for event in events:
            stored = states.get(event.order_id)
            if event.event_id in seen and stored is not None:
                # Handled before: answer exactly as the first time, change nothing.
                results.append(
                    EventResult(event, seen[event.event_id], stored, UpsertOutcome.DUPLICATE)
                )
                continue
            try:
                decision = order_event_decide(stored=stored, event=event, processed_at=processed_at)
            except InvalidMessage as exc:
                results.append(EventResult(event, AckStatus.REJECTED, error=exc.reason))
                continue
            states[event.order_id] = decision.state
            if decision.changed:
                changed[event.order_id] = decision.state
            seen[event.event_id] = decision.ack_status
            results.append(
                EventResult(event, decision.ack_status, decision.state, decision.outcome)
            )
        with connection.wrap_database_errors:
            written, recorded = batch_write(
                cursor, list(changed.values()), _events_to_record(results), processed_at
            )
            if lost := changed.keys() - written:
                results = _answer_from_stored(cursor, results, lost, recorded)
                _correct_recorded(cursor, results, recorded, lost)
    return results


def _refused_for_its_data(exc: DatabaseError) -> bool:
    """Whether the database refused a value some event holds (retrying cannot help), not
    because it is unavailable (retried by the caller)."""
    if isinstance(exc, DATA_ERRORS):
        return True
    sqlstate = getattr(exc.__cause__, "pgcode", None) or ""
    return sqlstate[:2] in DATA_SQLSTATE_CLASSES


def orders_apply_batch(*, events: list[OrderEvent], processed_at: datetime) -> list[EventResult]:
    """Apply `events` in order, in one transaction; one result per event, same order.

    An event the rules refuse (`InvalidMessage`) gets a rejected result, the others are
    applied. When PostgreSQL refuses what some event holds, nothing is applied and
    `EventDataRefused` is raised: the caller isolates the event by applying the events
    one at a time (the worker's loop does, see orderstream/kafka/batch_loop.py). Connection
    and other database errors propagate: the caller retries the whole batch, which is safe because
    the batch is one transaction.
    """
    if not events:
        return []
    try:
        return _apply(events, processed_at)
    except DatabaseError as exc:
        if not _refused_for_its_data(exc):
            raise
        reason = f"refused by the database: {str(exc).strip().splitlines()[0]}"
        logger.warning("batch of %d events refused by the database: %s", len(events), reason)
        raise EventDataRefused(reason) from exc


def processed_events_purge(*, older_than: timedelta, now: datetime) -> int:
    """Forget handled event_ids older than `older_than`; return how many were deleted."""
    deleted, _ = (
        ProcessedEvent.objects.using(DB_ALIAS).filter(processed_at__lt=now - older_than).delete()
    )
    return deleted
