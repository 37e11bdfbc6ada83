"""Reads of the API: orders from the `default` database merged with the worker's result.

An order's view is its API row; when the worker has written `order_result:<order_id>` to
Redis, that result's order_status, amount, payload, created_at, updated_at and bucket
override the row (SPEC.md). `processing`, `reason` and `version` say what the pipeline did
with the order, from what the ACK recorder wrote on the row and the result's version
(`ack_outcomes.py`). Redis is optional for reads: when it is down, or the value is
unreadable (or its amount is no amount the columns could hold), the row alone answers.
Either way the amount is a Decimal with the columns' two places.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from collections.abc import Iterable

from django.db import connections, router
from django.db.models import Func, IntegerField, QuerySet, TextField, Value
from django.db.models.fields.json import KT
from django.db.models.functions import MD5, Cast
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from orders_api.ack_outcomes import Outcome, Recorded, order_processing, recorded_merge
from orders_api.errors import OrderNotFound
from orders_api.models import Order, OutboxEvent
from orders_api.response_shapes import OrderView
from orderstream.messages import InvalidMessage, OrderResult
from orderstream.order_fields import amount_in_cents
from orderstream.statuses import ProcessedStatus
from orderstream.timestamps import rfc3339

logger = logging.getLogger(__name__)

# The worker's order_status values, each the `processing` outcome of the same name.
RESULT_OUTCOMES = frozenset(ProcessedStatus.values)


def order_results_get(*, order_ids: Iterable[uuid.UUID]) -> dict[str, OrderResult]:
    """The worker's Redis results of `order_ids` that exist and parse (empty when Redis is down)."""
    keys = [str(order_id) for order_id in order_ids]
    if not keys:
        return {}
    try:
        values = get_redis_connection("default").mget([OrderResult.redis_key(k) for k in keys])
    except (RedisError, OSError) as exc:
        logger.warning("Redis unavailable, answering from the database: %s", exc)
        return {}
    parsed = ((key, _result_parse(key, raw)) for key, raw in zip(keys, values, strict=True))
    return {key: result for key, result in parsed if result is not None}


def order_result_get(*, order_id: uuid.UUID) -> OrderResult | None:
    """The worker's Redis result of one order, if it exists and parses (None when Redis is
    down): `order_results_get` of one order, with a GET."""
    key = str(order_id)
    try:
        raw = get_redis_connection("default").get(OrderResult.redis_key(key))
    except (RedisError, OSError) as exc:
        logger.warning("Redis unavailable, answering from the database: %s", exc)
        return None
    return _result_parse(key, raw)


def _result_parse(key: str, raw: bytes | None) -> OrderResult | None:
    """A stored result, or None when there is none or it is unreadable (logged)."""
    if raw is None:
        return None
    try:
        result = OrderResult.from_bytes(raw)
        # The worker writes the column's amount; a value from elsewhere (an older
        # worker wrote 5 for 5.00) is rounded to cents, one beyond the columns ignored.
        return dataclasses.replace(result, amount=amount_in_cents(result.amount))
    except (InvalidMessage, KeyError, TypeError, ValueError, ArithmeticError) as exc:
        logger.warning("ignoring unreadable result of order %s: %s", key, exc)
        return None


def order_recorded(order: Order, result: OrderResult | None = None) -> Recorded:
    """What the ACK recorder wrote on the row, joined (`processing.recorded_merge`) with
    the state the worker's Redis result holds, when it has a version: the result can be
    written before its ACK is recorded, and orders whose ACKs predate the recorder have
    only the result to tell."""
    outcome = None
    if order.outcome and order.outcome_version is not None:
        outcome = Outcome(order.outcome_version, order.outcome, order.outcome_reason)
    recorded = Recorded(outcome, order.applied_version)
    if result is not None and result.version >= 1 and result.order_status in RESULT_OUTCOMES:
        applied = Outcome(result.version, result.order_status)
        recorded = recorded_merge(recorded=recorded, outcome=applied)
    return recorded


def order_view(*, order: Order, result: OrderResult | None) -> OrderView:
    """The OrderView of SPEC.md: the row, overridden by the worker's result when present,
    and what the pipeline did with it. The answer's body as it is: the amount already has
    the columns' two places, the uuids are rendered as strings."""
    recorded = order_recorded(order, result)
    processing, reason = order_processing(version=order.version, recorded=recorded)
    view: OrderView = {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "amount": order.amount,
        "status": order.status,
        "payload_json": order.payload,
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
        "bucket": order.bucket,
        "processing": processing,
        "reason": reason,
        "version": recorded.applied_version,
    }
    if result is not None:
        view.update(
            status=result.order_status,
            amount=result.amount,
            payload_json=result.payload,
            created_at=result.created_at,
            updated_at=result.updated_at,
            bucket=result.bucket,
        )
    return view


def order_views(*, orders: Iterable[Order]) -> list[OrderView]:
    """Views of several orders, with one Redis round trip."""
    orders = list(orders)
    results = order_results_get(order_ids=[o.order_id for o in orders])
    return [order_view(order=o, result=results.get(str(o.order_id))) for o in orders]


def order_event_applied(*, order_id: uuid.UUID, event_id: str) -> bool:
    """Whether the worker's result shows the event applied: it holds the event's version
    or a later one (a create: any result). False when unknown (no result, Redis down, or
    the event's outbox row already purged)."""
    result = order_results_get(order_ids=[order_id]).get(str(order_id))
    if result is None:
        return False
    version = (
        OutboxEvent.objects.filter(event_id=event_id).values_list("version", flat=True).first()
    )
    return version == 1 or (version is not None and result.version >= version)


# Columns an order's view (`order_view`) does not read, left out of GET /orders/{id}'s
# query: payload_text can be as large as the payload, and only a delete reads it.
UNREAD_COLUMNS = frozenset({"payload_text"})


@dataclasses.dataclass(frozen=True)
class _RowQuery:
    """GET /orders/{id}'s query, written once, and how its row becomes an Order."""

    alias: str  # the database
    sql: str
    columns: tuple[str, ...]  # in the model's order, as Order.from_db takes them
    converters: tuple  # (index, converter, column): what the ORM's compiler applies


@functools.cache
def _row_query() -> _RowQuery:
    """Built once. Through the ORM (`Order.objects.raw`, which read every column), the
    query and its row's conversion were about a seventh of a GET's CPU (py-spy, 2026-12-07)."""
    alias = router.db_for_read(Order)
    connection = connections[alias]
    quote = connection.ops.quote_name
    table = Order._meta.db_table
    fields = [f for f in Order._meta.concrete_fields if f.attname not in UNREAD_COLUMNS]
    selected = ", ".join(quote(field.column) for field in fields)
    sql = f"SELECT {selected} FROM {quote(table)} WHERE {quote(Order._meta.pk.column)} = %s"
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(table)
        for converter in connection.ops.get_db_converters(column) + column.get_db_converters(
            connection
        ):
            converters.append((index, converter, column))
    return _RowQuery(alias, sql, tuple(f.attname for f in fields), tuple(converters))


def order_row(*, order_id: uuid.UUID) -> Order | None:
    """The API row of one order with the columns of its view (the others deferred), or
    None: one query, its values converted as the ORM converts them."""
    query = _row_query()
    connection = connections[query.alias]
    with connection.cursor() as cursor:
        cursor.execute(query.sql, [order_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, converter, column in query.converters:
        values[index] = converter(values[index], column, connection)
    return Order.from_db(query.alias, query.columns, values)


def order_get(*, order_id: uuid.UUID) -> OrderView:
    """The view of one order; 404 when unknown. One query and one Redis GET."""
    order = order_row(order_id=order_id)
    if order is None:
        raise OrderNotFound("order_id", "no order with this order_id")
    return order_view(order=order, result=order_result_get(order_id=order_id))


def order_get_by_external_id(*, external_id: str, user_id: uuid.UUID) -> OrderView:
    """The newest order of `user_id` whose payload.id is `external_id`; 404 when none."""
    # payload->>'id' = external_id: matches a string id and a number rendered as text. The
    # md5 condition is what the index holds (models.py); the other one rules out collisions.
    order = (
        Order.objects.alias(external_id=KT("payload__id"), external_id_md5=MD5(KT("payload__id")))
        .filter(external_id_md5=MD5(Value(external_id)), external_id=external_id, user_id=user_id)
        .order_by("-created_at")
        .first()
    )
    if order is None:
        raise OrderNotFound("external_id", "no order with this external_id for this user_id")
    return order_views(orders=[order])[0]


def order_list(*, user_id: uuid.UUID | None = None, status: str | None = None) -> QuerySet[Order]:
    """Orders, newest first, optionally of one user and/or in one API status."""
    orders = Order.objects.order_by("-created_at", "order_id")
    if user_id is not None:
        orders = orders.filter(user_id=user_id)
    if status:
        orders = orders.filter(status=status)
    return orders


class OctetLength(Func):
    """PostgreSQL's octet_length: the size in bytes of a text (of its UTF-8 encoding)."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()


def order_page(*, orders: QuerySet[Order], start: int, size: int, max_bytes: int) -> list[Order]:
    """Up to `size` of `orders` from row `start` (0 = the first), as many as fit in
    `max_bytes` of payload JSON, but always one: what one page of the list loads.

    The sizes are measured by the database first (the payloads' text is not sent), then
    only the rows that fit are loaded: a page of 500 orders of 880 KB each would
    otherwise load 440 MB into one thread (and as much again from Redis).
    """
    sizes = orders.annotate(payload_bytes=OctetLength(Cast("payload", TextField())))
    kept, total = [], 0
    for order_id, payload_bytes in sizes.values_list("order_id", "payload_bytes")[
        start : start + size
    ]:
        total += payload_bytes
        if kept and total > max_bytes:
            break
        kept.append(order_id)
    by_id = Order.objects.in_bulk(kept)
    return [by_id[order_id] for order_id in kept if order_id in by_id]
