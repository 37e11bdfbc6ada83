"""The pure order rules of SPEC.md: amount and bucket (the upsert decision joins them).

No database, no Kafka: plain functions the worker and the API both call, with unit tests
for every branch.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
# The columns hold numeric(20, 2): anything of 18 integer digits or more is refused.
MAX_AMOUNT = Decimal("1e18")


class InvalidAmount(ValueError):
    """The payload's amount, price or qty is not a usable number."""


def _number(value: object, field: str) -> Decimal:
    """A JSON number or numeric string as a finite Decimal; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidAmount(f"{field}: not a number: {value!r}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise InvalidAmount(f"{field}: not a number: {value!r}") from None
    if not number.is_finite():
        raise InvalidAmount(f"{field}: not a finite number: {value!r}")
    return number


def order_amount(payload: dict) -> Decimal:
    """`payload.amount` if present, else the sum of price * qty over `payload.items`
    (qty defaults to 1), else 0; rounded half-up to cents.

    Raises `InvalidAmount` for non-numeric values or a result beyond the column's range.
    """
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
        raise InvalidAmount(f"amount: {total} is out of range")
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
