"""API → Kafka → worker → ACK → API, against the real broker, databases and Redis."""

from __future__ import annotations

import json
import threading
import uuid
from decimal import Decimal

import pytest
from django_redis import get_redis_connection

from orders_api.ack_wait import process_listener
from orders_api.ack_wait.listener import AckListener
from orders_api.models import Order, OutboxEvent
from orders_worker.models import ProcessedOrder
from orderstream.kafka import make_producer
from orderstream.messages import OrderAck, OrderEvent, OrderResult
from testkit.helpers import eventually

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "worker"])


def test_create_update_delete_are_acknowledged_by_the_worker(
    api, unique_topics, running_relay, running_worker
):
    user = str(uuid.uuid4())
    created = api.post("/orders", {"user_id": user, "payload": {"id": "E-1", "amount": 5}})
    assert created.status_code == 200, created.content
    order_id = created.json()["order_id"]
    assert created.json() == {"order_id": order_id, "status": "created"}

    view = api.get(f"/orders/{order_id}").json()["order"]
    assert view["status"] == "done"  # the worker's result, merged from Redis
    assert view["amount"] == 5.0

    updated = api.post(
        "/orders",
        {"order_id": order_id, "user_id": user, "payload_json": '{"id": "E-1", "amount": 8}'},
    )
    assert updated.json() == {"order_id": order_id, "status": "updated"}
    assert api.get(f"/orders/{order_id}").json()["order"]["amount"] == 8.0

    deleted = api.post("/orders", {"order_id": order_id, "user_id": user, "status": "deleted"})
    assert deleted.json() == {"order_id": order_id, "status": "deleted"}
    processed = ProcessedOrder.objects.using("worker").get(order_id=order_id)
    assert (processed.status, processed.version) == ("deleted", 3)
    assert api.get(f"/orders/{order_id}").json()["order"]["status"] == "deleted"
    # The publications were confirmed and marked.
    eventually(
        lambda: not OutboxEvent.objects.filter(order_id=order_id, published_at=None).exists(),
        message="outbox rows marked published",
    )


@pytest.mark.parametrize(
    "amount",
    [
        "70368744177664.01",  # a float holds 70368744177664.015625, shown as ...02
        "999999999999999999.99",  # the columns' largest (a float shows 1e+18)
    ],
)
def test_an_amount_travels_exactly_from_post_to_the_worker_redis_and_get(
    api, unique_topics, running_relay, running_worker, amount
):
    """The issue "Correct at every edge": POST, the event, the worker's row, its Redis
    result and GET all hold the very digits sent (GET used to show the float's)."""
    user = str(uuid.uuid4())
    created = api.post("/orders", {"user_id": user, "payload": {"amount": amount}})
    assert created.status_code == 200, created.content  # the worker's ACK arrived
    assert created.json()["status"] == "created"
    order_id = created.json()["order_id"]

    event = OutboxEvent.objects.get(order_id=order_id).value.encode()
    assert b'"payload":{"amount":"' + amount.encode() + b'"}' in event
    assert str(Order.objects.get(order_id=order_id).amount) == amount
    assert str(ProcessedOrder.objects.using("worker").get(order_id=order_id).amount) == amount
    raw = get_redis_connection("default").get(OrderResult.redis_key(order_id))
    assert b',"amount":' + amount.encode() + b"," in raw
    assert str(OrderResult.from_bytes(raw).amount) == amount

    get = api.get(f"/orders/{order_id}")
    assert get.json()["order"]["status"] == "done"  # the worker's result answered
    assert b'"amount":' + amount.encode() + b"," in get.content
    assert json.loads(get.content, parse_float=Decimal)["order"]["amount"] == Decimal(amount)


def test_a_deleted_order_reads_back_with_the_payload_as_it_was_created(
    api, unique_topics, running_relay, running_worker
):
    """The issue "Degrade, don't fall over": `{"x": 1e300}` created, deleted, then GET
    gave x as a 301-digit integer (the delete's event was built from the jsonb row)."""
    user = str(uuid.uuid4())
    body = b'{"user_id": "' + user.encode() + b'", "payload": {"x": 1e300}}'
    created = api.post("/orders", None, raw=body)
    assert created.json()["status"] == "created", created.content
    order_id = created.json()["order_id"]
    before = api.get(f"/orders/{order_id}").json()["order"]["payload_json"]

    deleted = api.post("/orders", {"order_id": order_id, "user_id": user, "status": "deleted"})
    assert deleted.json() == {"order_id": order_id, "status": "deleted"}, deleted.content

    get = api.get(f"/orders/{order_id}")
    assert get.json()["order"]["status"] == "deleted"
    assert get.json()["order"]["payload_json"] == before == {"x": 1e300}
    assert b"1" + b"0" * 300 not in get.content


def test_a_retry_with_the_idempotency_key_gets_the_acknowledged_answer(
    api, unique_topics, running_relay, running_worker
):
    """The first answer was 202 (no wait); the retry after processing answers 200."""
    body = {"user_id": str(uuid.uuid4()), "payload": {"id": "E-2"}}
    headers = {"Idempotency-Key": "checkout-42"}
    first = api.post("/orders?wait=false", body, headers=headers)
    assert first.status_code == 202
    order_id = first.json()["order_id"]
    eventually(
        lambda: ProcessedOrder.objects.using("worker").filter(order_id=order_id).exists(),
        message="the worker applied the create",
    )
    retry = api.post("/orders", body, headers=headers)
    assert retry.status_code == 200
    assert retry.json() == {"order_id": first.json()["order_id"], "status": "created"}
    assert Order.objects.count() == 1


def test_an_order_the_worker_rejects_is_a_422_naming_the_payload(
    api, unique_topics, topic_reader, running_relay
):
    """A rejection ACK (here from a stand-in worker on the real topics) is a 422 in the
    one error shape: field "payload", the worker's reason."""
    events = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    stop = threading.Event()

    def rejecting_worker() -> None:
        producer = make_producer(client_id="api-tests-rejecter")
        try:
            while not stop.is_set():
                for record in events.poll():
                    event = OrderEvent.from_bytes(record.value)
                    ack = OrderAck(
                        event_id=event.event_id,
                        order_id=event.order_id,
                        status="rejected",
                        processed_at="2026-01-01T00:00:00Z",
                        error="amount: exceeds the column",
                    )
                    producer.send(unique_topics.ORDERS_ACK_TOPIC, value=ack.to_bytes())
                producer.flush(timeout=5)
        finally:
            producer.close(timeout=2)

    # This topic's listener, positioned: else the POST would not wait for any ACK (202).
    assert process_listener.ack_listener().ready.wait(15), (
        "the ACK listener did not position itself"
    )
    thread = threading.Thread(target=rejecting_worker, daemon=True)
    thread.start()
    try:
        response = api.post("/orders", {"user_id": str(uuid.uuid4()), "payload": {"amount": 1}})
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive(), "the stand-in worker did not stop"
    assert response.status_code == 422, response.content
    assert response.json() == {
        "error": "payload: amount: exceeds the column",
        "field": "payload",
        "reason": "amount: exceeds the column",
        "errors": [{"field": "payload", "reason": "amount: exceeds the column"}],
    }
    assert response["Location"].startswith("/orders/")


@pytest.mark.parametrize("change", ["update", "delete"])
def test_a_replayed_change_after_an_api_restart_answers_from_the_worker_at_once(
    api, unique_topics, running_relay, running_worker, change, monkeypatch
):
    """The retry of an update or delete with its Idempotency-Key, in a process that has
    not seen the ACK (a restart): the worker's result says the change was applied, so
    the answer is its 200 at once (it used to wait the whole ACK timeout, then 202)."""
    user = str(uuid.uuid4())
    created = api.post("/orders", {"user_id": user, "payload": {"amount": 1}})
    order_id = created.json()["order_id"]
    body = {"order_id": order_id, "user_id": user, "payload": {"amount": 2}}
    if change == "delete":
        body = {"order_id": order_id, "user_id": user, "status": "deleted"}
    headers = {"Idempotency-Key": f"change-{change}"}
    first = api.post("/orders", body, headers=headers)
    expected = {"order_id": order_id, "status": f"{change}d"}
    assert (first.status_code, first.json()) == (200, expected)
    process_listener.shutdown()  # as after a restart: no ACK seen by this process
    waits = []
    wait_for = AckListener.wait_for
    monkeypatch.setattr(
        AckListener,
        "wait_for",
        lambda *args, **match: waits.append(args[1:]) or wait_for(*args, **match),
    )
    again = api.post("/orders", body, headers=headers)
    assert (again.status_code, again.json()) == (200, expected)
    assert again["Idempotent-Replayed"] == "true"
    assert waits == [], "the replay waited for an ACK"
