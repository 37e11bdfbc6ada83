"""Order events for the outbox: built, encoded once and size-checked with their change.

`outbox_event_build` gives the event of a change and its outbox row (unsaved) to a caller
that inserts it with its order; `outbox_event_add` saves it in the caller's transaction.
The row's insert notifies the relay (a trigger, migration 0006), which publishes it.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone

from orders_api.errors import EventTooLarge
from orders_api.event_limit import event_size_limit
from orders_api.models import Order, OutboxEvent
from orderstream.messages import OrderEvent
from orderstream.order_fields import external_id_of
from orderstream.timestamps import rfc3339


class PendingEvent(NamedTuple):
    """An event built for the outbox: the message and its row (unsaved), which holds the
    encoded value the relay publishes."""

    event: OrderEvent
    row: OutboxEvent


def outbox_event_build(*, order: Order, operation: str) -> PendingEvent:
    """The event of `operation` on `order`, encoded once, and its outbox row (not saved).

    The event carries `order.payload_text`, the payload as accepted, when the order has it
    (`order.payload` otherwise).

    Raises EventTooLarge (a 413 naming `payload`) for an event larger than the broker
    takes (`event_limit`: MAX_EVENT_BYTES, or less when the events topic says so): it
    could never be published, so the change must not be accepted.
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
    value = event.to_bytes(payload_text=order.payload_text)
    limit = event_size_limit()
    if len(value) > limit:
        raise EventTooLarge(len(value), limit)
    row = OutboxEvent(
        event_id=event.event_id,
        order_id=order.order_id,
        version=order.version,
        topic=settings.ORDERS_EVENTS_TOPIC,
        value=value.decode(),
        created_at=now,
        next_attempt_at=now,
    )
    return PendingEvent(event, row)


def outbox_event_add(*, order: Order, operation: str) -> PendingEvent:
    """Write the event of `operation` on `order` to the outbox (caller's transaction)."""
    pending = outbox_event_build(order=order, operation=operation)
    pending.row.save(force_insert=True)
    return pending
