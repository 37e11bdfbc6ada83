"""The order fields both apps derive from a payload: amount, bucket and external id.

Pure functions (contract.md's rules) shared by the API, which refuses an order whose amount
cannot be computed before it is accepted, and the worker, which stores them. The worker's
upsert decision is in `orders_worker.rules`.
"""

from __future__ import annotations

import uuid
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

CENT = Decimal("0.01")
# The columns hold numeric(20, 2): at most 18 integer digits. An amount that reaches 1e18
# once rounded to cents (999999999999999999.995 does) is refused.
MAX_AMOUNT = Decimal("1e18")
LARGEST_AMOUNT = MAX_AMOUNT - CENT


# Significant digits of the amount arithmetic: a price * qty or a running sum that needs
# more is refused rather than rounded (rounding there could move the result by a cent).
AMOUNT_DIGITS = 40


# The arithmetic of `order_amount`, independent of the thread's decimal context: wide
# exponents, and every result exact (`Inexact` is trapped) or an error. `localcontext`
# works on a copy, so this one is never changed.
_AMOUNT_CONTEXT = Context(
    prec=AMOUNT_DIGITS,
    rounding=ROUND_HALF_EVEN,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)


# Rounding to cents: ROUND_HALF_UP, whatever the thread's context; a total beyond the
# range never gets here, so 20 digits always fit.
_CENTS_CONTEXT = Context(prec=AMOUNT_DIGITS, rounding=ROUND_HALF_UP, traps=[InvalidOperation])


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
        with localcontext(_AMOUNT_CONTEXT):
            return _order_amount(payload)
    except Inexact:
        raise InvalidAmount(
            f"amount: cannot be computed exactly (a price * qty or a sum of more than "
            f"{AMOUNT_DIGITS} significant digits)"
        ) from None
    except ArithmeticError as exc:  # Overflow, InvalidOperation, ...
        raise InvalidAmount(f"amount: cannot be computed ({type(exc).__name__})") from None


def amount_in_cents(value: object, *, field: str = "amount") -> Decimal:
    """A number (or numeric string) as the amount columns hold it: rounded half-up to cents.

    Raises `InvalidAmount` for anything else: not a finite number, or beyond the columns'
    range once rounded.
    """
    try:
        with localcontext(_AMOUNT_CONTEXT):
            return _in_cents(_number(value, field))
    except ArithmeticError as exc:
        raise InvalidAmount(f"{field}: cannot be computed ({type(exc).__name__})") from None


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
    return _in_cents(total)


def _in_cents(total: Decimal) -> Decimal:
    # Checked before rounding too: a huge total has more digits than the context holds.
    # (copy_abs, not abs(): no rounding to the context's digits.)
    if total.copy_abs() < MAX_AMOUNT:
        rounded = total.quantize(CENT, context=_CENTS_CONTEXT)
        if rounded.copy_abs() < MAX_AMOUNT:
            return rounded
    raise InvalidAmount(
        f"amount: {total:.6g} is out of range (rounded to cents, at most {LARGEST_AMOUNT})"
    )


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


# The longest payload.id an order may have: UTF-8 bytes of its text (a number's as rendered).
# GET /orders/by-external/<id>?user_id=<uuid> must reach every stored id, through the API's
# server and through the proxies in front of it, many of which hold a request line to some
# 4 KiB (gunicorn's limit_request_line, for one: 4094 bytes): with
# every byte of the id percent-encoded (3 characters, the worst case) the line is at most
# 3 * 1024 + 78 bytes, which leaves some 900 for other query parameters. A float renders
# in at most some 330 characters, whichever way (repr here, PostgreSQL's numeric there).
MAX_EXTERNAL_ID_BYTES = 1024


def external_id_refusal(payload: dict) -> str | None:
    """Why `payload.id` cannot be stored (its lookup's URL would be too long), or None."""
    external_id = external_id_of(payload)
    if external_id is None:
        return None
    size = len(external_id.encode("utf-8", "surrogatepass"))
    if size <= MAX_EXTERNAL_ID_BYTES:
        return None
    return (
        f"is {size} bytes long in UTF-8, at most {MAX_EXTERNAL_ID_BYTES}: "
        "GET /orders/by-external/{external_id} could not take a longer one"
    )
