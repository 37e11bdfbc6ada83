"""The worker's batch in two statements: one read, one write.

Each statement is one round trip to PostgreSQL, written once per process: the batch's
transaction is BEGIN, the read, the write and COMMIT. (It was six round trips: two reads,
two writes.) The write passes its rows as arrays (`unnest`), which psycopg2 adapts in C;
`execute_values` built one text row per order in Python, about a tenth of the worker's
CPU under load.

The payload travels as the JSON text the worker wrote from the event's payload: it is
stored as it is (`payload_text`, what the read gives back) and as jsonb (`payload`, for
queries), cast in the statement. jsonb alone would not give it back as it was: it prints
numbers without an exponent (1e300 as 301 digits) and reorders keys.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime

from orders_worker.models import ProcessedEvent, ProcessedOrder
from orders_worker.rules import OrderState

ORDER_COLUMNS = (
    "order_id",
    "user_id",
    "amount",
    "status",
    "payload",
    "created_at",
    "updated_at",
    "bucket",
    "version",
    "last_event_id",
    "last_status",
    "processed_at",
)
# The SQL type of each column's array parameter, in ORDER_COLUMNS' order (the payload's
# is its text: see the module).
_ORDER_ARRAY_TYPES = (
    "uuid[]",
    "uuid[]",
    "numeric[]",
    "text[]",
    "text[]",
    "timestamptz[]",
    "timestamptz[]",
    "integer[]",
    "integer[]",
    "uuid[]",
    "text[]",
    "timestamptz[]",
)


@functools.cache
def read_sql() -> str:
    """The batch's stored orders, locked, each row also carrying the batch's event ids
    handled before (`id status` pairs; an uncorrelated subquery, evaluated once). They
    only matter for an event whose order is stored: with no order row, none is needed."""
    orders = ProcessedOrder._meta.db_table
    events = ProcessedEvent._meta.db_table
    # The payload's text as stored; jsonb's rendering for rows written before it was.
    read = {"payload": "COALESCE(o.payload_text, o.payload::text)"}
    columns = ", ".join(read.get(c, f"o.{c}") for c in ORDER_COLUMNS)
    return (
        f"SELECT {columns}, (SELECT array_agg(e.event_id::text || ' ' || e.ack_status) "
        f"FROM {events} e WHERE e.event_id = ANY(%s::uuid[])) "
        f"FROM {orders} o WHERE o.order_id = ANY(%s::uuid[]) FOR UPDATE OF o"
    )


@functools.cache
def write_sql() -> str:
    """Upsert the changed orders (only ever by a higher version) and record the handled
    events (the first record of an event stays); answer the ids of both that were written."""
    orders = ProcessedOrder._meta.db_table
    events = ProcessedEvent._meta.db_table
    columns = ", ".join(ORDER_COLUMNS)
    arrays = ", ".join(f"%s::{kind}" for kind in _ORDER_ARRAY_TYPES)
    # The payload's text goes to both payload columns (see the module).
    values = ", ".join("u.payload::jsonb" if c == "payload" else f"u.{c}" for c in ORDER_COLUMNS)
    updated = [c for c in ORDER_COLUMNS if c != "order_id"] + ["payload_text"]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
    return (
        f"WITH upserted AS (INSERT INTO {orders} ({columns}, payload_text) "
        f"SELECT {values}, u.payload FROM unnest({arrays}) AS u({columns}) "
        f"ON CONFLICT (order_id) DO UPDATE SET {updates} "
        f"WHERE {orders}.version < EXCLUDED.version RETURNING order_id), "
        f"recorded AS (INSERT INTO {events} (event_id, order_id, version, ack_status, "
        "processed_at) SELECT *, %s::timestamptz FROM unnest(%s::uuid[], %s::uuid[], "
        "%s::integer[], %s::text[]) ON CONFLICT (event_id) DO NOTHING RETURNING event_id) "
        "SELECT ARRAY(SELECT order_id::text FROM upserted), "
        "ARRAY(SELECT event_id::text FROM recorded)"
    )


def _text(value) -> str | None:
    return None if value is None else str(value)


def _state_of(row: tuple) -> OrderState:
    (order_id, user_id, amount, status, payload, created_at, updated_at) = row[:7]
    bucket, version, last_event_id, last_status, processed_at = row[7:12]
    return OrderState(
        order_id=str(order_id),
        user_id=str(user_id),
        amount=amount,
        status=status,
        payload=json.loads(payload),  # the text (see the module)
        created_at=created_at,
        updated_at=updated_at,
        bucket=bucket,
        version=version,
        last_event_id=_text(last_event_id),
        last_status=last_status,
        processed_at=processed_at,
    )


def stored_read(
    cursor, order_ids: list[str], event_ids: list[str]
) -> tuple[dict[str, OrderState], dict[str, str]]:
    """Lock and read the stored orders of `order_ids`, and the ACK status of each of
    `event_ids` handled before (where its order is stored)."""
    cursor.execute(read_sql(), [event_ids, order_ids])
    states: dict[str, OrderState] = {}
    seen: dict[str, str] = {}
    for row in cursor.fetchall():
        state = _state_of(row)
        states[state.order_id] = state
        if not seen and row[12]:
            seen = dict(pair.split(" ", 1) for pair in row[12])
    return states, seen


def batch_write(
    cursor, states: list[OrderState], events: list[tuple], processed_at: datetime
) -> tuple[set[str], set[str]]:
    """Upsert `states` and record `events` ((event_id, order_id, version, ack_status)
    each, event_ids unique) in one statement; return the ids of the orders written and of
    the events recorded."""
    order_arrays = [
        [s.order_id for s in states],
        [s.user_id for s in states],
        [s.amount for s in states],
        [s.status for s in states],
        [json.dumps(s.payload) for s in states],
        [s.created_at for s in states],
        [s.updated_at for s in states],
        [s.bucket for s in states],
        [s.version for s in states],
        [s.last_event_id for s in states],
        [s.last_status for s in states],
        [s.processed_at for s in states],
    ]
    event_arrays = [[row[i] for row in events] for i in range(4)]
    cursor.execute(write_sql(), [*order_arrays, processed_at, *event_arrays])
    written, recorded = cursor.fetchone()
    return set(written), set(recorded)


def recorded_statuses_set(cursor, statuses: dict[str, str]) -> None:
    """Set the recorded ACK status of events (event_id -> status): the rare correction
    after a lost upsert (`services._answer_from_stored`)."""
    table = ProcessedEvent._meta.db_table
    cursor.execute(
        f"UPDATE {table} SET ack_status = answer.status "
        "FROM unnest(%s::uuid[], %s::text[]) AS answer(event_id, status) "
        f"WHERE {table}.event_id = answer.event_id",
        [list(statuses), list(statuses.values())],
    )
