"""An idle worker polls every WORKER_IDLE_POLL_MS instead of without pause, and still
picks up the next event (real broker, PostgreSQL and Redis)."""

from __future__ import annotations

import threading
import time

import pytest

from orders_worker.consumer import IDLE_AFTER_SECONDS, OrderWorker, WorkerConfig
from orderstream.testing import CountingPolls, eventually, polls_during

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


def test_idle_workers_take_their_partitions_when_a_member_joins(unique_topics, settings):
    """Two workers idle long enough to pause between polls; a third joins. The idle ones
    must not pause during the rebalance: kafka-python drops a join answer that arrives
    outside poll(), and with Tansu's fixed 3 s answer to a rejoin every answer landed in
    the pause (the group never settled). All partitions are held again within seconds."""
    settings.WORKER_IDLE_POLL_MS = 100
    settings.KAFKA_FETCH_MAX_WAIT_MS = 10  # as local.env: a 20 ms poll between pauses
    workers = [OrderWorker(WorkerConfig.from_settings(poll_timeout_ms=500)) for _ in range(3)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    partitions = set(range(unique_topics.ORDERS_EVENTS_PARTITIONS))

    def held(members) -> set[int]:
        return set().union(*(w.partitions() for w in members))

    try:
        for thread in threads[:2]:
            thread.start()
        eventually(lambda: held(workers[:2]) == partitions, timeout=30, message="two hold all")
        time.sleep(IDLE_AFTER_SECONDS + 1)  # both idle: they pause between polls now
        threads[2].start()
        eventually(
            lambda: all(w.partitions() for w in workers) and held(workers) == partitions,
            timeout=20,
            message="the three workers hold every partition after the join",
        )
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(30)
