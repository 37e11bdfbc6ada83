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

from prometheus_client.core import GaugeMetricFamily

from orderstream.kafka.loop_metrics import LoopMetrics

EVENT_OUTCOMES = ("applied", "unchanged", "duplicate", "stale", "rejected", "dead_lettered")


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


class WorkerCollector:
    """The loop's gauges, read when Prometheus scrapes (see the module). `loop` is a
    `orderstream.kafka.batch_loop.BatchLoop`; the scrape runs in another thread and only reads."""

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
