"""`order_write`: the outcome of a POST, from the write to the worker's ACK (or none).

This process's ACK listener is a stand-in here (no broker): it is ready or not, has seen
an ACK or not, and records the waits asked of it.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from orders_api.ack_wait import gate as ack_wait_gate
from orders_api.ack_wait import process_listener
from orders_api.errors import OrderRejected
from orders_api.models import Order, OutboxEvent
from orders_api.order_writes import order_write
from orderstream.messages import OrderAck
from testkit.helpers import WatchedEvent

pytestmark = pytest.mark.django_db

USER = uuid.UUID("7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10")


class StandInListener:
    """An ACK listener whose ACKs the test decides: `answer` is the status of the ACK each
    wait gets (None: no ACK comes), `seen` the ACKs it has read before any wait."""

    def __init__(self, *, ready: bool = True, answer: str | None = None):
        self.ready = threading.Event()
        self.positioned_once = ready
        self.last_ack_at = float("-inf")
        if ready:
            self.ready.set()
        self.answer = answer
        self.seen: dict[str, OrderAck] = {}
        self.waits: list[tuple[str, float]] = []

    def wait_for(self, event_id: str, timeout: float, **match) -> OrderAck | None:
        self.waits.append((event_id, timeout))
        if self.answer is None:
            return None
        return OrderAck(event_id, None, self.answer, "2026-01-01T00:00:00Z", "amount: too big")

    def recent(self, event_id: str) -> OrderAck | None:
        return self.seen.get(event_id)


@pytest.fixture
def listener(monkeypatch) -> StandInListener:
    stand_in = StandInListener()
    monkeypatch.setattr(process_listener, "ack_listener", lambda: stand_in)
    return stand_in


def write(*, key: str | None = None, wait: float = 5.0, payload=None):
    return order_write(
        user_id=USER,
        order_id=None,
        payload=payload or {"amount": 1},
        idempotency_key=key,
        wait_seconds=wait,
    )


def test_the_acks_status_is_the_outcome_and_the_wait_stays_within_the_budget(listener):
    listener.answer = "created"
    outcome = write(wait=5.0)
    assert (outcome.status, outcome.pending, outcome.replayed) == ("created", False, False)
    [(event_id, timeout)] = listener.waits
    assert 0 < timeout <= 5.0
    assert Order.objects.get().order_id == outcome.order_id


def test_without_an_ack_in_time_the_outcome_is_pending(listener):
    outcome = write(wait=0.2)
    assert (outcome.status, outcome.pending) == ("pending", True)
    assert len(listener.waits) == 1


def test_a_write_that_does_not_wait_asks_no_listener(listener):
    outcome = write(wait=0)
    assert outcome.pending
    assert listener.waits == []


def test_a_listener_not_ready_in_time_is_not_waited_for(monkeypatch):
    """The readiness wait is at most ACK_LISTENER_READY_WAIT, however long the wait
    budget; then the write is stored and pending, whatever ACK might have come."""
    unready = StandInListener(ready=False, answer="created")
    unready.ready = WatchedEvent()
    monkeypatch.setattr(process_listener, "ack_listener", lambda: unready)
    outcome = write(wait=30)
    assert outcome.pending
    assert unready.ready.timeouts == [ack_wait_gate.ACK_LISTENER_READY_WAIT]
    assert unready.waits == []
    assert Order.objects.filter(order_id=outcome.order_id).exists()


def test_a_rejecting_ack_raises_order_rejected_and_the_order_stays(listener):
    listener.answer = "rejected"
    with pytest.raises(OrderRejected) as raised:
        write()
    error = raised.value
    assert (error.field, error.reason, error.replayed) == ("payload", "amount: too big", False)
    assert Order.objects.filter(order_id=error.order_id).exists()


def test_a_replay_answers_the_ack_this_process_has_seen_without_waiting(listener):
    first = write(key="k-1", wait=0)
    event_id = str(OutboxEvent.objects.get(order_id=first.order_id).event_id)
    listener.seen[event_id] = OrderAck(event_id, None, "created", "2026-01-01T00:00:00Z")
    again = write(key="k-1", wait=5.0)
    assert (again.order_id, again.status, again.replayed) == (first.order_id, "created", True)
    assert listener.waits == []


def test_a_replay_whose_outcome_is_unknown_waits_like_a_first_request(listener):
    first = write(key="k-2", wait=0)
    listener.answer = "created"
    again = write(key="k-2", wait=5.0)
    assert (again.order_id, again.status, again.replayed) == (first.order_id, "created", True)
    assert len(listener.waits) == 1


def test_a_replayed_rejection_says_it_is_a_replay(listener):
    write(key="k-3", wait=0)
    listener.answer = "rejected"
    with pytest.raises(OrderRejected) as raised:
        write(key="k-3", wait=5.0)
    assert raised.value.replayed is True
