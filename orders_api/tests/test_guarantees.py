"""The promises of contract.md "Guarantees", end to end with the worker."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from devstack.ports import free_port
from devstack.tansu import TansuBroker
from orders_api.ack_wait import process_listener
from orders_api.models import Order, OutboxEvent
from orders_api.relay.loop import OutboxRelay
from orders_api.services import order_upsert
from orders_worker.models import ProcessedEvent, ProcessedOrder
from orderstream.kafka import ensure_topics, make_producer
from orderstream.messages import OrderEvent
from testkit.failing_clients import RefusingProducer
from testkit.helpers import eventually
from testkit.results import stored_result
from testkit.running import running
from testkit.topics import TopicReader


def relay_running(relay: OutboxRelay):
    return running(relay, ready=lambda: relay.passes, what="relay")


pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "worker"])


def test_two_concurrent_updates_are_applied_in_version_order(
    unique_topics, topic_reader, running_relay, running_worker
):
    user = uuid.uuid4()
    order = order_upsert(user_id=user, order_id=None, payload={"amount": 1})
    eventually(
        lambda: ProcessedOrder.objects.using("worker").filter(order_id=order.order_id).exists(),
        message="the worker applied the create",
    )
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    start = threading.Barrier(2)
    errors = []

    def update(amount: int) -> None:
        try:
            start.wait(5)
            order_upsert(user_id=user, order_id=order.order_id, payload={"amount": amount})
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=update, args=(n,)) for n in (10, 20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors

    records = reader.read_until(lambda records: len(records) >= 2)
    events = [OrderEvent.from_bytes(r.value) for r in records]
    assert len({r.partition for r in records}) == 1  # one key, one partition
    assert [e.version for e in events] == [2, 3]  # in the partition's order
    assert [r.offset for r in records] == sorted(r.offset for r in records)
    last = events[-1]

    def applied():
        row = ProcessedOrder.objects.using("worker").filter(order_id=order.order_id).first()
        return row is not None and row.version == 3 and row

    row = eventually(applied, message="the worker applied version 3")
    assert row.payload == last.payload  # the later update won
    statuses = dict(
        ProcessedEvent.objects.using("worker")
        .filter(order_id=order.order_id, version__gt=1)
        .values_list("version", "ack_status")
    )
    assert statuses == {2: "updated", 3: "updated"}  # both applied, neither stale


def test_an_update_the_broker_refuses_for_a_while_holds_back_the_orders_delete(
    unique_topics, running_worker, settings
):
    """The update's publication fails (a broker timeout, injected into the relay's own
    producer) while the delete is already committed: the relay sends neither until the
    update goes out, then both in version order, so the worker applies v2 then v3 and the
    order ends deleted with the update's data, no event stale."""
    settings.OUTBOX_RELAY_INTERVAL = 0.1
    settings.OUTBOX_RELAY_MAX_BACKOFF = 0.2
    refusing = {"updated"}

    def producer_refusing_updates():
        return RefusingProducer(make_producer(client_id="api-tests-relay"), refusing)

    relay = OutboxRelay(producer_factory=producer_refusing_updates)
    user = uuid.uuid4()
    processed = ProcessedOrder.objects.using("worker")
    with relay_running(relay):
        order = order_upsert(user_id=user, order_id=None, payload={"id": "O-1", "amount": 1})
        eventually(lambda: processed.filter(order_id=order.order_id).exists(), message="created")
        order_upsert(user_id=user, order_id=order.order_id, payload={"id": "O-1", "amount": 7})
        order_upsert(user_id=user, order_id=order.order_id, payload=None, delete=True)
        waiting = OutboxEvent.objects.filter(order_id=order.order_id, published_at=None)
        eventually(
            lambda: waiting.filter(version=2, attempts__gte=2).exists(),
            message="the update was refused twice",
        )
        assert sorted(waiting.values_list("version", flat=True)) == [2, 3]
        refusing.clear()
        eventually(lambda: not waiting.exists(), message="both published once the broker took them")
        eventually(
            lambda: processed.filter(order_id=order.order_id, version=3).exists(),
            message="the delete applied",
        )
    statuses = dict(
        ProcessedEvent.objects.using("worker")
        .filter(order_id=order.order_id)
        .values_list("version", "ack_status")
    )
    assert statuses == {1: "created", 2: "updated", 3: "deleted"}
    row = processed.get(order_id=order.order_id)
    assert (row.status, row.payload, row.amount) == (
        "deleted",
        {"id": "O-1", "amount": 7},
        Decimal("7.00"),
    )
    assert stored_result(order_id=str(order.order_id)).amount == Decimal("7.00")


@pytest.fixture
def own_broker(settings):
    """A broker of the test's own on a fixed port, which the test stops and restarts."""
    broker = TansuBroker().start()
    settings.KAFKA_BROKERS = [broker.bootstrap]
    ensure_topics()
    holder = {"broker": broker}
    yield holder
    process_listener.shutdown()  # drop this broker's clients before it goes
    holder["broker"].stop()


def test_a_request_during_a_broker_outage_is_delivered_after_it(api, own_broker, settings, request):
    settings.ORDER_ACK_WAIT_TIMEOUT = 1
    settings.OUTBOX_PUBLISH_TIMEOUT = 0.5
    settings.OUTBOX_RELAY_INTERVAL = 0.2
    settings.OUTBOX_RELAY_MAX_BACKOFF = 1
    request.getfixturevalue("running_relay")
    user = str(uuid.uuid4())
    warm = api.post("/orders?wait=false", {"user_id": user, "payload": {"id": "before"}})
    assert warm.status_code == 202
    eventually(lambda: OutboxEvent.objects.get(order_id=warm.json()["order_id"]).published_at)

    broker = own_broker["broker"]
    port = broker.port
    broker.stop()
    response = api.post("/orders", {"user_id": user, "payload": {"id": "during", "amount": 4}})
    assert response.status_code == 202
    order_id = response.json()["order_id"]
    assert response.json() == {"order_id": order_id, "status": "pending"}

    own_broker["broker"] = TansuBroker(port=port).start()  # in memory: an empty broker
    ensure_topics()
    request.getfixturevalue("running_worker")

    def applied():
        return ProcessedOrder.objects.using("worker").filter(order_id=order_id).first()

    row = eventually(applied, timeout=40, message="the outage's order reached the worker")
    assert str(row.amount) == "4.00"
    eventually(
        lambda: OutboxEvent.objects.get(order_id=order_id).published_at,
        message="its outbox row is marked published",
    )


def test_a_new_process_starts_serving_with_its_ack_listener_positioned(unique_topics):
    """An API worker waits for its listener before it serves (orderstream/rsgi.py), so its
    first waiting POST is not answered 202 for want of a ready listener."""
    process_listener.shutdown()  # a fresh process
    assert process_listener.start(ready_timeout=10) is True
    assert process_listener.ack_listener().ready.is_set()


def test_a_process_started_while_kafka_is_down_accepts_orders_and_relays_them_later(api, settings):
    """No broker when the API process and the relay start: start() and POSTs (with or
    without the ACK wait) answer at once (202, order and outbox row committed), and the
    relay publishes the events once a broker comes up."""
    process_listener.shutdown()  # a fresh process: no listener yet
    port = free_port()  # nothing listens here
    settings.KAFKA_BROKERS = [f"127.0.0.1:{port}"]
    settings.OUTBOX_PUBLISH_TIMEOUT = 0.5
    settings.OUTBOX_RELAY_INTERVAL = 0.2
    settings.OUTBOX_RELAY_MAX_BACKOFF = 1
    broker = None
    try:
        with relay_running(OutboxRelay()):
            started = time.monotonic()
            # a new API worker (orderstream/rsgi.py): must neither raise nor hang
            assert process_listener.start(ready_timeout=1) is False
            assert time.monotonic() - started < 10
            started = time.monotonic()
            response = api.post(
                "/orders?wait=false", {"user_id": str(uuid.uuid4()), "payload": {"id": "cold"}}
            )
            assert time.monotonic() - started < 10
            assert response.status_code == 202, response.content
            order_id = response.json()["order_id"]
            assert Order.objects.filter(order_id=order_id).exists()
            row = OutboxEvent.objects.get(order_id=order_id)
            assert row.published_at is None
            # A POST that would wait for its ACK does not wait for a listener that cannot
            # position itself: it writes and answers 202.
            settings.ORDER_ACK_WAIT_TIMEOUT = 30
            started = time.monotonic()
            waiting = api.post("/orders", {"user_id": str(uuid.uuid4()), "payload": {"id": "w"}})
            assert time.monotonic() - started < 10
            assert waiting.status_code == 202, waiting.content
            assert waiting.json()["status"] == "pending"
            waiting_row = OutboxEvent.objects.get(order_id=waiting.json()["order_id"])

            broker = TansuBroker(port=port).start()
            ensure_topics()
            eventually(
                lambda: not OutboxEvent.objects.filter(published_at=None).exists(),
                timeout=40,
                message="the relay published both events once the broker was up",
            )
            reader = TopicReader(settings.ORDERS_EVENTS_TOPIC)
            try:
                records = reader.read_until(lambda records: len(records) >= 2)
            finally:
                reader.close()
            events = {OrderEvent.from_bytes(r.value).event_id for r in records}
            assert events == {str(row.event_id), str(waiting_row.event_id)}
    finally:
        process_listener.shutdown()
        if broker is not None:
            broker.stop()
