"""The batch loop's counters (`batch_loop.py`): records by outcome, batch sizes, retries by
step and by the service that failed. Each loop has its own set, named by its app: the
worker's (`orders_worker/metrics.py`, `worker_loop_metrics`) and the ACK recorder's
(`orders_api.ack_recorder.recorder.ack_recorder_metrics`).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import Error as DatabaseError
from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError

from orderstream.kafka.driver import KafkaError

DEPENDENCIES = ((DatabaseError, "postgres"), (RedisError, "redis"), (KafkaError, "kafka"))


class LoopMetrics:
    """The counters a batch loop updates: records by outcome (when the loop names `events`
    and its `outcomes`), batch sizes, retries by step and by the service that failed. The
    worker's loop and the ACK recorder's each have their own, so that neither counts under
    the other's names; each set is made once per process, by the first loop that needs it
    (`orders_worker.metrics.worker_loop_metrics`,
    `orders_api.ack_recorder.recorder.ack_recorder_metrics`). The names are written out
    where a set is made, so that a search of the code finds them."""

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


def failed_dependency(error: BaseException) -> str:
    """The service `error` came from: postgres, redis, kafka, or other."""
    for kind, name in DEPENDENCIES:
        if isinstance(error, kind):
            return name
    return "other"
