"""The literals contract.md promises, written out here rather than imported from the code.

A test that imports `MAX_VERSION` passes whatever its value is; these tests state the
Redis key, the topic names, the version and event size limits, the ACK statuses and the
`Idempotency-Key` rules as numbers and strings, and check them through public functions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django_redis import get_redis_connection

from orders_api.errors import EventTooLarge
from orders_api.exceptions import DOMAIN_STATUSES, ApplicationError
from orders_api.idempotency import idempotency_key_clean
from orders_api.models import Order
from orders_api.outbox_events import outbox_event_build
from orders_worker.rules import order_event_decide
from orderstream.messages import InvalidMessage, OrderAck, OrderResult
from testkit.factories import OrderEventFactory
from testkit.results import stored_result

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
INT32_MAX = 2147483647  # PostgreSQL `integer`: the largest version the worker stores
EVENT_LIMIT = 900_000  # bytes: below kafka-python's 1 MiB max_request_size


# ---------------------------------------------------------------- Redis key
def test_the_redis_key_of_a_result_is_order_result_colon_order_id():
    order_id = str(uuid.uuid4())
    assert OrderResult.redis_key(order_id) == "order_result:" + order_id


@pytest.mark.db  # Redis
def test_a_result_stored_under_order_result_colon_order_id_is_read_back():
    """What RedisInsight shows is what the API reads: the plain key of contract.md."""
    order_id = str(uuid.uuid4())
    value = {
        "order_id": order_id,
        "status": "created",
        "processed_at": "2026-01-02T03:04:05Z",
        "order_status": "done",
        "user_id": str(uuid.uuid4()),
        "amount": 5,
        "payload": {},
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:05Z",
        "bucket": 2,
    }
    client = get_redis_connection("default")
    client.set(f"order_result:{order_id}", json.dumps(value), ex=60)
    try:
        result = stored_result(order_id=order_id)
    finally:
        client.delete(f"order_result:{order_id}")
    assert result is not None and result.order_id == order_id and result.bucket == 2


# ---------------------------------------------------------------- topics
def test_the_topic_names_default_to_the_spec_names():
    """Without the variables, the settings name contract.md's topics (and the dead-letter one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "DJANGO_SETTINGS"))}
    code = (
        "import orderstream.settings.base as s; "
        "print(s.ORDERS_EVENTS_TOPIC, s.ORDERS_ACK_TOPIC, s.ORDERS_DLQ_TOPIC)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["orders.events", "orders.ack", "orders.events.dlq"]


# ---------------------------------------------------------------- version limit
def test_the_largest_postgres_integer_is_a_valid_version():
    event = OrderEventFactory(version=INT32_MAX)
    decision = order_event_decide(stored=None, event=event, processed_at=NOW)
    assert decision.state.version == 2147483647


@pytest.mark.parametrize("version", [INT32_MAX + 1, 2**63])
def test_a_version_beyond_the_postgres_integer_is_rejected_naming_the_event(version):
    event = OrderEventFactory(version=version)
    with pytest.raises(InvalidMessage) as raised:
        order_event_decide(stored=None, event=event, processed_at=NOW)
    assert raised.value.reason == "version: larger than 2147483647"
    assert (raised.value.order_id, raised.value.event_id) == (event.order_id, event.event_id)


# ---------------------------------------------------------------- event size limit
def an_order_whose_event_is(size: int, monkeypatch) -> Order:
    """An order (unsaved) whose `orders.events` value is exactly `size` bytes."""
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    order = Order(order_id=uuid.uuid4(), user_id=uuid.uuid4(), payload={"n": ""}, version=1)
    overhead = len(outbox_event_build(order=order, operation="created").row.value.encode())
    order.payload = {"n": "x" * (size - overhead)}
    return order


def test_an_event_of_exactly_the_limit_is_accepted(monkeypatch):
    order = an_order_whose_event_is(EVENT_LIMIT, monkeypatch)
    assert len(outbox_event_build(order=order, operation="created").row.value.encode()) == 900_000


def test_an_event_one_byte_over_the_limit_is_413(monkeypatch):
    order = an_order_whose_event_is(EVENT_LIMIT + 1, monkeypatch)
    with pytest.raises(EventTooLarge) as raised:
        outbox_event_build(order=order, operation="created")
    assert DOMAIN_STATUSES[EventTooLarge] == 413
    assert raised.value.field == "payload"
    assert raised.value.reason == (
        "the order's event would be 900001 bytes, more than the limit of 900000"
    )


# ---------------------------------------------------------------- ACK statuses
def ack_bytes(**fields) -> bytes:
    data = {"event_id": str(uuid.uuid4()), "order_id": str(uuid.uuid4())}
    data |= {"processed_at": "2026-01-02T03:04:05Z"} | fields
    return json.dumps(data).encode()


@pytest.mark.parametrize("status", ["created", "updated", "deleted", "rejected"])
def test_the_four_ack_statuses_are_read(status):
    assert OrderAck.from_bytes(ack_bytes(status=status)).status == status


@pytest.mark.parametrize("status", ["pending", "CREATED", "", None, 1])
def test_any_other_ack_status_is_refused_naming_the_four(status):
    with pytest.raises(InvalidMessage) as raised:
        OrderAck.from_bytes(ack_bytes(status=status))
    assert raised.value.reason == (
        f"status: must be one of ['created', 'deleted', 'rejected', 'updated'], got {status!r}"
    )


def test_an_ack_without_a_version_is_read_with_none_and_written_without_one():
    """ACKs of workers that predate the ACK's `version` still read."""
    ack = OrderAck.from_bytes(ack_bytes(status="created"))
    assert ack.version is None
    assert b"version" not in ack.to_bytes()
    assert OrderAck.from_bytes(ack_bytes(status="updated", version=3)).version == 3


@pytest.mark.parametrize("version", [0, -1, 1.5, "2", True, [1]])
def test_an_ack_version_that_is_no_positive_integer_is_refused(version):
    with pytest.raises(InvalidMessage) as raised:
        OrderAck.from_bytes(ack_bytes(status="created", version=version))
    assert raised.value.reason == "version: must be a positive integer"


# ---------------------------------------------------------------- Idempotency-Key
KEY_RULE = "must be 1 to 255 printable ASCII characters (space to ~)"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, None),
        ("k" * 255, "k" * 255),
        ("  " + "k" * 255 + "  ", "k" * 255),
        (" a b ", "a b"),
        ("X k X", "X k X"),
        ("!~", "!~"),
    ],
)
def test_an_idempotency_key_of_1_to_255_printable_ascii_is_kept_trimmed(raw, key):
    assert idempotency_key_clean(raw) == key


@pytest.mark.parametrize("raw", ["", "   ", "k" * 256, "\tk", "k\t", "é", "k\x7f", "k\n"])
def test_any_other_idempotency_key_is_400_naming_the_header(raw):
    with pytest.raises(ApplicationError) as raised:
        idempotency_key_clean(raw)
    error = raised.value
    assert (error.status_code, error.field, error.reason) == (400, "Idempotency-Key", KEY_RULE)
