"""The worker's metrics, counted where the loop handles batches: each record once, by
outcome, also when a batch falls back to one record at a time; retries by step and by the
service that failed; the gauges read from the loop at scrape time. (The running worker's
port under load: orderstream/tests/test_metrics_processes.py.)"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from kafka import TopicPartition
from prometheus_client import REGISTRY, generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError

from orders_worker.metrics import EVENT_OUTCOMES, WorkerCollector
from orders_worker.worker import OrderWorker, WorkerConfig
from testkit.factories import OrderEventFactory
from testkit.scrape import Metrics

from .support import RecordingProducer, records_of

EVENTS = "orderstream_worker_events_total"


def scraped(*collectors) -> Metrics:
    """This process's metrics, and those `collectors` show now."""
    return Metrics("".join(generate_latest(c).decode() for c in (REGISTRY, *collectors)))


def outcomes_since(before: Metrics) -> dict[str, float]:
    after = scraped()
    moved = {o: after.since(before, EVENTS, outcome=o) for o in EVENT_OUTCOMES}
    return {outcome: count for outcome, count in moved.items() if count}


@pytest.fixture
def worker() -> OrderWorker:
    """A worker that is not running, with a recording producer and no consumer."""
    config = WorkerConfig(
        events_topic="events", group="g", ack_topic="acks", dlq_topic="dlq", backoff_initial=0.01
    )
    worker = OrderWorker(config)
    worker._producer = RecordingProducer()
    return worker


@pytest.mark.django_db(databases=["default", "worker"])
def test_each_record_is_counted_once_by_its_outcome(worker):
    created = OrderEventFactory()
    updated = replace(created, event_id=str(uuid.uuid4()), status="updated", version=2)
    bad_amount = OrderEventFactory(payload={"amount": "ten"})
    before = scraped()
    worker._process_isolating(records_of(created, updated, bad_amount, b"\x00not json"))
    assert outcomes_since(before) == {"applied": 2, "rejected": 1, "dead_lettered": 1}

    stale = replace(created, event_id=str(uuid.uuid4()), status="updated", version=1)
    deleted = replace(created, event_id=str(uuid.uuid4()), status="deleted", version=3)
    after_delete = replace(created, event_id=str(uuid.uuid4()), status="updated", version=4)
    before = scraped()
    worker._process_isolating(records_of(created, stale, deleted, after_delete))
    assert outcomes_since(before) == {"duplicate": 1, "stale": 1, "applied": 1, "unchanged": 1}


@pytest.mark.django_db(databases=["default", "worker"])
def test_a_batch_handled_again_one_record_at_a_time_counts_each_record_once(worker, rules_fail_for):
    """The first try of the batch fails (nothing committed, nothing counted); alone, the
    poison record is dead-lettered and the others applied."""
    good, poison, also_good = OrderEventFactory(), OrderEventFactory(), OrderEventFactory()
    refused = OrderEventFactory(payload={"note": "a\u0000b"})
    rules_fail_for(poison.order_id)
    before = scraped()
    worker._process_isolating(records_of(good, poison, refused, also_good))
    assert outcomes_since(before) == {"applied": 2, "dead_lettered": 1, "rejected": 1}


def test_a_retried_step_is_counted_by_step_and_by_the_service_that_failed(worker):
    failures = [RedisConnectionError("refused")]

    def step():
        if failures:
            raise failures.pop()
        return "done"

    before = scraped()
    assert worker.member.retry("write results to Redis", step) == "done"
    after = scraped()
    retries = "orderstream_worker_retries_total"
    assert after.since(before, retries, step="write results to Redis") == 1
    assert after.since(before, retries) == 1
    assert after.since(before, "orderstream_worker_errors_total", dependency="redis") == 1
    assert after.since(before, "orderstream_worker_errors_total") == 1


class StubConsumer:
    """What the lag is measured from: the partitions held, their ends and positions."""

    def __init__(self, ends: dict, positions: dict):
        self.ends = ends
        self.positions = positions

    def assignment(self):
        return set(self.ends)

    def highwater(self, tp):
        return self.ends[tp]

    def position(self, tp, timeout_ms=None):
        return self.positions[tp]


def test_the_gauges_are_read_from_the_loop_when_scraped(worker):
    p0, p1, p2 = (TopicPartition("events", p) for p in range(3))
    consumer = StubConsumer({p0: 10, p1: 7, p2: None}, {p0: 4, p1: 7, p2: 0})
    worker.assignment.update({0, 1, 2})
    worker.stats.lags_refresh(consumer)
    metrics = scraped(WorkerCollector(worker))

    lags = {
        (labels["topic"], labels["partition"]): value
        for labels, value in metrics.series("orderstream_worker_consumer_lag")
    }
    assert lags == {("events", "0"): 6, ("events", "1"): 0}  # p2: no fetch told its end yet
    assert metrics.value("orderstream_worker_partitions_assigned") == 3
    assert 0 <= metrics.value("orderstream_worker_seconds_since_last_commit") < 60

    consumer.positions[p0] = 10
    # Within min_interval of the last: not measured again (an hour: a loaded machine may
    # take more than the default second between these two lines).
    worker.stats.lags_refresh(consumer, min_interval=3600)
    assert scraped(WorkerCollector(worker)).value("orderstream_worker_consumer_lag") == 6
    worker.stats.lags_refresh(consumer, min_interval=0)
    assert scraped(WorkerCollector(worker)).value("orderstream_worker_consumer_lag") == 0
