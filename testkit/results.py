"""An order's result in Redis as the tests read it: the value the worker wrote under
`OrderResult.redis_key`, parsed, without the API's rounding or its tolerance of bad values
(`orders_api.selectors.order_results_get` is what production reads)."""

from __future__ import annotations

from django_redis import get_redis_connection

from orderstream.messages import OrderResult


def stored_result(*, order_id: str) -> OrderResult | None:
    """The stored result of one order, or None."""
    raw = get_redis_connection("default").get(OrderResult.redis_key(order_id))
    return OrderResult.from_bytes(raw) if raw is not None else None
