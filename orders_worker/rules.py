"""The worker's pure upsert rules of contract.md.

No database, no Kafka: `order_event_decide` takes the stored state (or None) and one event
and says what the order becomes and what the ACK reports. It is not the API's
`orders_api.services.order_upsert`, which writes the API's row and the outbox event; this
one decides what an event does to the worker's copy. The fields derived from a payload
(amount, bucket, external id) are in `orderstream.order_fields`, shared with the API.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from orderstream.messages import InvalidMessage, OrderEvent
from orderstream.order_fields import InvalidAmount, order_amount, order_bucket
from orderstream.statuses import AckStatus, Operation, ProcessedStatus
from orderstream.timestamps import event_time

# The `version` column is a PostgreSQL integer.
MAX_VERSION = 2**31 - 1


@dataclass(frozen=True, slots=True)
class OrderState:
    """The worker's view of one order, as stored in `ProcessedOrder`."""

    order_id: str
    user_id: str
    amount: Decimal
    status: str  # ProcessedStatus.DONE or ProcessedStatus.DELETED
    payload: dict
    created_at: datetime
    updated_at: datetime
    bucket: int
    version: int
    last_event_id: str | None
    last_status: str  # the ACK status of the newest event applied
    processed_at: datetime


class UpsertOutcome(StrEnum):
    """What an event did to the order."""

    APPLIED = "applied"  # the order was created or changed: write `state`
    UNCHANGED = "unchanged"  # a newer event for a deleted order: nothing to write
    DUPLICATE = "duplicate"  # the very event applied last, delivered again
    STALE = "stale"  # older than (or as old as) what is stored: skipped


@dataclass(frozen=True, slots=True)
class UpsertDecision:
    """The state after the event, the ACK status to report, and whether to write."""

    outcome: UpsertOutcome
    ack_status: str
    state: OrderState

    @property
    def changed(self) -> bool:
        return self.outcome is UpsertOutcome.APPLIED


def order_stale_answer(*, stored: OrderState, event: OrderEvent) -> UpsertDecision:
    """The answer to an event no newer than `stored`: nothing changes, and the ACK reports
    the current state (the last ACK status again if it is the very event stored last)."""
    if stored.last_event_id == event.event_id:
        return UpsertDecision(UpsertOutcome.DUPLICATE, stored.last_status, stored)
    ack_status = (
        AckStatus.DELETED if stored.status == ProcessedStatus.DELETED else AckStatus.UPDATED
    )
    return UpsertDecision(UpsertOutcome.STALE, ack_status, stored)


def event_newer(*, stored: OrderState, event: OrderEvent, happened_at: datetime) -> bool:
    """Whether `event` is newer than the stored order: by version, or for an event without
    one (the Go original's) by its `timestamp` against the stored `updated_at` (the time of
    the last event applied): one no later is stale, as a version no higher is."""
    if event.version is None:
        return happened_at > stored.updated_at
    return event.version > stored.version


def version_after(*, stored: OrderState | None, event: OrderEvent) -> int:
    """The version the order takes from `event`: its own, or for an event without one the
    stored version plus one (1 for an order never seen), so the stored rows and results,
    which only ever move to a higher version, follow events ordered by time too."""
    if event.version is not None:
        return event.version
    return stored.version + 1 if stored is not None else 1


def order_event_decide(
    *, stored: OrderState | None, event: OrderEvent, processed_at: datetime
) -> UpsertDecision:
    """What one event does to the stored order (None: never seen) under contract.md's rules.

    - never seen: created from the event (stored `done`, ACK `created`); a first-sight
      delete is stored soft-deleted and acknowledged `deleted`;
    - not newer than the stored order (`event_newer`: by version, or by timestamp for an
      event without one): skipped and acknowledged with the current state (`deleted`,
      else the last ACK status for the same event, else `updated`);
    - a deleted order stays deleted whatever comes next (ACK `deleted`);
    - `deleted`: soft delete keeping the data the event carries (the API's last accepted
      payload); `created`/`updated`: payload replaced, amount recomputed, status `done`,
      ACK `updated`.

    Raises `InvalidMessage` when the amount cannot be computed, or the version or the
    timestamp is out of range: such an event is rejected whatever the stored state.
    """
    try:
        amount = order_amount(event.payload)
    except InvalidAmount as exc:
        raise InvalidMessage(str(exc), order_id=event.order_id, event_id=event.event_id) from None
    version = version_after(stored=stored, event=event)
    if version > MAX_VERSION:
        raise InvalidMessage(
            f"version: larger than {MAX_VERSION}",
            order_id=event.order_id,
            event_id=event.event_id,
        )
    try:
        happened_at = event_time(event.timestamp)
    except ValueError as exc:
        raise InvalidMessage(
            f"timestamp: {exc}", order_id=event.order_id, event_id=event.event_id
        ) from None

    if stored is None:
        deleted = event.status == Operation.DELETED
        ack_status = AckStatus.DELETED if deleted else AckStatus.CREATED
        state = OrderState(
            order_id=event.order_id,
            user_id=event.user_id,
            amount=amount,
            status=ProcessedStatus.DELETED if deleted else ProcessedStatus.DONE,
            payload=event.payload,
            created_at=happened_at,
            updated_at=happened_at,
            bucket=order_bucket(event.order_id),
            version=version,
            last_event_id=event.event_id,
            last_status=ack_status,
            processed_at=processed_at,
        )
        return UpsertDecision(UpsertOutcome.APPLIED, ack_status, state)

    if not event_newer(stored=stored, event=event, happened_at=happened_at):
        return order_stale_answer(stored=stored, event=event)

    if stored.status == ProcessedStatus.DELETED:
        return UpsertDecision(UpsertOutcome.UNCHANGED, AckStatus.DELETED, stored)

    if event.status == Operation.DELETED:
        # Soft delete with the data the event carries: the API kept the order's last
        # accepted payload and put it in the event, which may be newer than ours (the
        # delete can overtake an update that waits in the relay; that one is stale then).
        state = replace(
            stored,
            amount=amount,
            payload=event.payload,
            status=ProcessedStatus.DELETED,
            updated_at=happened_at,
            version=version,
            last_event_id=event.event_id,
            last_status=AckStatus.DELETED,
            processed_at=processed_at,
        )
        return UpsertDecision(UpsertOutcome.APPLIED, AckStatus.DELETED, state)

    state = replace(
        stored,
        amount=amount,
        status=ProcessedStatus.DONE,
        payload=event.payload,
        updated_at=happened_at,
        version=version,
        last_event_id=event.event_id,
        last_status=AckStatus.UPDATED,
        processed_at=processed_at,
    )
    return UpsertDecision(UpsertOutcome.APPLIED, AckStatus.UPDATED, state)
