"""The amount rules' exact errors and range (tests that kill the mutants `make mutation`
found surviving in `orderstream.order_fields`)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderstream.order_fields import InvalidAmount, amount_in_cents, order_amount

OUT_OF_RANGE = "is out of range (rounded to cents, at most 999999999999999999.99)"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"amount": "ten"}, "amount: not a number: 'ten'"),
        ({"amount": "NaN"}, "amount: not a finite number: 'NaN'"),
        ({"items": [1]}, "items[0]: not an object"),
        ({"items": [{"price": 1}, {"price": "x"}]}, "items[1].price: not a number: 'x'"),
        ({"items": [{"price": 1, "qty": []}]}, "items[0].qty: not a number: []"),
        ({"amount": "1e18"}, f"amount: 1e+18 {OUT_OF_RANGE}"),
        # Wide exponents: beyond the default context's, still a number (out of range).
        ({"items": [{"price": "1e999999", "qty": 10}]}, f"amount: 1.00000e+1000000 {OUT_OF_RANGE}"),
        (
            {"items": [{"price": "9e999999999999999999", "qty": 10}]},
            "amount: cannot be computed exactly (a price * qty or a sum of more than 40 "
            "significant digits)",
        ),
    ],
)
def test_an_unusable_amount_is_refused_with_its_reason(payload, reason):
    with pytest.raises(InvalidAmount) as raised:
        order_amount(payload)
    assert str(raised.value) == reason


@pytest.mark.parametrize(
    ("value", "cents"), [("1.005", "1.01"), (2, "2.00"), (" -0.125 ", "-0.13")]
)
def test_amount_in_cents_rounds_half_up(value, cents):
    assert amount_in_cents(value) == Decimal(cents)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ({}, "x", "amount: not a number: 'x'"),
        ({"field": "price"}, True, "price: not a number: True"),
        (
            {"field": "price"},
            "-1e18",
            f"amount: -1e+18 {OUT_OF_RANGE}",
        ),
    ],
)
def test_amount_in_cents_refuses_what_is_not_an_amount(field, value, reason):
    with pytest.raises(InvalidAmount) as raised:
        amount_in_cents(value, **field)
    assert str(raised.value) == reason
