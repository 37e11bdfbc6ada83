"""The Redis results against the real Redis: a result never moves to an older version."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from django_redis import get_redis_connection

from orders_worker.results import order_results_write
from orderstream.messages import OrderResult
from testkit.results import stored_result

from .support import a_state


@pytest.fixture
def redis():
    client = get_redis_connection("default")
    keys = []
    yield client, keys
    if keys:
        client.delete(*keys)


def test_a_lower_or_equal_version_does_not_overwrite_a_higher_one(redis):
    client, keys = redis
    v2 = a_state(2)
    keys.append(OrderResult.redis_key(v2.order_id))
    assert order_results_write(states=[v2], ttl=60) == 1
    v1 = replace(v2, version=1, amount=Decimal(1), last_status="created")
    same = replace(v2, amount=Decimal(7))
    assert order_results_write(states=[v1, same], ttl=60) == 0
    stored = stored_result(order_id=v2.order_id)
    assert (stored.version, stored.amount, stored.status) == (2, Decimal(2), "updated")
    assert stored.payload == {"version": 0, "note": "заметка"}


def test_a_higher_version_replaces_the_result_and_keeps_the_ttl(redis):
    client, keys = redis
    v1 = a_state(1)
    key = OrderResult.redis_key(v1.order_id)
    keys.append(key)
    order_results_write(states=[v1], ttl=60)
    assert order_results_write(states=[replace(v1, version=2)], ttl=120) == 1
    assert stored_result(order_id=v1.order_id).version == 2
    assert 60 < client.ttl(key) <= 120


def test_no_ttl_means_no_expiry_and_a_value_without_version_is_replaced(redis):
    client, keys = redis
    state = a_state(1)
    key = OrderResult.redis_key(state.order_id)
    keys.append(key)
    written_before_versions = {"order_id": state.order_id, "status": "created", "bucket": 1}
    client.set(key, json.dumps(written_before_versions), ex=30)
    assert order_results_write(states=[state], ttl=0) == 1
    assert stored_result(order_id=state.order_id).order_id == state.order_id
    assert client.ttl(key) == -1
