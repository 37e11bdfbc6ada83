"""The ACK recorder: the worker's ACKs recorded on the API's rows, and GET's `processing`.

First its handler with plain records against the test database (no broker), then the
recorder as it runs in `run_relay`, against the real broker: with the relay and the
worker, with ACKs produced by hand (out of order, malformed), and through an outage of the
API database.
"""

from __future__ import annotations

import logging
import threading
import uuid

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from orders_api.ack_outcomes import Outcome, Recorded, outcome_of_ack
from orders_api.ack_recorder.recorder import (
    AckOutcomesHandler,
    AckRecorder,
    AckRecorderConfig,
    ack_recorder_beside,
)
from orders_api.models import Order, OutboxEvent
from orders_api.relay.loop import OutboxRelay
from orders_api.selectors import order_recorded
from orders_worker.worker import OrderWorker, WorkerConfig
from orderstream.kafka import make_producer
from orderstream.messages import OrderAck, OrderEvent
from orderstream.statuses import AckStatus
from orderstream.timestamps import rfc3339, utc_now
from testkit.factories import OrderFactory
from testkit.helpers import Record, eventually
from testkit.outages import database_outage
from testkit.running import running
from testkit.topics import committed_offsets

from .support import merged

STAMP = "2026-01-02T03:04:05Z"


def records_of(*values: bytes) -> list[Record]:
    return [Record("acks", 0, offset, b"k", value) for offset, value in enumerate(values)]


def an_ack(order: Order | str, status: str, version: int | None, error=None, event_id=None):
    return OrderAck(
        event_id or str(uuid.uuid4()),
        str(order.pk if isinstance(order, Order) else order),
        status,
        STAMP,
        error=error,
        version=version,
    ).to_bytes()


def record(*values: bytes) -> None:
    """Hand the ACKs to the recorder's handler as one poll (each step run once)."""
    AckOutcomesHandler().handle(records_of(*values), retry=lambda what, step: step())


def recorded_of(order: Order) -> Recorded:
    order.refresh_from_db()
    return order_recorded(order)


# ------------------------------------------------------------------ the handler, no broker
@pytest.mark.django_db
def test_acks_of_a_poll_are_recorded_on_their_orders_rows_and_unknown_orders_ignored():
    first, second = OrderFactory(), OrderFactory(version=2)
    record(
        an_ack(first, "created", 1),
        an_ack(second, "created", 1),
        an_ack(second, "rejected", 2, error="amount: too big"),
        an_ack(uuid.uuid4(), "created", 1),
    )
    assert recorded_of(first) == Recorded(Outcome(1, "done"), 1)
    assert recorded_of(second) == Recorded(Outcome(2, "rejected", "amount: too big"), 1)


ack_steps = st.tuples(
    st.sampled_from(AckStatus.values), st.integers(1, 5), st.sampled_from([None, "a", "b"])
)


@pytest.mark.django_db
@hypothesis_settings(max_examples=60, deadline=None)
@given(steps=st.lists(ack_steps, min_size=1, max_size=10), data=st.data())
def test_the_rows_state_is_the_merge_of_its_acks_whatever_their_order_and_batches(steps, data):
    """The UPDATE states the rules of `ack_outcomes.py`: ACKs in any order, split into any
    polls, repeated or not, leave the row as the pure merge of all of them."""
    order = OrderFactory(version=5)
    acks = [an_ack(order, status, version, error) for status, version, error in steps]
    shuffled = data.draw(st.permutations(acks + data.draw(st.lists(st.sampled_from(acks)))))
    ends = data.draw(st.lists(st.booleans(), min_size=len(shuffled), max_size=len(shuffled)))
    poll: list[bytes] = []
    for ack, last_of_poll in zip(shuffled, ends, strict=True):
        poll.append(ack)
        if last_of_poll:
            record(*poll)
            poll = []
    if poll:
        record(*poll)
    expected = merged(*(outcome_of_ack(status=s, version=v, error=e) for s, v, e in steps))
    assert recorded_of(order) == expected


@pytest.mark.django_db
def test_an_ack_that_cannot_be_placed_is_skipped_with_a_log_line_and_the_rest_recorded(caplog):
    order, other = OrderFactory(), OrderFactory()
    caplog.set_level(logging.WARNING, logger="orders_api.ack_recorder.recorder")
    record(
        b"\x00not json",
        b'{"status": "created", "order_id": "not-a-uuid", "version": 1}',
        an_ack(other, "created", 2**31),  # beyond any version of the API
        an_ack(other, "created", None),  # no version, and no outbox row to find one
        # JSON escapes of NUL and of an unpaired surrogate, which PostgreSQL cannot store.
        b'{"status": "rejected", "order_id": "%s", "version": 1, "error": "bad \\u0000 value'
        b' \\ud800%s"}' % (str(order.pk).encode(), b"x" * 2000),
    )
    assert recorded_of(other) == Recorded()
    reason = recorded_of(order).outcome.reason
    assert reason.startswith("bad  value ?x") and len(reason) == 1000
    skipped = [r.getMessage() for r in caplog.records if "skipping the ACK" in r.getMessage()]
    assert len(skipped) == 3
    assert "acks[0]@0" in skipped[0] and "not valid JSON" in skipped[0]
    assert "acks[0]@1" in skipped[1] and "acks[0]@2" in skipped[2]
    assert "no version for the ACK" in caplog.text


@pytest.mark.django_db
def test_an_ack_without_a_version_is_placed_by_its_events_outbox_row():
    """ACKs of a worker that predates the ACK's version (a rolling upgrade)."""
    order = OrderFactory(version=2)
    event_id = uuid.uuid4()
    OutboxEvent.objects.create(
        event_id=event_id,
        order_id=order.pk,
        version=2,
        topic="t",
        value="{}",
        created_at=utc_now(),
        next_attempt_at=utc_now(),
    )
    record(an_ack(order, "deleted", None, event_id=str(event_id)))
    assert recorded_of(order) == Recorded(Outcome(2, "deleted"), 2)


# ------------------------------------------------------------------ in run_relay's process
def test_a_crash_of_the_recorder_stops_the_relay_and_is_raised_after_it(monkeypatch):
    """The process must not run on without recording: the relay is asked to stop, and
    the crash ends `run_relay` once the relay has."""

    def crash(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(AckRecorder, "run", crash)
    relay_stopped = threading.Event()
    with pytest.raises(RuntimeError, match="the ACK recorder crashed") as raised:
        with ack_recorder_beside(relay_stopped.set):
            assert relay_stopped.wait(10), "the relay was not asked to stop"
    assert str(raised.value.__cause__) == "boom"


# ------------------------------------------------------------------ against the real broker
pipeline = pytest.mark.django_db(transaction=True, databases=["default", "worker"])


def view_of(api, order_id) -> dict:
    response = api.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.content
    return response.json()["order"]


def processing_of(api, order_id) -> tuple:
    view = view_of(api, order_id)
    return view["processing"], view["reason"], view["version"]


def worker_running():
    worker = OrderWorker(WorkerConfig.from_settings(poll_timeout_ms=100, backoff_max=1.0))
    return running(worker, ready=worker.partitions, what="worker")


@pipeline
def test_a_created_order_is_pending_until_the_worker_applied_it_then_done_at_version_1(
    api, unique_topics, running_relay, running_ack_recorder
):
    created = api.create(payload={"amount": 3})
    assert created.status_code == 202
    order_id = created.json()["order_id"]
    eventually(
        lambda: OutboxEvent.objects.filter(order_id=order_id, published_at__isnull=False),
        message="the relay published the event",
    )
    assert processing_of(api, order_id) == ("pending", None, None)
    assert api.get(f"/orders/{uuid.uuid4()}").status_code == 404  # unknown: never pending

    with worker_running():
        eventually(
            lambda: processing_of(api, order_id) == ("done", None, 1),
            message="done at version 1",
        )
    assert view_of(api, order_id)["status"] == "done"
    # Recorded on the row by the recorder (GET could also read it from the Redis result).
    order = Order.objects.get(pk=order_id)
    eventually(lambda: recorded_of(order) == Recorded(Outcome(1, "done"), 1), message="row")


@pipeline
def test_a_deleted_order_is_deleted_at_the_version_of_the_delete(
    api, unique_topics, running_relay, running_worker, running_ack_recorder
):
    user_id = str(uuid.uuid4())
    order_id = api.create(user_id=user_id, wait=True).json()["order_id"]
    deleted = api.post("/orders", {"order_id": order_id, "user_id": user_id, "status": "deleted"})
    assert deleted.json()["status"] == "deleted"
    eventually(
        lambda: processing_of(api, order_id) == ("deleted", None, 2),
        message="deleted at version 2",
    )
    order = Order.objects.get(pk=order_id)
    eventually(lambda: recorded_of(order) == Recorded(Outcome(2, "deleted"), 2), message="row")


@pipeline
def test_an_event_the_worker_rejects_shows_rejected_with_its_reason_until_one_is_applied(
    api, unique_topics, running_worker, running_ack_recorder
):
    """The relay is not running: the order's own event waits in the outbox, and an event
    for its id and version with an amount beyond the columns goes first. The worker
    rejects it; GET says so with the worker's reason. Once the relay publishes the
    order's own version 1, the worker applies it: done at version 1."""
    created = api.create(payload={"amount": 2})
    order_id = created.json()["order_id"]
    user_id = Order.objects.get(pk=order_id).user_id
    bad = OrderEvent(
        event_id=str(uuid.uuid4()),
        order_id=order_id,
        user_id=str(user_id),
        payload={"amount": "1e30"},
        status="created",
        version=1,
        timestamp=rfc3339(utc_now()),
    )
    producer = make_producer()
    producer.send(settings.ORDERS_EVENTS_TOPIC, bad.to_bytes(), key=bad.key)
    producer.flush(timeout=10)
    producer.close(timeout=5)

    def rejected():
        processing, reason, version = processing_of(api, order_id)
        return processing == "rejected" and version is None and reason

    reason = eventually(rejected, message="rejected with a reason")
    assert "amount" in reason
    assert view_of(api, order_id)["status"] == "new"  # the worker stored nothing

    relay = OutboxRelay()
    with running(relay, ready=lambda: relay.passes, what="relay"):
        eventually(
            lambda: processing_of(api, order_id) == ("done", None, 1),
            message="done once version 1 was applied",
        )


@pipeline
def test_acks_out_of_order_repeated_or_malformed_never_move_an_order_back_nor_stall(
    api, unique_topics, running_ack_recorder
):
    """On one partition (one key): deleted v2, then created v1 and rejected v1 late, a
    repeat, and bytes that are no ACK; then an ACK of another order, recorded too."""
    order, other = OrderFactory(version=2), OrderFactory()
    producer = make_producer()
    for value in [
        an_ack(order, "deleted", 2),
        an_ack(order, "created", 1),
        an_ack(order, "rejected", 1, error="late"),
        an_ack(order, "deleted", 2),
        b"not an ack",
    ]:
        producer.send(settings.ORDERS_ACK_TOPIC, value, key=str(order.pk).encode())
    producer.send(settings.ORDERS_ACK_TOPIC, an_ack(other, "created", 1))
    producer.flush(timeout=10)
    producer.close(timeout=5)

    eventually(lambda: processing_of(api, other.pk) == ("done", None, 1), message="other")
    eventually(lambda: running_ack_recorder.stats.processed == 6, message="all six handled")
    assert processing_of(api, order.pk) == ("deleted", None, 2)
    assert recorded_of(order) == Recorded(Outcome(2, "deleted"), 2)


@pipeline
def test_the_recorder_retries_through_an_outage_of_the_api_database_and_skips_nothing(
    unique_topics, caplog
):
    """The recorder's connection is cut and new ones refused: the ACK is retried, its
    offset not committed; once PostgreSQL is back it is recorded and committed."""
    group, topic = unique_topics.ACK_RECORDER_GROUP, unique_topics.ORDERS_ACK_TOPIC
    order = OrderFactory()
    producer = make_producer()

    def send(value: bytes) -> None:
        producer.send(topic, value, key=str(order.pk).encode())
        producer.flush(timeout=10)

    config = AckRecorderConfig.from_settings(
        poll_timeout_ms=100, backoff_initial=0.05, backoff_max=0.2
    )
    try:
        with database_outage("default") as outage:
            recorder = AckRecorder(config)
            with running(recorder, ready=recorder.partitions, what="ACK recorder"):
                send(an_ack(order, "created", 1))
                eventually(lambda: recorded_of(order).applied_version == 1, message="v1")
                eventually(lambda: committed_offsets(group, topic) == 1, message="committed")
                assert outage.accepted >= 1, "the recorder did not connect through the proxy"

                outage.pause()
                Order.objects.filter(pk=order.pk).update(version=2)
                send(an_ack(order, "deleted", 2))
                eventually(lambda: recorder.stats.retries >= 4, message="retries")
                assert recorded_of(order) == Recorded(Outcome(1, "done"), 1)
                assert committed_offsets(group, topic) == 1
                assert "could not record ACK outcomes" in caplog.text

                outage.resume()
                eventually(
                    lambda: recorded_of(order) == Recorded(Outcome(2, "deleted"), 2),
                    message="v2 recorded after the outage",
                )
                eventually(lambda: committed_offsets(group, topic) == 2, message="committed")
            assert recorder.stats.processed == 2
    finally:
        producer.close(timeout=5)


def test_the_recorders_retries_count_under_its_own_names_not_the_workers():
    recorder = AckRecorder(AckRecorderConfig.from_settings(backoff_initial=0.01, backoff_max=0.01))
    outage = iter([RedisConnectionError("down for a moment")])

    def step() -> str:
        for error in outage:
            raise error
        return "recorded"

    def count(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"step": "record the ACKs"}) or 0.0

    worker_before = count("orderstream_worker_retries_total")
    recorder_before = count("orderstream_ack_recorder_retries_total")

    assert recorder.member.retry("record the ACKs", step) == "recorded"
    assert count("orderstream_ack_recorder_retries_total") == recorder_before + 1
    assert count("orderstream_worker_retries_total") == worker_before


def test_the_recorder_says_it_produces_nothing_through_its_configuration():
    """Its handler answers with no records: its config says so (`LoopConfig.produces`, so
    the loop builds no producer: orderstream/tests/test_kafka_batch_loop.py), and the
    recorder overrides none of the loop's producing."""
    assert AckRecorderConfig.from_settings().produces is False
    assert not {"_build_producer", "_publish", "_produce"} & set(vars(AckRecorder))
