"""The worker's results in Redis: `order_result:<order_id>` holds the full result JSON.

Written with one pipeline per batch through the raw client of the `default` cache, so the
keys are plain (no django-redis prefix or pickling) and readable in RedisInsight.

Each write is a compare-and-set on the order's `version` (a small Lua script, run
atomically by Redis): a result only replaces one of a lower version, so a worker that
finishes late (two workers overlapping during a rebalance) cannot move it backwards.
"""

from __future__ import annotations

from collections.abc import Iterable

from django_redis import get_redis_connection

from orderstream.messages import OrderResult
from orderstream.timestamps import rfc3339

from .rules import OrderState

# KEYS[1] the key; ARGV: the value, its version, the TTL in seconds (0 = none).
# The stored version is read from the value's prefix (`OrderResult.to_bytes` writes it
# first), so the payload is never decoded; a value without one counts as absent.
_SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local stored = tonumber(string.match(current, '^{"version":(%d+)'))
  if stored and stored >= tonumber(ARGV[2]) then
    return 0
  end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""


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
        version=state.version,
    )


def order_results_write(*, states: Iterable[OrderState], ttl: int) -> int:
    """Write every state's result unless Redis holds a newer version, in one pipeline
    (`ttl` seconds, 0 = no expiry); return how many were written."""
    client = get_redis_connection("default")
    set_if_newer = client.register_script(_SET_IF_NEWER)  # just hashes it: cheap
    pipe = client.pipeline(transaction=False)
    count = 0
    for state in states:
        set_if_newer(
            keys=[OrderResult.redis_key(state.order_id)],
            args=[order_result_of(state).to_bytes(), state.version, max(ttl, 0)],
            client=pipe,
        )
        count += 1
    if not count:
        return 0
    return sum(pipe.execute())


def order_result_read(*, order_id: str) -> OrderResult | None:
    """The stored result of one order, or None."""
    raw = get_redis_connection("default").get(OrderResult.redis_key(order_id))
    return OrderResult.from_bytes(raw) if raw is not None else None
