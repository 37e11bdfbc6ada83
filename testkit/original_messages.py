"""The Go original's messages, as its services write them, for the compatibility tests.

`original/*.json` are written from the original's structs (its `internal/models`:
`OrderEvent`, `OrderAck`) in the form Go's `encoding/json` gives them: fields in struct
order, no spaces, the payload as raw JSON. The ids and times vary per test: they are
placeholders (`{order_id}`, `{user_id}`, `{timestamp}`, `{processed_at}`) inside the JSON
strings, filled by `original_message`. `StandInOriginal` produces them as the original
does: no key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orderstream.kafka import make_producer

FIXTURES = Path(__file__).parent / "original"
# The original's event statuses (its models.OrderEvent comment): `new` from its API for
# creates and updates, `deleted` for deletes; the others only from older tools.
ORIGINAL_EVENT_STATUSES = ("new", "processing", "done", "cancelled", "deleted")


def original_message(name: str, **values: str) -> bytes:
    """The bytes of fixture `name` with its placeholders filled from `values`."""
    text = (FIXTURES / f"{name}.json").read_text().strip()
    for field, value in values.items():
        text = text.replace("{" + field + "}", value)
    if "{" + "order_id}" in text:
        raise ValueError(f"{name}: order_id left unfilled")
    return text.encode()


def go_time(moment: datetime, *, nanoseconds: int = 0) -> str:
    """`moment` as Go's time.Time marshals in UTC (RFC 3339 with up to nine fraction
    digits, trailing zeros dropped); `nanoseconds` (0-999) adds the digits Python lacks."""
    moment = moment.astimezone(UTC)
    fraction = f"{moment.microsecond:06d}{nanoseconds:03d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def go_times(start: datetime, count: int, step: timedelta = timedelta(milliseconds=1)):
    """`count` increasing Go timestamps from `start`."""
    return [go_time(start + i * step, nanoseconds=123) for i in range(count)]


def as_go_reads(raw: bytes, fields: tuple[str, ...]) -> dict:
    """What a Go struct with JSON `fields` reads of `raw`: the fields it knows (others are
    ignored by encoding/json); KeyError for one that is missing."""
    data = json.loads(raw)
    return {name: data[name] for name in fields}


# The fields of the original's structs (its internal/models).
GO_ACK_FIELDS = ("order_id", "status", "processed_at")
GO_RESULT_FIELDS = (
    "order_id",
    "status",
    "processed_at",
    "order_status",
    "user_id",
    "amount",
    "payload",
    "created_at",
    "updated_at",
    "bucket",
)


class StandInOriginal:
    """A stand-in for the original's services: produces exactly their bytes, without key
    (its kafka-go writer's balancer spreads them over the partitions; `partition` picks
    one, as that balancer may)."""

    def __init__(self):
        self.producer = make_producer()

    def send(self, topic: str, raw: bytes, *, partition: int | None = None) -> None:
        self.producer.send(topic, raw, key=None, partition=partition)
        self.producer.flush(timeout=10)

    def close(self) -> None:
        self.producer.close(timeout=5)
