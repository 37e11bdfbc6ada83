"""The Go original's messages (github.com/IvKhrom/OrderStream), read beside the project's own.

Its events carry no `event_id` and no `version`, come without a key, and name the order's
stored status instead of the operation. The worker reads them with:

- `original_event_id`: a deterministic event id from the record's coordinates, so the
  same record delivered again is a duplicate (and two records never share one);
- `event_operation`: the operation a status word stands for (ours as they are, the
  original's `deleted` deletes, its other words upsert).

Its ACKs carry no `event_id` and no `version`: `ack_processed_at` reads their time (the API
matches them to a waiting write by order and time, see `orders_api/ack_wait`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from .statuses import Operation
from .timestamps import parse_rfc3339

# Fixed: the ids of records already handled must not change between releases.
ORIGINAL_EVENT_NAMESPACE = uuid.UUID("5b0f3a52-6a43-4b8e-9f0c-0c2d6c1e7a11")

# The original's order statuses (its `models.OrderEvent.Status`); its API publishes `new`
# for creates and updates and `deleted` for deletes.
ORIGINAL_UPSERT_STATUSES = frozenset({"new", "processing", "done", "cancelled"})
OPERATIONS = frozenset(Operation.values)


def original_event_id(*, topic: str, partition: int, offset: int) -> str:
    """The event id of a record that has none: a uuid5 of its topic, partition and offset.

    A redelivery of the record gets the same id (a duplicate); a topic deleted and created
    again restarts its offsets, so records of the new topic could repeat ids of the old one
    within the worker's event retention (WORKER_EVENT_RETENTION_SECONDS).
    """
    return str(uuid.uuid5(ORIGINAL_EVENT_NAMESPACE, f"{topic}\x00{partition}\x00{offset}"))


def event_operation(status: object) -> str | None:
    """The operation an event's `status` stands for; None for a word neither format has."""
    if status in OPERATIONS:  # the original's `deleted` is ours too
        return str(status)
    if status in ORIGINAL_UPSERT_STATUSES:
        return Operation.UPDATED
    return None


def ack_processed_at(text: str) -> datetime | None:
    """An ACK's `processed_at` as an aware datetime, or None when it is not RFC 3339.

    Go writes nanoseconds (nine fraction digits); Python keeps microseconds, cutting the
    digits beyond (never rounding up: an ACK never looks later than it was).
    """
    if not isinstance(text, str):
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None
