"""The pure order rules of SPEC.md: amount, bucket and the upsert decision.

No database, no Kafka: plain functions the worker and the API both call, with unit tests
for every branch. `order_upsert` takes the stored state (or None) and one event and
says what the order becomes and what the ACK reports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from enum import StrEnum

from orderstream.messages import InvalidMessage, OrderEvent, event_time

CENT = Decimal("0.01")
# The columns hold numeric(20, 2): anything of 18 integer digits or more is refused.
MAX_AMOUNT = Decimal("1e18")


def _amount_context() -> Context:
    """The arithmetic of `order_amount`, independent of the thread's decimal context: wide
    exponents (huge or tiny inputs round instead of failing) and errors trapped."""
    return Context(
        prec=40,
        rounding=ROUND_HALF_EVEN,
        Emax=MAX_EMAX,
        Emin=MIN_EMIN,
        traps=[InvalidOperation, DivisionByZero, Overflow],
    )


class InvalidAmount(ValueError):
    """The payload's amount, price or qty is not a usable number."""


def _number(value: object, field: str) -> Decimal:
    """A JSON number or numeric string as a finite Decimal; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidAmount(f"{field}: not a number: {value!r}")
    try:
        if isinstance(value, str):
            number = Decimal(value.strip())
        elif isinstance(value, int):
            number = Decimal(value)  # exact, and no int-to-str digit limit
        else:
            number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidAmount(f"{field}: not a number: {value!r}") from None
    if not number.is_finite():
        raise InvalidAmount(f"{field}: not a finite number: {value!r}")
    return number


def order_amount(payload: dict) -> Decimal:
    """`payload.amount` if present, else the sum of price * qty over `payload.items`
    (qty defaults to 1), else 0; rounded half-up to cents.

    Raises `InvalidAmount` for non-numeric values or a result beyond the column's range,
    including a product or sum too large for any decimal (`decimal.Overflow`).
    """
    try:
        with localcontext(_amount_context()):
            return _order_amount(payload)
    except ArithmeticError as exc:  # Overflow, InvalidOperation, ...
        raise InvalidAmount(f"amount: cannot be computed ({type(exc).__name__})") from None


def _order_amount(payload: dict) -> Decimal:
    if payload.get("amount") is not None:
        total = _number(payload["amount"], "amount")
    elif isinstance(payload.get("items"), list):
        total = Decimal(0)
        for index, item in enumerate(payload["items"]):
            if not isinstance(item, dict):
                raise InvalidAmount(f"items[{index}]: not an object")
            price = _number(item.get("price", 0), f"items[{index}].price")
            qty_value = item.get("qty")
            qty = Decimal(1) if qty_value is None else _number(qty_value, f"items[{index}].qty")
            total += price * qty
    else:
        total = Decimal(0)
    if abs(total) >= MAX_AMOUNT:
        raise InvalidAmount(f"amount: {total:.6g} is out of range")
    return total.quantize(CENT, rounding=ROUND_HALF_UP)


def order_bucket(order_id: str | uuid.UUID) -> int:
    """First byte of the order uuid mod 4."""
    return uuid.UUID(str(order_id)).bytes[0] % 4


def external_id_of(payload: dict) -> str | None:
    """`payload.id` as a string (a number rendered as its string), or None."""
    value = payload.get("id")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


# The `version` column is a PostgreSQL integer.
MAX_VERSION = 2**31 - 1

ORDER_DONE = "done"
ORDER_DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class OrderState:
    """The worker's view of one order, as stored in `ProcessedOrder`."""

    order_id: str
    user_id: str
    amount: Decimal
    status: str  # ORDER_DONE or ORDER_DELETED
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
    ack_status = "deleted" if stored.status == ORDER_DELETED else "updated"
    return UpsertDecision(UpsertOutcome.STALE, ack_status, stored)


def order_upsert(
    *, stored: OrderState | None, event: OrderEvent, processed_at: datetime
) -> UpsertDecision:
    """Apply one event to the stored order (None: never seen) under SPEC.md's rules.

    - never seen: created from the event (stored `done`, ACK `created`); a first-sight
      delete is stored soft-deleted and acknowledged `deleted`;
    - `version` not newer than the stored one: skipped and acknowledged with the current
      state (`deleted`, else the last ACK status for the same event, else `updated`);
    - a deleted order stays deleted whatever comes next (ACK `deleted`);
    - `deleted`: soft delete, data kept; `created`/`updated`: payload replaced, amount
      recomputed, status `done`, ACK `updated`.

    Raises `InvalidMessage` when the amount cannot be computed, or the version or the
    timestamp is out of range: such an event is rejected whatever the stored state.
    """
    try:
        amount = order_amount(event.payload)
    except InvalidAmount as exc:
        raise InvalidMessage(str(exc), order_id=event.order_id, event_id=event.event_id) from None
    if event.version > MAX_VERSION:
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
        deleted = event.status == "deleted"
        ack_status = "deleted" if deleted else "created"
        state = OrderState(
            order_id=event.order_id,
            user_id=event.user_id,
            amount=amount,
            status=ORDER_DELETED if deleted else ORDER_DONE,
            payload=event.payload,
            created_at=happened_at,
            updated_at=happened_at,
            bucket=order_bucket(event.order_id),
            version=event.version,
            last_event_id=event.event_id,
            last_status=ack_status,
            processed_at=processed_at,
        )
        return UpsertDecision(UpsertOutcome.APPLIED, ack_status, state)

    if event.version <= stored.version:
        return order_stale_answer(stored=stored, event=event)

    if stored.status == ORDER_DELETED:
        return UpsertDecision(UpsertOutcome.UNCHANGED, "deleted", stored)

    if event.status == "deleted":
        state = replace(
            stored,
            status=ORDER_DELETED,
            updated_at=happened_at,
            version=event.version,
            last_event_id=event.event_id,
            last_status="deleted",
            processed_at=processed_at,
        )
        return UpsertDecision(UpsertOutcome.APPLIED, "deleted", state)

    state = replace(
        stored,
        amount=amount,
        status=ORDER_DONE,
        payload=event.payload,
        updated_at=happened_at,
        version=event.version,
        last_event_id=event.event_id,
        last_status="updated",
        processed_at=processed_at,
    )
    return UpsertDecision(UpsertOutcome.APPLIED, "updated", state)
