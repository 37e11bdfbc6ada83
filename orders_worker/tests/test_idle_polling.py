"""An idle worker polls every WORKER_IDLE_POLL_MS instead of without pause, and still
picks up the next event (real broker, PostgreSQL and Redis)."""

from __future__ import annotations

import threading
import time

import pytest

from orders_worker.worker import OrderWorker, WorkerConfig
from orderstream.kafka import one_fetch_timeout_ms
from testkit.factories import OrderEventFactory
from testkit.helpers import CountingPolls, OffsetClock, eventually, polls_after, shortest_gap

from .support import worker_running

# Idle only after an hour of the test's clock: a worker goes idle when the test moves its
# clock on, never because the machine is slow.
IDLE_AFTER_SECONDS = 3600.0

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True, databases=["default", "worker"]),
]


@pytest.fixture
def polls(monkeypatch):
    """Every poll of the workers this test runs, per worker."""
    recorded: dict[int, list] = {}
    build = OrderWorker._build_consumer
    monkeypatch.setattr(
        OrderWorker,
        "_build_consumer",
        lambda self: CountingPolls(build(self), recorded.setdefault(id(self), [])),
    )
    return recorded


@pytest.fixture
def idle_poll_200ms(settings):
    """Idle workers pause 200 ms before each poll (set before the worker is built)."""
    settings.WORKER_IDLE_POLL_MS = 200


@pytest.fixture
def worker_clock():
    """The clock that decides when the test's worker is idle (moved on by the test)."""
    return OffsetClock()


@pytest.fixture
def clocked_worker(unique_topics, idle_poll_200ms, worker_clock, polls):
    """A worker on the test's topics, idle after IDLE_AFTER_SECONDS of `worker_clock`,
    consuming in a thread (holding partitions when the test starts)."""
    config = WorkerConfig.from_settings(
        poll_timeout_ms=100,
        stats_interval=60,
        backoff_max=1.0,
        idle_after_seconds=IDLE_AFTER_SECONDS,
    )
    worker = OrderWorker(config, clock=worker_clock.monotonic)
    with worker_running(worker):
        yield worker


def test_an_idle_worker_polls_every_idle_interval_and_wakes_up_for_an_event(
    worker_clock, polls, clocked_worker, send_events, ack_reader
):
    worker_polls = polls[id(clocked_worker)]
    busy = polls_after(worker_polls, time.monotonic(), 3)
    assert {poll.timeout_ms for poll in busy} == {100}, busy  # the worker's poll timeout
    worker_clock.advance(IDLE_AFTER_SECONDS + 1)  # an hour without events
    # The first poll may have begun its turn before the clock moved; the others did not.
    idle = polls_after(worker_polls, time.monotonic(), 5)[1:]
    # Each idle poll comes after a pause of WORKER_IDLE_POLL_MS (a slow machine makes the
    # gaps longer, never shorter) and lasts one fetch.
    assert shortest_gap(idle) >= 0.2 * 0.95, idle
    assert {poll.timeout_ms for poll in idle} == {one_fetch_timeout_ms()}, idle
    event = OrderEventFactory(payload={"amount": 1})
    send_events(event)
    ack_reader.read_until(lambda acks: len(acks) >= 1, timeout=30)
    assert ack_reader.statuses_by_event() == {event.event_id: ["created"]}
    # Having just seen an event, it polls without pause again (a burst is not slowed).
    again = polls_after(worker_polls, time.monotonic(), 3)
    assert {poll.timeout_ms for poll in again} == {100}, again


def test_idle_workers_take_their_partitions_when_a_member_joins(unique_topics, settings, polls):
    """Two workers idle long enough to pause between polls; a third joins. The idle ones
    must not pause during the rebalance: a join answer that arrives outside poll() waits
    for the next poll (unfixed kafka-python threw it away, and with Tansu's fixed 3 s
    answer to a rejoin every answer landed in the pause: the group never settled). All
    partitions are held again within seconds."""
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
        settled = time.monotonic()

        def pausing(worker) -> bool:  # an idle poll, as long as one fetch, after a pause
            idle = one_fetch_timeout_ms()
            return any(p.at > settled and p.timeout_ms == idle for p in polls[id(worker)])

        eventually(lambda: all(map(pausing, workers[:2])), timeout=30, message="both idle")
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
            if thread.ident is not None:  # started
                thread.join(30)
