"""An idle worker polls every WORKER_IDLE_POLL_MS instead of without pause, and still
picks up the next event (real broker, PostgreSQL and Redis)."""

from __future__ import annotations

import pytest

from orders_worker.consumer import OrderWorker
from orderstream.testing import CountingPolls, polls_during

from .factories import OrderEventFactory

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True, databases=["default", "worker"]),
]


@pytest.fixture
def poll_times(settings, monkeypatch):
    """The times of every poll of the worker this test runs, idle after 200 ms."""
    settings.WORKER_IDLE_POLL_MS = 200
    times: list[float] = []
    build = OrderWorker._build_consumer
    monkeypatch.setattr(
        OrderWorker, "_build_consumer", lambda self: CountingPolls(build(self), times)
    )
    return times


def test_an_idle_worker_polls_every_idle_interval_and_wakes_up_for_an_event(
    unique_topics, poll_times, running_worker, send_events, ack_reader
):
    polls_during(poll_times, 2.5)  # past IDLE_AFTER_SECONDS since it last saw an event
    idle_polls = polls_during(poll_times, 1.0)
    assert 2 <= idle_polls <= 7, idle_polls  # about 5 at 200 ms
    event = OrderEventFactory(payload={"amount": 1})
    send_events(event)
    ack_reader.read_until(lambda acks: len(acks) >= 1, timeout=10)
    assert ack_reader.statuses_by_event() == {event.event_id: ["created"]}
    # Having just seen an event, it polls without pause for a while (a burst is not slowed).
    busy_polls = polls_during(poll_times, 1.0)
    assert busy_polls > idle_polls, (busy_polls, idle_polls)
