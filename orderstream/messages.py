"""The message schema both apps share: the order event, its ACK, and the Redis result.

The API builds `OrderEvent`s and reads `OrderAck`s; the worker does the opposite and
writes `OrderResult`s. Parsing validates every field and raises `InvalidMessage`, so a
bad message is turned into a dead-letter entry and an error ACK, never a crash.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import simplejson

from .statuses import AckStatus, Operation

# What the API asks for: the operation it performed on its own row.
EVENT_STATUSES = frozenset(Operation.values)
# What the worker reports in the ACK.
ACK_STATUSES = frozenset(AckStatus.values)
# The largest serialised event the API may publish: below kafka-python's default
# `max_request_size` (1 MiB), leaving room for the key, headers and record overhead.
MAX_EVENT_BYTES = 900_000
# Event timestamps outside these UTC years are refused: a datetime near year 1 or 9999
# overflows when moved between time zones (PostgreSQL stores it, Python cannot read it back).
EVENT_YEARS = range(1970, 9999)


class InvalidMessage(ValueError):
    """A message that cannot be processed; `order_id` is kept when it could be read."""

    def __init__(self, reason: str, *, order_id: str | None = None, event_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.order_id = order_id
        self.event_id = event_id


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """Render an aware datetime as RFC 3339 in UTC with a `Z` suffix."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# RFC 3339's date-time (section 5.6): `T` and `Z` in either case, a time offset required.
# datetime.fromisoformat alone reads more of ISO 8601 (basic format, no seconds).
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time as an aware datetime; ValueError for anything else."""
    if not RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 date-time with a time offset")
    return datetime.fromisoformat(text.upper())  # Python 3.11+ reads the Z


def event_time(text: str) -> datetime:
    """An event's `timestamp` as an aware UTC datetime within `EVENT_YEARS`.

    Raises `ValueError` for anything else.
    """
    try:
        moment = parse_rfc3339(text).astimezone(UTC)
    except OverflowError:
        raise ValueError("date out of range") from None
    if moment.year not in EVENT_YEARS:
        raise ValueError(
            f"year {moment.year} is outside {EVENT_YEARS.start}..{EVENT_YEARS.stop - 1}"
        )
    return moment


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


def _fields_of(message: Any) -> dict:
    """A dataclass's fields as a dict, without `asdict`'s deep copy of the payload."""
    return {f.name: getattr(message, f.name) for f in fields(message)}


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON bytes; datetimes become RFC 3339, UUIDs strings, and Decimals
    numbers with exactly their digits (`Decimal("5.00")` is `5.00`, never a float).

    simplejson writes Decimals that way (the standard library can only go through a
    float); NaN and Infinity, which JSON has no number for, raise `ValueError`.
    Non-ASCII text is kept as UTF-8 (one to four bytes a character, where a `\\uXXXX`
    escape takes six or twelve). A lone surrogate (from a `\\ud800` escape in the input)
    has no UTF-8 form: such a document falls back to ASCII escapes, which is valid JSON.
    """
    options = {
        "separators": (",", ":"),
        "default": _json_default,
        "use_decimal": True,
        "allow_nan": False,
        "namedtuple_as_object": False,
    }
    try:
        return simplejson.dumps(data, ensure_ascii=False, **options).encode()
    except UnicodeEncodeError:
        return simplejson.dumps(data, **options).encode()


def loads(raw: bytes | str, *, parse_float: Callable[[str], Any] = Decimal) -> Any:
    """JSON as Python values; a number with a fraction or an exponent is a Decimal (never
    a float, which would change 70368744177664.01), unless `parse_float` says otherwise."""
    return json.loads(raw, parse_float=parse_float, parse_constant=_refuse_constant)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


def _uuid_field(data: dict, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidMessage(f"{name}: required uuid string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidMessage(f"{name}: not a valid uuid") from None


def _load_object(raw: bytes | str | None, *, parse_float: Callable[[str], Any] = Decimal) -> dict:
    if raw is None:
        raise InvalidMessage("message has no value")
    try:
        data = loads(raw, parse_float=parse_float)
    except InexactNumber:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidMessage(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidMessage("not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidMessage("message is not a JSON object")
    return data


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """`orders.events` value; the Kafka key is `order_id`."""

    event_id: str
    order_id: str
    user_id: str
    payload: dict
    status: str
    version: int
    timestamp: str
    external_id: str | None = None

    def to_bytes(self) -> bytes:
        return dumps(_fields_of(self))

    @property
    def key(self) -> bytes:
        return self.order_id.encode()

    @classmethod
    def from_bytes(cls, raw: bytes | str | None) -> OrderEvent:
        """The event, validated. Its numbers are floats that hold them exactly: the
        worker stores the payload as JSON written from floats, so a number a float would
        change is refused (`InvalidMessage`), never altered."""
        try:
            data = _load_object(raw, parse_float=exact_float)
        except InexactNumber as exc:
            ids = _load_object(raw)  # read again, exactly, to name the order
            raise InvalidMessage(
                f"number {exc}",
                order_id=_valid_uuid_or_none(_text_or_none(ids.get("order_id"))),
                event_id=_valid_uuid_or_none(_text_or_none(ids.get("event_id"))),
            ) from None
        order_id = data.get("order_id") if isinstance(data.get("order_id"), str) else None
        event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
        try:
            return cls._from_dict(data)
        except InvalidMessage as exc:
            exc.order_id = exc.order_id or _valid_uuid_or_none(order_id)
            exc.event_id = exc.event_id or _valid_uuid_or_none(event_id)
            raise

    @classmethod
    def _from_dict(cls, data: dict) -> OrderEvent:
        order_id = _uuid_field(data, "order_id")
        event_id = _uuid_field(data, "event_id")
        user_id = _uuid_field(data, "user_id")
        payload = data.get("payload")
        if not isinstance(payload, dict):
            raise InvalidMessage("payload: required JSON object")
        status = data.get("status")
        if status not in EVENT_STATUSES:
            raise InvalidMessage(f"status: must be one of {sorted(EVENT_STATUSES)}, got {status!r}")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidMessage("version: required positive integer")
        timestamp = data.get("timestamp")
        if not isinstance(timestamp, str):
            raise InvalidMessage("timestamp: required RFC 3339 string")
        try:
            parse_rfc3339(timestamp)
        except ValueError:
            raise InvalidMessage("timestamp: not an RFC 3339 date-time") from None
        try:
            event_time(timestamp)
        except ValueError as exc:
            raise InvalidMessage(f"timestamp: out of range: {exc}") from None
        external_id = data.get("external_id")
        if external_id is not None and not isinstance(external_id, str):
            raise InvalidMessage("external_id: must be a string or null")
        return cls(
            event_id=event_id,
            order_id=order_id,
            user_id=user_id,
            payload=payload,
            status=status,
            version=version,
            timestamp=timestamp,
            external_id=external_id,
        )


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _valid_uuid_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class OrderAck:
    """`orders.ack` value: the result of one event (`error` only when rejected)."""

    event_id: str | None
    order_id: str | None
    status: str
    processed_at: str
    error: str | None = None

    def to_bytes(self) -> bytes:
        data = _fields_of(self)
        if data["error"] is None:
            del data["error"]
        return dumps(data)

    @classmethod
    def from_bytes(cls, raw: bytes | str | None) -> OrderAck:
        data = _load_object(raw)
        status = data.get("status")
        if status not in ACK_STATUSES:
            raise InvalidMessage(f"status: must be one of {sorted(ACK_STATUSES)}, got {status!r}")
        for name in ("event_id", "order_id", "error"):
            if not isinstance(data.get(name), str | None):
                raise InvalidMessage(f"{name}: must be a string, got {type(data[name]).__name__}")
        return cls(
            event_id=data.get("event_id"),
            order_id=data.get("order_id"),
            status=status,
            processed_at=str(data.get("processed_at", "")),
            error=data.get("error"),
        )


@dataclass(frozen=True, slots=True)
class OrderResult:
    """Redis `order_result:<order_id>` value: the worker's full view of the order."""

    order_id: str
    status: str
    processed_at: str
    order_status: str
    user_id: str
    amount: Decimal
    payload: dict
    created_at: str
    updated_at: str
    bucket: int
    # The order's version: a result is only ever replaced by one of a higher version.
    # Absent (0) in values written before it was added.
    version: int = 0

    @staticmethod
    def redis_key(order_id: str) -> str:
        return f"order_result:{order_id}"

    def to_bytes(self) -> bytes:
        """The JSON value, `version` first so the worker's compare-and-set script can read
        it without decoding the payload."""
        data = {"version": self.version} | _fields_of(self)
        return dumps(data)

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> OrderResult:
        """The result; every number in it a Decimal (or an int) with exactly its digits."""
        data = _load_object(raw)
        amount = data.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, (int, Decimal)):
            raise InvalidMessage("amount: required JSON number")
        return cls(
            order_id=str(data["order_id"]),
            status=str(data["status"]),
            processed_at=str(data["processed_at"]),
            order_status=str(data["order_status"]),
            user_id=str(data["user_id"]),
            amount=Decimal(amount),
            payload=data["payload"],
            created_at=str(data["created_at"]),
            updated_at=str(data["updated_at"]),
            bucket=int(data["bucket"]),
            version=int(data.get("version") or 0),
        )
