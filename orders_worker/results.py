"""The worker's results in Redis: `order_result:<order_id>` holds the full result JSON.

Written with one pipeline per batch through the raw client of the `default` cache, so the
keys are plain (no django-redis prefix or pickling) and readable in RedisInsight.
"""

from __future__ import annotations

from collections.abc import Iterable

from django_redis import get_redis_connection

from orderstream.messages import OrderResult, rfc3339

from .rules import OrderState


def order_result_of(state: OrderState) -> OrderResult:
    """The Redis value for an order state (`status` is the ACK status of its last event)."""
    return OrderResult(
        order_id=state.order_id,
        status=state.last_status,
        processed_at=rfc3339(state.processed_at),
        order_status=state.status,
        user_id=state.user_id,
        amount=state.amount,
        payload=state.payload,
        created_at=rfc3339(state.created_at),
        updated_at=rfc3339(state.updated_at),
        bucket=state.bucket,
    )


def order_results_write(*, states: Iterable[OrderState], ttl: int) -> int:
    """SET every state's result in one round trip (`ttl` seconds, 0 = no expiry)."""
    pipe = get_redis_connection("default").pipeline(transaction=False)
    count = 0
    for state in states:
        pipe.set(
            OrderResult.redis_key(state.order_id),
            order_result_of(state).to_bytes(),
            ex=ttl if ttl > 0 else None,
        )
        count += 1
    if count:
        pipe.execute()
    return count


def order_result_read(*, order_id: str) -> OrderResult | None:
    """The stored result of one order, or None."""
    raw = get_redis_connection("default").get(OrderResult.redis_key(order_id))
    return OrderResult.from_bytes(raw) if raw is not None else None
