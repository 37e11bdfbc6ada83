"""Writes of the API: create, update and soft-delete orders (POST /orders).

`order_upsert` applies contract.md's pre-checks (the order exists and is this user's, is not
deleted, its amount is computable and its event within the broker's size), writes the
order row and its outbox event atomically (a create in one statement, a change in one
transaction).
Updates lock the row and bump `version`, so one order's events are committed in version
order; the relay (`run_relay`) publishes them in that order. A delete's event carries the
payload as the last create or update accepted it (`Order.payload_text`), not as jsonb
gives it back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders_api.errors import OrderDeleted, OrderNotFound
from orders_api.exceptions import ApplicationError
from orders_api.idempotency import (
    idempotency_find,
    idempotency_record_build,
    is_key_conflict,
    request_fingerprint,
)
from orders_api.models import IdempotencyKey, Order
from orders_api.outbox_events import outbox_event_add, outbox_event_build
from orders_api.single_statement import insert_in_one_statement
from orderstream.exact_json import dumps, exact_float, loads
from orderstream.messages import OrderEvent
from orderstream.order_fields import InvalidAmount, order_amount, order_bucket
from orderstream.statuses import Operation, OrderStatus


@dataclass(frozen=True, slots=True)
class OrderWrite:
    """What an accepted POST did: the order, the event to wait for, the operation."""

    order_id: uuid.UUID
    event_id: str
    operation: str  # created, updated or deleted
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class _Idempotency:
    key: str
    fingerprint: str


def _amount_of(payload: dict):
    try:
        return order_amount(payload)
    except InvalidAmount as exc:
        field, _, reason = str(exc).partition(": ")
        raise ApplicationError(f"payload.{field}", reason or str(exc)) from None
    except ArithmeticError:  # e.g. decimal.Overflow of a product of huge numbers
        raise ApplicationError("payload", "the amount cannot be computed (too large)") from None


def _payload_text(payload: dict) -> str:
    """The payload as accepted: the JSON text its event carries, kept on the order."""
    return dumps(payload).decode()


def _accepted_payload(order: Order) -> dict:
    """The order's last accepted payload, read from the text it was accepted as (its
    jsonb would give 1e300 as a 301-digit integer); an order written before that text
    was kept has only its jsonb."""
    if order.payload_text is None:
        return order.payload
    return loads(order.payload_text, parse_float=exact_float)


def _replay(record: IdempotencyKey) -> OrderWrite:
    return OrderWrite(
        order_id=record.order_id,
        event_id=str(record.event_id),
        operation=record.operation,
        replayed=True,
    )


def order_upsert(
    *,
    user_id: uuid.UUID,
    order_id: uuid.UUID | None,
    payload: dict | None,
    delete: bool = False,
    idempotency_key: str | None = None,
) -> OrderWrite:
    """Create (`order_id` None), update (`payload`) or soft-delete (`delete`) an order.

    Raises OrderNotFound (an unknown order, or one of another user), OrderDeleted (a
    change of a deleted order), IdempotencyKeyReused (the key of another request),
    EventTooLarge (an event larger than MAX_EVENT_BYTES) and ApplicationError for an
    amount that cannot be computed.
    """
    idempotency = None
    if idempotency_key is not None:
        idempotency = _Idempotency(
            key=idempotency_key,
            fingerprint=request_fingerprint(
                user_id=user_id, order_id=order_id, payload=payload, delete=delete
            ),
        )
        record = idempotency_find(
            user_id=user_id, key=idempotency.key, fingerprint=idempotency.fingerprint
        )
        if record is not None:
            return _replay(record)
    try:
        if order_id is None:
            return _order_create(user_id=user_id, payload=payload or {}, idempotency=idempotency)
        return _order_change(
            user_id=user_id,
            order_id=order_id,
            payload=payload,
            delete=delete,
            idempotency=idempotency,
        )
    except IntegrityError as exc:
        # A concurrent request with the same key committed first: answer as it did.
        if idempotency is not None and is_key_conflict(exc):
            record = idempotency_find(
                user_id=user_id, key=idempotency.key, fingerprint=idempotency.fingerprint
            )
            if record is not None:
                return _replay(record)
        raise


def _key_record(idempotency: _Idempotency | None, event: OrderEvent):
    """The idempotency record to write with the order and its `event`, or None without a
    key: it answers a repeat with the event's order, id and operation (its status)."""
    if idempotency is None:
        return None
    return idempotency_record_build(
        user_id=event.user_id,
        key=idempotency.key,
        fingerprint=idempotency.fingerprint,
        order_id=event.order_id,
        event_id=event.event_id,
        operation=event.status,
    )


def _order_create(
    *, user_id: uuid.UUID, payload: dict, idempotency: _Idempotency | None
) -> OrderWrite:
    """Insert the order, its event and its idempotency key in one atomic statement
    (one round trip instead of BEGIN, the INSERTs and COMMIT)."""
    order_id = uuid.uuid4()
    now = timezone.now()
    order = Order(
        order_id=order_id,
        user_id=user_id,
        amount=_amount_of(payload),
        status=OrderStatus.NEW,
        payload=payload,
        payload_text=_payload_text(payload),
        created_at=now,
        updated_at=now,
        bucket=order_bucket(order_id),
        version=1,
    )
    pending = outbox_event_build(order=order, operation=Operation.CREATED)  # 413 if too large
    event = pending.event
    key_record = _key_record(idempotency, event)
    insert_in_one_statement(*(row for row in (order, pending.row, key_record) if row))
    return OrderWrite(order_id=order_id, event_id=event.event_id, operation=Operation.CREATED)


def _order_change(
    *,
    user_id: uuid.UUID,
    order_id: uuid.UUID,
    payload: dict | None,
    delete: bool,
    idempotency: _Idempotency | None,
) -> OrderWrite:
    amount = None if delete else _amount_of(payload or {})
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(order_id=order_id).first()
        if order is None or order.user_id != user_id:
            raise OrderNotFound("order_id", "no order with this order_id for this user_id")
        if order.status == OrderStatus.DELETED:
            raise OrderDeleted()
        changed = ["status", "version", "updated_at"]
        if delete:
            operation = Operation.DELETED
            order.status = OrderStatus.DELETED
            order.payload = _accepted_payload(order)  # for the event: its external_id
        else:
            operation = Operation.UPDATED
            order.status = OrderStatus.UPDATED
            order.payload = payload
            order.payload_text = _payload_text(payload)
            order.amount = amount
            changed += ["payload", "payload_text", "amount"]
        order.version += 1
        order.updated_at = timezone.now()
        order.save(update_fields=changed)
        pending = outbox_event_add(order=order, operation=operation)  # 413 rolls back
        event = pending.event
        key_record = _key_record(idempotency, event)
        if key_record is not None:
            key_record.save(force_insert=True)
    return OrderWrite(order_id=order_id, event_id=event.event_id, operation=operation)
