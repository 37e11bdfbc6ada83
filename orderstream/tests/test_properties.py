"""Property-based tests (hypothesis) of the amount rules and the message round trips.

Pure: no database, Redis or broker. contract.md: amounts are exact decimals with 2 places on
every path; `order_amount` is `payload.amount` (a number or a numeric string), else the sum
of price * qty over `payload.items` (qty defaults to 1), else 0, rounded half-up to cents.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact

from hypothesis import example, given
from hypothesis import strategies as st

from orderstream.exact_json import dumps
from orderstream.messages import OrderAck, OrderEvent, OrderResult
from orderstream.order_fields import (
    AMOUNT_DIGITS,
    CENT,
    LARGEST_AMOUNT,
    MAX_AMOUNT,
    InvalidAmount,
    order_amount,
)
from orderstream.statuses import AckStatus, Operation

# Exact arithmetic for the reference computation: far more digits than any drawn value.
EXACT = Context(prec=10_000, Emax=10**6, Emin=-(10**6), traps=[Inexact])
ROUNDING = Context(prec=10_000, rounding=ROUND_HALF_UP)

# Finite decimals from tiny to beyond the columns, with up to 30 significant digits.
decimals = st.builds(
    lambda digits, exponent, negative: Decimal((int(negative), tuple(digits), exponent)),
    st.lists(st.integers(0, 9), min_size=1, max_size=30),
    st.integers(-25, 20),
    st.booleans(),
)
# Amounts near the columns' limit and the half-cent boundaries are where it goes wrong.
edges = st.sampled_from(
    [
        LARGEST_AMOUNT,
        -LARGEST_AMOUNT,
        MAX_AMOUNT,
        LARGEST_AMOUNT + Decimal("0.005"),
        LARGEST_AMOUNT + Decimal("0.0049999"),
        Decimal("70368744177664.01"),
        Decimal("0.005"),
        Decimal("-0.005"),
        Decimal("0.0049999999999999999999"),
        Decimal("0"),
    ]
)
values = st.one_of(decimals, edges)


def as_json_value(value: Decimal, form: str):
    """The value as a payload holds it: a numeric string, an int, a float or a Decimal."""
    if form == "string":
        return str(value)
    if form == "int" and value == value.to_integral_value():
        return int(value)
    if form == "float":
        return float(value)  # what a float holds: the rules read its shortest form
    return value


def decimal_of(json_value) -> Decimal:
    """The exact number a payload value stands for (a float: its shortest form)."""
    if isinstance(json_value, float):
        return Decimal(repr(json_value))
    return Decimal(json_value)


forms = st.sampled_from(["string", "int", "float", "decimal"])
payload_numbers = st.builds(as_json_value, values, forms)


def expected_amount(total: Decimal) -> Decimal | None:
    """The exact total rounded half-up to cents, or None when the columns cannot hold it."""
    if total.copy_abs() >= MAX_AMOUNT:
        return None
    rounded = total.quantize(CENT, context=ROUNDING)
    return rounded if rounded.copy_abs() < MAX_AMOUNT else None


def assert_amount(payload: dict, total: Decimal, digits_needed: bool) -> None:
    expected = expected_amount(total)
    try:
        amount = order_amount(payload)
    except InvalidAmount as exc:
        # Refused only when out of range, or when the arithmetic needed more digits
        # than it keeps (then it says so rather than rounding).
        assert expected is None or (digits_needed and "exactly" in str(exc)), (payload, exc)
        return
    assert expected is not None, (payload, amount)
    assert amount == expected
    assert amount.as_tuple().exponent == -2  # two places, always
    assert str(amount) == str(expected)


@given(amount=payload_numbers, items=st.lists(st.fixed_dictionaries({"price": values})))
def test_the_amount_is_payload_amount_exactly_rounded_to_cents(amount, items):
    """`payload.amount` wins over items; string, int, float or Decimal, the result is the
    exact value rounded half-up to 2 places, or InvalidAmount when out of range."""
    assert_amount({"amount": amount, "items": items}, decimal_of(amount), digits_needed=False)


@given(
    items=st.lists(
        st.fixed_dictionaries(
            {"price": payload_numbers},
            optional={"qty": st.one_of(st.none(), payload_numbers)},
        ),
        max_size=6,
    )
)
# Rounding inside the arithmetic to 40 digits made these 0.01 (exactly: 0.01 and 0.00);
# they are now exact or refused.
@example(items=[{"price": "1e38"}, {"price": "0.005"}, {"price": "-1e38"}])
@example(items=[{"price": "0.00499999999999999999999999999999999999999", "qty": 1}])
def test_the_amount_of_items_is_the_exact_sum_of_price_times_qty(items):
    """Without `payload.amount`: the sum of price * qty (qty absent or null = 1) computed
    exactly, rounded half-up to cents; never a number rounded along the way."""
    total = Decimal(0)
    digits_needed = False
    for item in items:
        qty = item.get("qty")
        product = EXACT.multiply(
            decimal_of(item["price"]), Decimal(1) if qty is None else decimal_of(qty)
        )
        total = EXACT.add(total, product)
        digits_needed |= len(product.as_tuple().digits) > AMOUNT_DIGITS
        digits_needed |= len(total.as_tuple().digits) > AMOUNT_DIGITS
    assert_amount({"items": items}, total, digits_needed)


# -- messages -----------------------------------------------------------------------------

uuids = st.uuids().map(str)
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
timestamps = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.isoformat().replace("+00:00", "Z"))
# Payload numbers as the worker reads them: ints and the floats that hold them exactly.
event_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), texts
)
event_payloads = st.dictionaries(
    texts,
    st.recursive(
        event_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=10,
    ),
    max_size=5,
)
# Amounts as the columns hold them: two places, within the range.
column_amounts = st.decimals(
    min_value=-LARGEST_AMOUNT, max_value=LARGEST_AMOUNT, places=2, allow_nan=False
)
# Result payloads as the API reads them back: every fraction a Decimal.
result_scalars = st.one_of(st.none(), st.booleans(), st.integers(), values, texts)
result_payloads = st.dictionaries(
    texts,
    st.recursive(
        result_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=10,
    ),
    max_size=5,
)


@given(
    event_id=uuids,
    order_id=uuids,
    user_id=uuids,
    payload=event_payloads,
    status=st.sampled_from(Operation.values),
    version=st.integers(1, 2**31 - 1),
    timestamp=timestamps,
    external_id=st.none() | texts,
)
def test_an_event_reads_back_as_itself(**fields):
    event = OrderEvent(**fields)
    assert OrderEvent.from_bytes(event.to_bytes()) == event


@given(
    event_id=st.none() | uuids,
    order_id=st.none() | uuids,
    status=st.sampled_from(AckStatus.values),
    processed_at=timestamps,
    error=st.none() | texts,
    version=st.none() | st.integers(1, 2**63),
)
def test_an_ack_reads_back_as_itself(**fields):
    ack = OrderAck(**fields)
    assert OrderAck.from_bytes(ack.to_bytes()) == ack


@given(
    order_id=uuids,
    status=st.sampled_from(Operation.values),
    processed_at=timestamps,
    order_status=st.sampled_from(["done", "deleted"]),
    user_id=uuids,
    amount=column_amounts,
    payload=result_payloads,
    created_at=timestamps,
    updated_at=timestamps,
    bucket=st.integers(0, 3),
    version=st.integers(0, 2**31 - 1),
)
def test_a_result_reads_back_as_itself_with_exact_amounts(**fields):
    """Every Decimal comes back with the very digits it had (5.00 stays 5.00, not 5)."""
    result = OrderResult(**fields)
    raw = result.to_bytes()
    read = OrderResult.from_bytes(raw)
    assert read == result
    assert str(read.amount) == str(result.amount)
    assert f'"amount":{result.amount},'.encode() in raw
    assert dumps(read.payload) == dumps(result.payload)  # same digits, not just equal values
    assert json.loads(raw, parse_float=Decimal)["amount"] == result.amount


@given(number=st.one_of(decimals, edges))
def test_a_decimal_is_written_as_its_own_text(number):
    assert dumps({"n": number}) == b'{"n":' + str(number).encode() + b"}"
