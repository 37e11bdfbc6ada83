"""The message schema both apps share: the order event, its ACK, and the Redis result.

The API builds `OrderEvent`s and reads `OrderAck`s; the worker does the opposite and
writes `OrderResult`s. Parsing validates every field and raises `InvalidMessage`, so a
bad message is turned into a dead-letter entry and an error ACK, never a crash.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from .exact_json import InexactNumber, dumps, encoded, exact_float, loads
from .original_format import ORIGINAL_UPSERT_STATUSES, event_operation
from .statuses import AckStatus, Operation
from .timestamps import event_time, parse_rfc3339

# What the API asks for: the operation it performed on its own row.
EVENT_STATUSES = frozenset(Operation.values)
# The status words an event may carry: ours, and the Go original's order statuses.
READABLE_EVENT_STATUSES = EVENT_STATUSES | ORIGINAL_UPSERT_STATUSES
# What the worker reports in the ACK.
ACK_STATUSES = frozenset(AckStatus.values)
# The largest serialised event the API may publish: below kafka-python's default
# `max_request_size` (1 MiB), leaving room for the key, headers and record overhead.
MAX_EVENT_BYTES = 900_000


class InvalidMessage(ValueError):
    """A message that cannot be processed; `order_id` is kept when it could be read."""

    def __init__(self, reason: str, *, order_id: str | None = None, event_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.order_id = order_id
        self.event_id = event_id


# A uuid in the form `str(uuid.UUID(...))` gives; any other form is read by uuid.UUID.
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind))


def _fields_of(message: Any) -> dict:
    """A dataclass's fields as a dict, without `asdict`'s deep copy of the payload (the
    names are read once per class: `fields()` was a twentieth of the worker's drain)."""
    return {name: getattr(message, name) for name in _field_names(type(message))}


def _uuid_field(data: dict, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidMessage(f"{name}: required uuid string")
    if CANONICAL_UUID.fullmatch(value):  # as the API writes them: already canonical
        return value
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
    """`orders.events` value; the Kafka key is `order_id`.

    An event of the Go original (`original_format`) has no version (None: the worker
    orders it by `timestamp`), and an event id the reader derived from its record.
    """

    event_id: str
    order_id: str
    user_id: str
    payload: dict
    status: str
    version: int | None
    timestamp: str
    external_id: str | None = None

    def to_bytes(self, *, payload_text: str | None = None) -> bytes:
        """The event's JSON; `payload_text`, when given, is its payload as accepted (the
        text `dumps` made of it), written as it is instead of encoding `payload`."""
        data = _fields_of(self)
        if payload_text is not None:
            data["payload"] = encoded(payload_text)
        return dumps(data)

    @property
    def key(self) -> bytes:
        return self.order_id.encode()

    @classmethod
    def from_bytes(
        cls, raw: bytes | str | None, *, event_id_if_missing: str | None = None
    ) -> OrderEvent:
        """The event, validated. Its numbers are floats that hold them exactly: the
        worker stores the payload as JSON written from floats, so a number a float would
        change is refused (`InvalidMessage`), never altered.

        An event without `event_id` (the Go original's) takes `event_id_if_missing`
        (`original_format.original_event_id` of its record); without it, it is invalid.
        Its `status` is the operation (`original_format.event_operation`)."""
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
        if data.get("event_id") is None and event_id_if_missing is not None:
            data["event_id"] = event_id = event_id_if_missing
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
        status = event_operation(data.get("status"))
        if status is None:
            raise InvalidMessage(
                f"status: must be one of {sorted(READABLE_EVENT_STATUSES)}, "
                f"got {data.get('status')!r}"
            )
        version = data.get("version")
        if version is not None and (
            not isinstance(version, int) or isinstance(version, bool) or version < 1
        ):
            raise InvalidMessage("version: must be a positive integer (or absent)")
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
    """`orders.ack` value: the result of one event (`error` only when rejected).

    `version` is the event's version (None when the event could not be read, and in ACKs
    of workers that predate it): what the API's ACK recorder orders outcomes by.
    """

    event_id: str | None
    order_id: str | None
    status: str
    processed_at: str
    error: str | None = None
    version: int | None = None

    def to_bytes(self) -> bytes:
        data = _fields_of(self)
        for optional in ("error", "version"):
            if data[optional] is None:
                del data[optional]
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
        version = data.get("version")
        if version is not None and (
            not isinstance(version, int) or isinstance(version, bool) or version < 1
        ):
            raise InvalidMessage("version: must be a positive integer")
        return cls(
            event_id=data.get("event_id"),
            order_id=data.get("order_id"),
            status=status,
            processed_at=str(data.get("processed_at", "")),
            error=data.get("error"),
            version=version,
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
