"""The batch loop's counters and its periodic stats line.

Every `stats_interval` seconds the loop logs `processed N in Ts (R/s), mean batch B,
total, rejected, retries, lag L, partitions [...]` (README, "Worker"), from `LoopStats`.
The lag per partition is also kept for the metrics (`lags_refresh`, at most once a second).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from orderstream.kafka.driver import KafkaError

logger = logging.getLogger(__name__)


@dataclass
class LoopStats:
    """Counters since start, and since the last log line."""

    processed: int = 0
    rejected: int = 0  # records dead-lettered
    batches: int = 0
    retries: int = 0
    window_start: float = field(default_factory=time.monotonic)
    window_processed: int = 0
    window_batches: int = 0
    first_batch_at: float | None = None  # monotonic time the first batch arrived
    last_batch_at: float | None = None  # monotonic time the last batch was committed
    started_at: float = field(default_factory=time.monotonic)
    # Messages behind per partition held (None: not known yet), as last measured, and when.
    lags: dict = field(default_factory=dict)
    lags_at: float = 0.0

    def batch_started(self) -> None:
        if self.first_batch_at is None:
            self.first_batch_at = time.monotonic()

    def batch_committed(self, records: int) -> None:
        self.processed += records
        self.window_processed += records
        self.batches += 1
        self.window_batches += 1
        self.last_batch_at = time.monotonic()

    def window_seconds(self) -> float:
        return time.monotonic() - self.window_start

    def log_window(self, *, lag: int | None, partitions: set[int], force: bool) -> None:
        """Log the stats line (when something was processed, or `force`) and start a new
        window."""
        elapsed = self.window_seconds()
        if self.window_processed or force:
            mean_batch = self.window_processed / self.window_batches if self.window_batches else 0
            logger.info(
                "processed %d in %.1fs (%.0f/s), mean batch %.0f, total %d, rejected %d,"
                " retries %d, lag %s, partitions %s",
                self.window_processed,
                elapsed,
                self.window_processed / elapsed if elapsed else 0,
                mean_batch,
                self.processed,
                self.rejected,
                self.retries,
                lag,
                sorted(partitions),
            )
        self.window_start = time.monotonic()
        self.window_processed = 0
        self.window_batches = 0

    def lags_refresh(self, consumer, *, min_interval: float = 1.0) -> None:
        """Measure the lag per partition again, unless it was done within `min_interval`
        seconds (each measure asks the consumer about every partition it holds)."""
        now = time.monotonic()
        if now - self.lags_at < min_interval:
            return
        self.lags_at = now
        lags = partition_lags(consumer)
        self.lags = lags if lags is not None else {}


def partition_lags(consumer) -> dict | None:
    """Messages behind the end of each partition the consumer holds (None for one whose end
    no fetch has told yet, or whose position the consumer does not know yet), from the
    consumer's own state: no position is asked of the broker (`timeout_ms=0`). A broker
    asked from the loop's thread answers after the fetch in flight on the same connection
    (fetch_max_wait_ms): every second, per partition, that held a librdkafka worker's
    drain to a fifth of kafka-python's."""
    if consumer is None:
        return None
    lags = {}
    try:
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            position = None if high is None else consumer.position(tp, timeout_ms=0)
            lags[tp] = None if position is None else max(high - position, 0)
    except (KafkaError, AssertionError, TypeError):
        return None
    return lags


def consumer_lag(consumer) -> int | None:
    """Messages behind the end of the consumer's partitions, when known."""
    lags = partition_lags(consumer)
    if lags is None or None in lags.values():
        return None
    return sum(lags.values())
