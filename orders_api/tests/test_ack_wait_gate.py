"""The ACK wait gate: a few waiters per process, none while the pipeline is behind.

The listener is a real `AckListener` whose thread is not started: the test sets whether it
is positioned and delivers its ACKs by hand. The outbox's age and the clock are the test's.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid

import pytest
from django.utils import timezone

from orders_api.ack_wait import process_listener
from orders_api.ack_wait.gate import (
    ACK_LISTENER_READY_WAIT,
    BUSY,
    LISTENER_NOT_READY,
    OUTBOX_AGE_REFRESH_SECONDS,
    PIPELINE_BEHIND,
    AckWaitGate,
)
from orders_api.ack_wait.listener import AckListener
from orders_api.models import OutboxEvent
from orderstream.messages import OrderAck
from testkit.helpers import WatchedEvent


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class OutboxAge:
    """The outbox's oldest waiting row's age, as the test sets it; counts the reads."""

    def __init__(self, age: float = 0.0):
        self.age = age
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.age


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def listener(monkeypatch, clock) -> AckListener:
    """This process's listener, positioned, its thread not started."""
    made = AckListener(clock=clock)
    made.positioned_once = True
    made.ready.set()
    monkeypatch.setattr(process_listener, "ack_listener", lambda: made)
    return made


@pytest.fixture
def outbox_age() -> OutboxAge:
    return OutboxAge()


@pytest.fixture
def gate(clock, outbox_age) -> AckWaitGate:
    return AckWaitGate(clock=clock, outbox_age=outbox_age)


def ack(event_id: str) -> OrderAck:
    return OrderAck(event_id, str(uuid.uuid4()), "created", "2026-01-01T00:00:00Z")


def test_beyond_the_waiter_budget_a_write_is_told_busy_and_a_freed_slot_serves_again(
    gate, listener, settings
):
    settings.ORDER_ACK_MAX_WAITERS = 2
    with contextlib.ExitStack() as held:
        first = held.enter_context(gate.slot(5.0))
        second = held.enter_context(gate.slot(5.0))
        assert first.listener is listener and second.listener is listener
        assert gate.waiting == 2
        with gate.slot(5.0) as third:
            assert (third.listener, third.skipped) == (None, BUSY)
            assert gate.waiting == 2  # a refused write holds no slot
    assert gate.waiting == 0
    with gate.slot(5.0) as again:
        assert (again.listener, again.skipped) == (listener, None)


def test_a_write_that_asks_no_wait_takes_no_slot_and_skips_nothing(gate, listener, settings):
    settings.ORDER_ACK_MAX_WAITERS = 1
    with gate.slot(5.0), gate.slot(0) as unasked:
        assert (unasked.listener, unasked.skipped) == (None, None)


def test_a_slot_is_given_back_when_the_write_raises(gate, listener, settings):
    settings.ORDER_ACK_MAX_WAITERS = 1
    with pytest.raises(RuntimeError), gate.slot(5.0):
        raise RuntimeError("the write failed")
    assert gate.waiting == 0


def test_an_outbox_row_older_than_the_limit_means_the_pipeline_is_behind(
    gate, listener, outbox_age, settings
):
    settings.ORDER_ACK_WAIT_MAX_OUTBOX_AGE = 2.0
    outbox_age.age = 2.5
    with gate.slot(5.0) as slot:
        assert (slot.listener, slot.skipped) == (None, PIPELINE_BEHIND)
    outbox_age.age = 1.5
    with gate.slot(5.0) as slot:  # the reading is still fresh: not read again
        assert slot.skipped == PIPELINE_BEHIND
    assert outbox_age.reads == 1


def test_the_outbox_age_is_read_again_once_the_last_reading_is_stale(
    gate, listener, outbox_age, clock, settings
):
    settings.ORDER_ACK_WAIT_MAX_OUTBOX_AGE = 2.0
    outbox_age.age = 2.5
    with gate.slot(5.0) as slot:
        assert slot.skipped == PIPELINE_BEHIND
    outbox_age.age = 0.1
    clock.now += OUTBOX_AGE_REFRESH_SECONDS
    with gate.slot(5.0) as slot:
        assert (slot.listener, slot.skipped) == (listener, None)
    assert outbox_age.reads == 2


def test_a_timed_out_wait_means_behind_until_the_listener_reads_any_ack(gate, listener, clock):
    """The workers are down: one wait of 1 s or more got no ACK, and no ACK came since it
    began. The next write does not wait; the first ACK read (of any event) ends that."""
    with gate.slot(5.0) as slot:
        assert gate.wait_for(slot, "event-1", 1.0) is None
    with gate.slot(5.0) as slot:
        assert (slot.listener, slot.skipped) == (None, PIPELINE_BEHIND)
    clock.now += 0.5
    listener.deliver(ack("another-event"))
    with gate.slot(5.0) as slot:
        assert (slot.listener, slot.skipped) == (listener, None)
        listener.deliver(ack("event-2"))
        assert gate.wait_for(slot, "event-2", 1.0) is not None


def test_an_ack_read_during_the_timed_out_wait_keeps_the_pipeline_moving(gate, listener, clock):
    """An ACK that came after the wait began (another event's) shows the workers answer:
    only this event was slow."""
    with gate.slot(5.0) as slot:
        clock.now += 0.1
        listener.deliver(ack("another-event"))
        assert gate.wait_for(slot, "event-1", 1.0) is None
    with gate.slot(5.0) as slot:
        assert slot.listener is not None  # it began before that ACK: not behind


def test_a_short_timed_out_wait_says_nothing_of_the_pipeline(gate, listener):
    """`Prefer: wait=0.2` that gets no ACK in time: the pipeline may well be moving."""
    with gate.slot(5.0) as slot:
        assert gate.wait_for(slot, "event-1", 0.2) is None
    with gate.slot(5.0) as slot:
        assert (slot.listener, slot.skipped) == (listener, None)


def test_a_reconnecting_listener_is_not_waited_for_at_all(gate, listener):
    """It was positioned once and lost its broker: no write waits for it to come back."""
    listener.ready = WatchedEvent()
    with gate.slot(5.0) as slot:
        assert (slot.listener, slot.skipped) == (None, LISTENER_NOT_READY)
    assert listener.ready.timeouts == []


def test_a_listener_never_positioned_is_waited_for_briefly_as_at_start(gate, listener):
    listener.positioned_once = False
    listener.ready = WatchedEvent()
    with gate.slot(5.0) as slot:
        assert (slot.listener, slot.skipped) == (None, LISTENER_NOT_READY)
    assert listener.ready.timeouts == [ACK_LISTENER_READY_WAIT]


@pytest.mark.django_db
def test_the_gates_own_reading_is_the_oldest_unpublished_unparked_row(listener, settings):
    """The default reading, from the API database: published and parked rows do not count."""
    settings.ORDER_ACK_WAIT_MAX_OUTBOX_AGE = 2.0
    now = timezone.now()
    old = now - datetime.timedelta(seconds=30)

    def row(**fields) -> OutboxEvent:
        return OutboxEvent.objects.create(
            event_id=uuid.uuid4(),
            order_id=uuid.uuid4(),
            version=1,
            topic="orders.events",
            value="{}",
            created_at=old,
            next_attempt_at=old,
            **fields,
        )

    published = row(published_at=now)
    parked = row(parked_at=now)
    with AckWaitGate().slot(5.0) as slot:
        assert slot.skipped is None
    waiting = row()
    with AckWaitGate().slot(5.0) as slot:
        assert slot.skipped == PIPELINE_BEHIND
    assert {published.pk, parked.pk, waiting.pk} <= set(
        OutboxEvent.objects.values_list("pk", flat=True)
    )
