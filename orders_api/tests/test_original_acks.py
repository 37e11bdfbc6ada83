"""The Go original worker's ACKs (no event id, no version) answer this API's waiting
writes, and the ACK recorder places them: matching rules (unit), the listener without a
broker, and the API in front of a stand-in of the original worker on the real stack."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from orders_api.ack_recorder.recorder import ack_read, order_outcomes_record_acks
from orders_api.ack_wait.listener import AckListener
from orders_api.ack_wait.order_match import Waiting, ack_for_waiter, waiter_for_ack
from orders_api.models import Order, OutboxEvent
from orderstream.messages import OrderAck, OrderEvent
from orderstream.timestamps import utc_now
from testkit.helpers import Record, eventually
from testkit.original_messages import StandInOriginal, go_time, original_message
from testkit.topics import TopicReader

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def go_ack(order_id: str, status: str, processed_at: datetime) -> OrderAck:
    raw = original_message(f"ack_{status}", order_id=order_id, processed_at=go_time(processed_at))
    return OrderAck.from_bytes(raw)


# ---------------------------------------------------------------- matching (pure)
def test_an_ack_answers_the_oldest_write_begun_before_it_was_processed():
    waiting = [Waiting("b", at(5), 2), Waiting("a", at(1), 1), Waiting("c", at(50), 3)]
    assert waiter_for_ack(processed_at=at(10), waiting=waiting) == "a"
    assert waiter_for_ack(processed_at=at(10), waiting=waiting[:1] + waiting[2:]) == "b"
    assert waiter_for_ack(processed_at=at(1), waiting=waiting) is None  # none began before
    assert waiter_for_ack(processed_at=None, waiting=waiting) is None


@given(st.lists(st.integers(0, 100), max_size=8), st.integers(0, 100))
def test_the_chosen_waiter_began_before_the_ack_and_none_eligible_is_older(began, ms):
    waiting = [Waiting(f"e{rank}", at(start), rank) for rank, start in enumerate(began)]
    chosen = waiter_for_ack(processed_at=at(ms), waiting=waiting)
    eligible = [w for w in waiting if w.began_at < at(ms)]
    if not eligible:
        assert chosen is None
        return
    [winner] = [w for w in waiting if w.event_id == chosen]
    assert winner.began_at < at(ms)
    assert all((winner.began_at, winner.rank) <= (w.began_at, w.rank) for w in eligible)


@given(st.lists(st.one_of(st.none(), st.integers(0, 100)), max_size=8), st.integers(0, 100))
def test_a_new_waiter_takes_the_first_kept_ack_processed_after_it_began(processed, began):
    times = [None if ms is None else at(ms) for ms in processed]
    index = ack_for_waiter(began_at=at(began), processed=times)
    later = [i for i, t in enumerate(times) if t is not None and t > at(began)]
    assert index == (later[0] if later else None)


# ---------------------------------------------------------------- the listener, no broker
def waiting_thread(listener: AckListener, got: dict, name: str, order_id: str, began_at):
    thread = threading.Thread(
        target=lambda: got.update(
            {name: listener.wait_for(str(uuid.uuid4()), 10, order_id=order_id, began_at=began_at)}
        )
    )
    thread.start()
    eventually(lambda: len(listener._slots) >= len(got) + 1, message=f"{name} waits")
    return thread


@pytest.mark.parametrize("status", ["created", "updated", "deleted"])
def test_the_originals_ack_fixture_answers_a_waiting_write_of_its_order(settings, status):
    listener = AckListener()
    order_id = str(uuid.uuid4())
    got: dict = {}
    thread = waiting_thread(listener, got, "write", order_id, utc_now())
    listener.deliver(go_ack(str(uuid.uuid4()), status, utc_now()))  # another order's
    listener.deliver(go_ack(order_id, status, utc_now() + timedelta(milliseconds=1)))
    thread.join(10)
    assert (got["write"].order_id, got["write"].status) == (order_id, status)
    assert got["write"].event_id is None


def test_two_waiting_writes_of_one_order_are_answered_oldest_first(settings):
    listener = AckListener()
    order_id = str(uuid.uuid4())
    got: dict = {}
    first = waiting_thread(listener, got, "first", order_id, at(0))
    second = waiting_thread(listener, got, "second", order_id, at(10))
    listener.deliver(go_ack(order_id, "updated", at(5)))  # before the second began
    first.join(10)
    assert got["first"].status == "updated" and "second" not in got
    listener.deliver(go_ack(order_id, "deleted", at(20)))
    second.join(10)
    assert got["second"].status == "deleted"


def test_an_ack_before_its_write_waits_is_kept_for_it_but_not_for_a_later_write(settings):
    listener = AckListener()
    order_id = str(uuid.uuid4())
    listener.deliver(go_ack(order_id, "created", at(10)))
    late = listener.wait_for(str(uuid.uuid4()), 0, order_id=order_id, began_at=at(20))
    assert late is None  # processed before this write began: not its ACK
    ack = listener.wait_for(str(uuid.uuid4()), 0, order_id=order_id, began_at=at(5))
    assert ack.status == "created"
    assert listener.wait_for(str(uuid.uuid4()), 0, order_id=order_id, began_at=at(5)) is None


def test_an_original_ack_without_a_readable_time_answers_no_one(settings):
    listener = AckListener()
    order_id = str(uuid.uuid4())
    listener.deliver(OrderAck(None, order_id, "created", "yesterday"))
    assert listener.wait_for(str(uuid.uuid4()), 0, order_id=order_id, began_at=at(0)) is None


# ---------------------------------------------------------------- the recorder
def outbox_row(order: Order, version: int, *, published: bool) -> OutboxEvent:
    event = OrderEvent(
        str(uuid.uuid4()),
        str(order.order_id),
        str(order.user_id),
        {},
        "updated",
        version,
        "2026-12-07T10:00:00Z",
    )
    return OutboxEvent.objects.create(
        event_id=event.event_id,
        order_id=order.order_id,
        version=version,
        topic="orders.events",
        value=event.to_bytes().decode(),
        created_at=utc_now(),
        next_attempt_at=utc_now(),
        published_at=utc_now() if published else None,
    )


@pytest.mark.django_db
def test_the_recorder_places_an_original_ack_by_the_latest_published_version():
    now = utc_now()
    order = Order.objects.create(
        user_id=uuid.uuid4(), created_at=now, updated_at=now, bucket=0, version=3
    )
    outbox_row(order, 1, published=True)
    outbox_row(order, 2, published=True)
    outbox_row(order, 3, published=False)  # not published yet: no ACK can be its
    raw = original_message("ack_updated", order_id=str(order.order_id), processed_at=go_time(now))
    ack = ack_read(Record(settings.ORDERS_ACK_TOPIC, 0, 0, None, raw))
    assert (ack.event_id, ack.version) == (None, None)
    assert order_outcomes_record_acks(acks=[ack]) == 1
    order.refresh_from_db()
    assert (order.outcome, order.outcome_version, order.applied_version) == ("done", 2, 2)


@pytest.mark.django_db
def test_an_original_ack_of_an_order_never_published_is_skipped(caplog):
    now = utc_now()
    order = Order.objects.create(
        user_id=uuid.uuid4(), created_at=now, updated_at=now, bucket=0, version=1
    )
    raw = original_message("ack_created", order_id=str(order.order_id), processed_at=go_time(now))
    ack = ack_read(Record(settings.ORDERS_ACK_TOPIC, 0, 0, None, raw))
    assert order_outcomes_record_acks(acks=[ack]) == 0
    assert "no version for the ACK" in caplog.text


# ---------------------------------------------------------------- on the real stack
class StandInOriginalWorker:
    """The original worker as far as this API sees it: reads each event and answers with
    the original's ACK bytes (no key, no event id, no version), its status as the
    original's worker gives it (first sight created, deleted, else updated)."""

    def __init__(self):
        self.reader = TopicReader(settings.ORDERS_EVENTS_TOPIC)
        self.producer = StandInOriginal()
        self.seen: set[str] = set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            for record in self.reader.poll():
                event = json.loads(record.value)
                order_id = event["order_id"]
                if event["status"] == "deleted":
                    status = "deleted"
                else:
                    status = "updated" if order_id in self.seen else "created"
                self.seen.add(order_id)
                raw = original_message(
                    f"ack_{status}", order_id=order_id, processed_at=go_time(utc_now())
                )
                self.producer.send(settings.ORDERS_ACK_TOPIC, raw)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(10)
        self.reader.close()
        self.producer.close()


@pytest.mark.django_db(transaction=True)
def test_this_api_in_front_of_the_original_worker_answers_200_with_its_statuses(
    api, unique_topics, running_relay, running_ack_recorder
):
    with StandInOriginalWorker():
        user = str(uuid.uuid4())
        created = api.post("/orders", {"user_id": user, "payload": {"id": "G-1", "amount": 5}})
        assert created.status_code == 200, created.content
        order_id = created.json()["order_id"]
        assert created.json() == {"order_id": order_id, "status": "created"}
        updated = api.post(
            "/orders", {"order_id": order_id, "user_id": user, "payload": {"amount": 7}}
        )
        assert (updated.status_code, updated.json()["status"]) == (200, "updated")
        deleted = api.post("/orders", {"order_id": order_id, "user_id": user, "status": "deleted"})
        assert (deleted.status_code, deleted.json()["status"]) == (200, "deleted")

    def recorded():
        order = Order.objects.get(order_id=order_id)
        return (order.outcome, order.outcome_version) == ("deleted", 3)

    eventually(recorded, message="the original's ACKs recorded at the latest version")


def test_unclaimed_acks_are_bounded_per_order_and_in_orders(settings):
    listener = AckListener(recent_limit=2)
    orders = [str(uuid.uuid4()) for _ in range(3)]
    for order_id in orders:
        for ms in range(20):
            listener.deliver(go_ack(order_id, "updated", at(ms)))
    assert list(listener._unclaimed) == orders[1:]
    assert [at_ for at_, _ in listener._unclaimed[orders[2]]] == [at(ms) for ms in range(4, 20)]
