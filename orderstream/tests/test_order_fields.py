"""Unit tests of the order fields derived from a payload: amount, bucket, external id."""

from __future__ import annotations

import uuid
from decimal import Decimal, localcontext

import pytest

from orderstream.order_fields import (
    MAX_EXTERNAL_ID_BYTES,
    InvalidAmount,
    external_id_of,
    external_id_refusal,
    order_amount,
    order_bucket,
)


# ---------------------------------------------------------------- order_amount
@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"amount": 12}, "12.00"),
        ({"amount": 12.345}, "12.35"),  # half-up to cents
        ({"amount": "7.5"}, "7.50"),
        ({"amount": " 3 "}, "3.00"),
        ({"amount": "-4.25"}, "-4.25"),
        ({"amount": "1e3"}, "1000.00"),
        ({"amount": 0}, "0.00"),
        ({"amount": 5, "items": [{"price": 100}]}, "5.00"),  # amount wins over items
        ({"amount": None, "items": [{"price": 2}]}, "2.00"),  # null amount: items
        ({"items": [{"price": "2.50", "qty": 2}, {"price": 1}]}, "6.00"),  # qty defaults to 1
        ({"items": [{"price": 3, "qty": None}]}, "3.00"),
        ({"items": [{"qty": 4}]}, "0.00"),  # no price: 0
        ({"items": []}, "0.00"),
        ({"items": "not a list"}, "0.00"),
        ({}, "0.00"),
        ({"id": "x", "note": {"deep": [1, 2, {"x": None}]}}, "0.00"),
        ({"amount": 10**17}, "100000000000000000.00"),
        ({"amount": "999999999999999999.99"}, "999999999999999999.99"),  # numeric(20, 2) max
        ({"amount": "999999999999999999.994"}, "999999999999999999.99"),
        ({"amount": "-999999999999999999.994"}, "-999999999999999999.99"),
        ({"items": [{"price": "333333333333333333.33", "qty": 3}]}, "999999999999999999.99"),
    ],
)
def test_order_amount_follows_amount_then_items_then_zero(payload, expected):
    """amount if present, else sum(price * qty) over items, else 0; rounded to cents."""
    assert order_amount(payload) == Decimal(expected)


@pytest.mark.parametrize(
    "payload",
    [
        {"amount": "abc"},
        {"amount": ""},
        {"amount": True},
        {"amount": [1]},
        {"amount": {"value": 1}},
        {"amount": "NaN"},
        {"amount": "Infinity"},
        {"amount": float("inf")},
        {"amount": 10**18},
        {"amount": "999999999999999999.995"},  # within range, but 1e18 once rounded
        {"amount": "-999999999999999999.995"},
        {"items": [{"price": "333333333333333333.332", "qty": 3}]},
        {"items": [{"price": "999999999999999999.99"}, {"price": "0.01"}]},
        {"amount": "-1e30"},
        {"amount": "9" * 400},
        {"items": [{"price": "x"}]},
        {"items": [{"price": 1, "qty": "two"}]},
        {"items": [{"price": False}]},
        {"items": ["not an object"]},
        {"items": [None]},
        {"items": [{"price": 10**10, "qty": 10**10}]},
        {"items": [{"price": "1e999999", "qty": "1e999999"}]},  # decimal.Overflow by default
        {"items": [{"price": "1e999999999999999999", "qty": "1e999999999999999999"}]},
        {"items": [{"price": "-1e999999999999999999", "qty": "1e999999999999999999"}]},
        {"amount": 10**5000},  # an int beyond Python's int-to-str digit limit
    ],
)
def test_order_amount_refuses_unusable_numbers(payload):
    """Non-numeric, boolean, non-finite or out-of-range values raise InvalidAmount, even
    when the arithmetic itself overflows every decimal exponent."""
    with pytest.raises(InvalidAmount):
        order_amount(payload)


def test_order_amount_does_not_depend_on_the_callers_decimal_context():
    """A thread context with 3 digits and no traps changes neither the sum nor the errors."""
    with localcontext(prec=3, traps=[]):
        assert order_amount({"items": [{"price": "1234.56", "qty": 3}]}) == Decimal("3703.68")
        with pytest.raises(InvalidAmount):
            order_amount({"items": [{"price": "1e999999", "qty": "1e999999"}]})


def test_order_amount_of_vanishingly_small_products_is_zero():
    assert order_amount({"items": [{"price": "1e-999999", "qty": "1e-999999"}]}) == 0


def test_order_bucket_is_first_byte_mod_4():
    assert order_bucket("ff000000-0000-4000-8000-000000000000") == 255 % 4
    assert order_bucket(uuid.UUID("06000000-0000-4000-8000-000000000000")) == 2


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"id": "A-1"}, "A-1"),
        ({"id": 42}, "42"),
        ({"id": 42.0}, "42"),
        ({"id": 1.5}, "1.5"),
        ({"id": True}, None),
        ({"id": None}, None),
        ({"id": {"x": 1}}, None),
        ({}, None),
    ],
)
def test_external_id_of_renders_strings_and_numbers(payload, expected):
    assert external_id_of(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "x" * MAX_EXTERNAL_ID_BYTES},
        {"id": "\u00e9" * (MAX_EXTERNAL_ID_BYTES // 2)},  # 2 bytes each
        {"id": int("9" * MAX_EXTERNAL_ID_BYTES)},
        {"id": 1.7976931348623157e308},
        {"id": ""},
        {"id": None},
        {},
    ],
)
def test_an_external_id_up_to_the_limit_in_utf8_bytes_is_storable(payload):
    assert MAX_EXTERNAL_ID_BYTES == 1024
    assert external_id_refusal(payload) is None


@pytest.mark.parametrize(
    ("payload", "size"),
    [
        ({"id": "x" * (MAX_EXTERNAL_ID_BYTES + 1)}, 1025),
        ({"id": "\u00e9" * (MAX_EXTERNAL_ID_BYTES // 2) + "x"}, 1025),
        ({"id": "\N{GRINNING FACE}" * 257}, 1028),
        ({"id": int("9" * (MAX_EXTERNAL_ID_BYTES + 1))}, 1025),
    ],
)
def test_an_external_id_beyond_the_limit_is_refused_saying_its_size(payload, size):
    assert external_id_refusal(payload) == (
        f"is {size} bytes long in UTF-8, at most 1024: "
        "GET /orders/by-external/{external_id} could not take a longer one"
    )
