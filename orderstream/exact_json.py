"""JSON with exact numbers, for every message and the Redis result.

Decimals are written as numbers with exactly their digits and read back as Decimals, so no
float ever changes an amount on its way; a number a float cannot hold is refused where a
float would be used (`exact_float`).
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import simplejson

from .timestamps import rfc3339


class InexactNumber(ValueError):
    """A JSON number that a float cannot hold: it would come back as another number."""

    def __init__(self, text: str):
        super().__init__(
            f"{text} has more digits than a JSON number keeps here (a float holds about 15 "
            "significant digits exactly): send it as a string"
        )
        self.text = text


def exact_float(text: str) -> float:
    """A JSON number with a fraction or an exponent as the float that holds it exactly:
    one whose shortest form (what `json.dumps` writes back) has the same value.

    Raises `InexactNumber` for anything else (70368744177664.01 would come back as
    70368744177664.02, 1e-400 as 0.0), `ValueError` for one beyond any float (1e400).
    """
    number = float(text)
    if repr(number) == text:  # the usual case: the text is already the float's own form
        return number
    if math.isinf(number):
        raise ValueError(f"{text} is too large for a finite JSON number")
    if Decimal(repr(number)) != Decimal(text):
        raise InexactNumber(text)
    return number


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@functools.cache
def _encoder(*, ensure_ascii: bool) -> simplejson.JSONEncoder:
    """An encoder built once (`simplejson.dumps` with options builds one per call)."""
    return simplejson.JSONEncoder(
        separators=(",", ":"),
        default=_json_default,
        use_decimal=True,
        allow_nan=False,
        namedtuple_as_object=False,
        ensure_ascii=ensure_ascii,
    )


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON bytes; datetimes become RFC 3339, UUIDs strings, and Decimals
    numbers with exactly their digits (`Decimal("5.00")` is `5.00`, never a float).

    simplejson writes Decimals that way (the standard library can only go through a
    float); NaN and Infinity, which JSON has no number for, raise `ValueError`.
    Non-ASCII text is kept as UTF-8 (one to four bytes a character, where a `\\uXXXX`
    escape takes six or twelve). A lone surrogate (from a `\\ud800` escape in the input)
    has no UTF-8 form: such a document falls back to ASCII escapes, which is valid JSON.
    """
    try:
        return _encoder(ensure_ascii=False).encode(data).encode()
    except UnicodeEncodeError:
        return _encoder(ensure_ascii=True).encode(data).encode()


def encoded(text: str) -> simplejson.RawJSON:
    """`text`, a JSON value already encoded (by `dumps`), for `dumps` to write as it is."""
    return simplejson.RawJSON(text)


def loads(raw: bytes | str, *, parse_float: Callable[[str], Any] = Decimal) -> Any:
    """JSON as Python values; a number with a fraction or an exponent is a Decimal (never
    a float, which would change 70368744177664.01), unless `parse_float` says otherwise."""
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads does
    elif not isinstance(raw, str) or raw.startswith("\ufeff"):
        return json.loads(raw)  # refused there, with json.loads's own error
    return _decoder(parse_float).decode(raw)


@functools.cache
def _decoder(parse_float: Callable[[str], Any]) -> json.JSONDecoder:
    """A decoder built once per `parse_float` (`json.loads` with options builds one per
    call)."""
    return json.JSONDecoder(parse_float=parse_float, parse_constant=_refuse_constant)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")
