"""The worker's metrics (`manage.py run_worker`, served on WORKER_METRICS_PORT).

Counters, updated once per batch (never per event):
- `orderstream_worker_events_total{outcome}`: records handled, each counted once its
  batch's ACKs and dead letters were produced. Outcomes (one per record): `applied` (the
  order was created or changed), `unchanged` (a later event of a deleted order),
  `duplicate` (an event handled before), `stale` (older than the stored version),
  `rejected` (a readable event refused by the rules or by PostgreSQL: a dead letter and a
  `rejected` ACK), `dead_lettered` (a record that is no valid event, or that failed alone
  with an unexpected error). The dead-letter topic receives `rejected` + `dead_lettered`.
- `orderstream_worker_batch_size`: records per poll handled (histogram).
- `orderstream_worker_retries_total{step}`: transient failures retried, by step (`apply
  the batch to PostgreSQL`, `write results to Redis`, `commit offsets`, `poll`, ...).
- `orderstream_worker_errors_total{dependency}`: the same failures by the service that
  failed: `postgres`, `redis`, `kafka` (`other` for an OS error of no known client).

Gauges, read at scrape time from the loop (`WorkerCollector`):
- `orderstream_worker_consumer_lag{topic,partition}`: messages behind the end of each
  partition held (the loop measures it at most once a second, from what its fetches said);
- `orderstream_worker_partitions_assigned`: partitions held;
- `orderstream_worker_seconds_since_last_commit`: since the last batch was committed
  (since start before the first).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from django.db import Error as DatabaseError
from kafka.errors import KafkaError
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

EVENT_OUTCOMES = ("applied", "unchanged", "duplicate", "stale", "rejected", "dead_lettered")
DEPENDENCIES = ((DatabaseError, "postgres"), (RedisError, "redis"), (KafkaError, "kafka"))

worker_events = Counter(
    "orderstream_worker_events", "Records handled by the worker, by outcome", ["outcome"]
)
_events_by_outcome = {outcome: worker_events.labels(outcome) for outcome in EVENT_OUTCOMES}
worker_batch_size = Histogram(
    "orderstream_worker_batch_size",
    "Records per batch (one poll) handled and committed",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
)
worker_retries = Counter(
    "orderstream_worker_retries", "Transient failures retried, by step", ["step"]
)
worker_errors = Counter(
    "orderstream_worker_errors",
    "Transient failures retried, by the service that failed",
    ["dependency"],
)


def events_counted(outcomes: Mapping[str, int]) -> None:
    """Records of one batch, by outcome (one of EVENT_OUTCOMES)."""
    for outcome, count in outcomes.items():
        _events_by_outcome[outcome].inc(count)


def batch_counted(size: int) -> None:
    """One batch of `size` records was handled and committed."""
    worker_batch_size.observe(size)


def failed_dependency(error: BaseException) -> str:
    """The service `error` came from: postgres, redis, kafka, or other."""
    for kind, name in DEPENDENCIES:
        if isinstance(error, kind):
            return name
    return "other"


def retry_counted(step: str, error: BaseException) -> None:
    """`step` failed for a transient reason and will be retried."""
    worker_retries.labels(step).inc()
    worker_errors.labels(failed_dependency(error)).inc()


class WorkerCollector:
    """The loop's gauges, read when Prometheus scrapes (see the module). `loop` is a
    `batch_loop.BatchLoop`; the scrape runs in another thread and only reads."""

    def __init__(self, loop):
        self.loop = loop

    def collect(self):
        stats = self.loop.stats
        lag = GaugeMetricFamily(
            "orderstream_worker_consumer_lag",
            "Messages behind the end of each partition held",
            labels=["topic", "partition"],
        )
        for tp, behind in sorted(stats.lags.items()):
            if behind is not None:
                lag.add_metric([tp.topic, str(tp.partition)], behind)
        yield lag
        yield GaugeMetricFamily(
            "orderstream_worker_partitions_assigned",
            "Partitions of the events topic this worker holds",
            value=len(self.loop.assignment.partitions),
        )
        last = stats.last_batch_at if stats.last_batch_at is not None else stats.started_at
        yield GaugeMetricFamily(
            "orderstream_worker_seconds_since_last_commit",
            "Seconds since this worker last committed a batch (since start before the first)",
            value=time.monotonic() - last,
        )
