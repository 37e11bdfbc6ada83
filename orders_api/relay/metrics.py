"""The relay's counters (`manage.py run_relay`, served on RELAY_METRICS_PORT with the
outbox gauges of `outbox_metrics.py`).

- `orderstream_relay_passes_total`: passes made (each one query for due rows, at least
  every OUTBOX_RELAY_INTERVAL);
- `orderstream_relay_failed_passes_total`: passes that failed as a whole (no producer: no
  broker; or the database);
- `orderstream_relay_published_total`: events the broker confirmed;
- `orderstream_relay_publish_errors_total`: events the broker did not confirm, retried
  later with backoff;
- `orderstream_relay_parked_total`: events the broker refused for good (parked).
"""

from __future__ import annotations

from prometheus_client import Counter

relay_passes = Counter("orderstream_relay_passes", "Relay passes made")
relay_failed_passes = Counter(
    "orderstream_relay_failed_passes", "Relay passes that failed (no broker, no database)"
)
relay_published = Counter("orderstream_relay_published", "Outbox events the broker confirmed")
relay_publish_errors = Counter(
    "orderstream_relay_publish_errors", "Outbox events not confirmed by the broker (retried)"
)
relay_parked = Counter("orderstream_relay_parked", "Outbox events refused for good (parked)")


def relay_pass_counted(*, failed: bool) -> None:
    """One pass was made; `failed`: as a whole."""
    relay_passes.inc()
    if failed:
        relay_failed_passes.inc()


def relay_rows_counted(*, published: int, retried: int, parked: int) -> None:
    """What one pass did with its rows (once its transaction committed)."""
    if published:
        relay_published.inc(published)
    if retried:
        relay_publish_errors.inc(retried)
    if parked:
        relay_parked.inc(parked)
