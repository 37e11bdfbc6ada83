"""The worker's results in Redis: `order_result:<order_id>` holds the full result JSON.

Written with one script call per batch (one command, one round trip) through the raw
client of the `default` cache, so the keys are plain (no django-redis prefix or pickling)
and readable in RedisInsight.

Each write is a compare-and-set on the order's `version` (the Lua script runs atomically
in Redis; it names its keys, so a Redis Cluster would need them in one hash slot): a
result only replaces one of a lower version, so a worker that finishes late (two workers
overlapping during a rebalance) cannot move it backwards.
"""

from __future__ import annotations

from collections.abc import Iterable

from django_redis import get_redis_connection

from orders_worker.rules import OrderState
from orderstream.messages import OrderResult
from orderstream.timestamps import rfc3339

# KEYS: the keys; ARGV[1] the TTL in seconds (0 = none), then per key its value and its
# version. The stored version is read from the value's prefix (`OrderResult.to_bytes`
# writes it first), so the payload is never decoded; a value without one counts as absent.
# Returns how many keys were written.
_SET_EACH_IF_NEWER = """
local ttl = tonumber(ARGV[1])
local written = 0
for i, key in ipairs(KEYS) do
  local value, version = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
  local current = redis.call('GET', key)
  local stored = current and tonumber(string.match(current, '^{"version":(%d+)'))
  if not (stored and stored >= version) then
    if ttl > 0 then
      redis.call('SET', key, value, 'EX', ttl)
    else
      redis.call('SET', key, value)
    end
    written = written + 1
  end
end
return written
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
    """Write every state's result unless Redis holds a newer version, in one script call
    (`ttl` seconds, 0 = no expiry); return how many were written."""
    keys, args = [], [max(ttl, 0)]
    for state in states:
        keys.append(OrderResult.redis_key(state.order_id))
        args += [order_result_of(state).to_bytes(), state.version]
    if not keys:
        return 0
    set_each_if_newer = get_redis_connection("default").register_script(_SET_EACH_IF_NEWER)
    return set_each_if_newer(keys=keys, args=args)
