"""The promises of SPEC.md "Guarantees", end to end with the worker."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

from orders_api import runtime
from orders_api.models import Order, OutboxEvent
from orders_api.outbox import outbox_relay_once
from orders_api.services import order_upsert
from orders_worker.models import ProcessedEvent, ProcessedOrder
from orders_worker.results import order_result_read
from orderstream.devstack.ports import free_port
from orderstream.devstack.tansu import TansuBroker
from orderstream.kafka import ensure_topics, make_consumer
from orderstream.messages import OrderEvent
from orderstream.testing import eventually

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "worker"])


def test_two_concurrent_updates_are_applied_in_version_order(
    unique_topics, topic_reader, running_worker
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


def test_a_delete_that_overtakes_a_held_back_update_ends_on_the_updates_data(
    unique_topics, running_worker, settings, monkeypatch
):
    """The update's publish fails (left to the relay), the delete is published at once:
    the worker sees v1, v3 (delete), then v2. The delete's event carries the order as the
    API kept it (v2's payload), so the order ends deleted with v2's data, and v2 is stale.
    (The worker used to keep its own v1 data on a delete.)"""
    settings.OUTBOX_RELAY_GRACE_SECONDS = 3600  # no relay touches the held-back update yet
    user = uuid.uuid4()
    order = order_upsert(user_id=user, order_id=None, payload={"id": "O-1", "amount": 1})
    processed = ProcessedOrder.objects.using("worker")
    eventually(lambda: processed.filter(order_id=order.order_id).exists(), message="created")

    publisher = runtime.publisher()
    publish = publisher.publish

    def hold_back_updates(*, event, **kwargs):
        if event.status == "updated":
            raise KafkaTimeoutError("held back by the test")
        return publish(event=event, **kwargs)

    monkeypatch.setattr(publisher, "publish", hold_back_updates)
    order_upsert(user_id=user, order_id=order.order_id, payload={"id": "O-1", "amount": 7})
    order_upsert(user_id=user, order_id=order.order_id, payload=None, delete=True)
    eventually(
        lambda: processed.filter(order_id=order.order_id, version=3).exists(),
        message="the delete (v3) applied before the update (v2)",
    )
    monkeypatch.undo()
    held_back = OutboxEvent.objects.filter(order_id=order.order_id, published_at=None)
    eventually(
        lambda: list(held_back.values_list("version", flat=True)) == [2],
        message="v1 and v3 marked published, v2 left to the relay",
    )
    held_back.update(next_attempt_at=timezone.now())  # the relay's turn has come
    assert outbox_relay_once(producer=publisher.ensure_producer()) == (1, 0)  # v2, late
    eventually(
        lambda: (
            ProcessedEvent.objects.using("worker")
            .filter(order_id=order.order_id, version=2)
            .exists()
        ),
        message="the late update was handled",
    )
    row = processed.get(order_id=order.order_id)
    assert (row.status, row.version) == ("deleted", 3)
    assert row.payload == {"id": "O-1", "amount": 7}
    assert row.amount == Decimal("7.00")
    stale = ProcessedEvent.objects.using("worker").get(order_id=order.order_id, version=2)
    assert stale.ack_status == "deleted"
    assert order_result_read(order_id=str(order.order_id)).amount == Decimal("7.00")


@pytest.fixture
def own_broker(settings):
    """A broker of the test's own on a fixed port, which the test stops and restarts."""
    broker = TansuBroker().start()
    settings.KAFKA_BROKERS = [broker.bootstrap]
    ensure_topics()
    holder = {"broker": broker}
    yield holder
    runtime.shutdown()  # drop this broker's clients before it goes
    holder["broker"].stop()


def test_a_request_during_a_broker_outage_is_delivered_after_it(api, own_broker, settings, request):
    settings.ORDER_ACK_WAIT_TIMEOUT = 1
    settings.OUTBOX_PUBLISH_TIMEOUT = 0.5
    settings.OUTBOX_RELAY_GRACE_SECONDS = 0.5
    settings.OUTBOX_RELAY_INTERVAL = 0.2
    settings.OUTBOX_RELAY_MAX_BACKOFF = 1
    user = str(uuid.uuid4())
    warm = api.post("/orders?wait=false", {"user_id": user, "payload": {"id": "before"}})
    assert warm.status_code == 202  # the process's clients know the broker

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


def _read_from_start(topic: str, count: int, timeout: float = 20.0) -> list:
    """The first `count` records of `topic`, read from its beginning."""
    consumer = make_consumer(group_id=None, client_id="api-tests-start")
    try:
        partitions = eventually(
            lambda: consumer.partitions_for_topic(topic) or consumer.topics() and None,
            message=f"metadata of {topic}",
        )
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        records: list = []

        def enough():
            for batch in consumer.poll(timeout_ms=100).values():
                records.extend(batch)
            return len(records) >= count

        eventually(enough, timeout=timeout, interval=0, message=f"{count} record(s) on {topic}")
        return records
    finally:
        consumer.close()


def test_a_new_process_starts_serving_with_its_ack_listener_positioned(unique_topics):
    """gunicorn's post_worker_init waits for the listener, so the first waiting POST of a
    new worker process is not answered 202 for want of a ready listener."""
    runtime.shutdown()  # a fresh process
    assert runtime.start(ready_timeout=10) is True
    assert runtime.ack_listener().ready.is_set()


def test_a_process_started_while_kafka_is_down_accepts_orders_and_relays_them_later(api, settings):
    """No broker when the process starts: start() and POSTs (with or without the ACK wait)
    answer at once (202, order and outbox row committed), and the relay publishes the
    events once a broker comes up."""
    runtime.shutdown()  # a fresh process: no publisher, relay or listener yet
    port = free_port()  # nothing listens here
    settings.KAFKA_BROKERS = [f"127.0.0.1:{port}"]
    settings.OUTBOX_PUBLISH_TIMEOUT = 0.5
    settings.OUTBOX_RELAY_GRACE_SECONDS = 0.2
    settings.OUTBOX_RELAY_INTERVAL = 0.2
    settings.OUTBOX_RELAY_MAX_BACKOFF = 1
    broker = None
    try:
        started = time.monotonic()
        # gunicorn's post_worker_init: must neither raise nor hang
        assert runtime.start(ready_timeout=1) is False
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
        records = _read_from_start(settings.ORDERS_EVENTS_TOPIC, 2)
        events = {OrderEvent.from_bytes(r.value).event_id for r in records}
        assert events == {str(row.event_id), str(waiting_row.event_id)}
    finally:
        runtime.shutdown()
        if broker is not None:
            broker.stop()
