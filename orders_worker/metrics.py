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
  the batch to PostgreSQL`, `write results to Redis`, `poll`, ...).
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

import functools
import time
from collections.abc import Mapping

from django.db import Error as DatabaseError
from kafka.errors import KafkaError
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

EVENT_OUTCOMES = ("applied", "unchanged", "duplicate", "stale", "rejected", "dead_lettered")
DEPENDENCIES = ((DatabaseError, "postgres"), (RedisError, "redis"), (KafkaError, "kafka"))


class LoopMetrics:
    """The counters a batch loop updates (see the module for the worker's): records by
    outcome (when the loop names `events` and its `outcomes`), batch sizes, retries by step
    and by the service that failed. The worker's loop and the ACK recorder's each have
    their own, so that neither counts under the other's names; each set is made once per
    process, by the first loop that needs it (`worker_loop_metrics`,
    `orders_api.ack_recorder.recorder.ack_recorder_metrics`). The names are written out where a set
    is made, so that a search of the code finds them."""

    def __init__(
        self,
        *,
        subject: str,
        batch_size: str,
        retries: str,
        errors: str,
        events: str = "",
        outcomes: tuple[str, ...] = (),
    ):
        self._events_by_outcome = {}
        if events:
            counter = Counter(events, f"Records handled by {subject}, by outcome", ["outcome"])
            self._events_by_outcome = {outcome: counter.labels(outcome) for outcome in outcomes}
        self._batch_size = Histogram(
            batch_size,
            "Records per batch (one poll) handled and committed",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
        )
        self._retries = Counter(retries, "Transient failures retried, by step", ["step"])
        self._errors = Counter(
            errors, "Transient failures retried, by the service that failed", ["dependency"]
        )

    def events_counted(self, outcomes: Mapping[str, int]) -> None:
        """Records of one batch, by outcome (one of the loop's `outcomes`)."""
        for outcome, count in outcomes.items():
            self._events_by_outcome[outcome].inc(count)

    def batch_counted(self, size: int) -> None:
        """One batch of `size` records was handled and committed."""
        self._batch_size.observe(size)

    def retry_counted(self, step: str, error: BaseException) -> None:
        """`step` failed for a transient reason and will be retried."""
        self._retries.labels(step).inc()
        self._errors.labels(failed_dependency(error)).inc()


@functools.cache
def worker_loop_metrics() -> LoopMetrics:
    """The worker's counters, made on first use."""
    return LoopMetrics(
        subject="the worker",
        events="orderstream_worker_events",
        outcomes=EVENT_OUTCOMES,
        batch_size="orderstream_worker_batch_size",
        retries="orderstream_worker_retries",
        errors="orderstream_worker_errors",
    )


def failed_dependency(error: BaseException) -> str:
    """The service `error` came from: postgres, redis, kafka, or other."""
    for kind, name in DEPENDENCIES:
        if isinstance(error, kind):
            return name
    return "other"


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
