"""The outbox as Prometheus sees it: read from the API database when it scrapes.

`OutboxCollector` runs one query per scrape (both aggregates use a partial index: the
relay's of waiting rows, and `outbox_parked_idx`), shown by the API's `/metrics` and by
the relay's metrics port:

- `orderstream_outbox_depth`: rows waiting to be published (neither published nor parked);
- `orderstream_outbox_oldest_age_seconds`: the age of the oldest of them (0 when none);
- `orderstream_outbox_parked`: rows the broker refused for good, waiting for an operator.

When the database does not answer, the three are left out of that scrape (a WARNING says
why); the rest of the page is served.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connections
from prometheus_client.core import GaugeMetricFamily

from orders_api.models import OutboxEvent

logger = logging.getLogger(__name__)

_TABLE = OutboxEvent._meta.db_table
OUTBOX_STATE_SQL = f"""
SELECT
  (SELECT count(*) FROM {_TABLE} WHERE published_at IS NULL AND parked_at IS NULL),
  (SELECT extract(epoch FROM now() - min(created_at)) FROM {_TABLE}
    WHERE published_at IS NULL AND parked_at IS NULL),
  (SELECT count(*) FROM {_TABLE} WHERE parked_at IS NOT NULL AND published_at IS NULL)
"""


def outbox_state() -> tuple[int, float, int]:
    """(waiting rows, age in seconds of the oldest of them or 0, parked rows)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(OUTBOX_STATE_SQL)
        depth, oldest_age, parked = cursor.fetchone()
    return depth, max(float(oldest_age or 0), 0.0), parked


class OutboxCollector:
    """The outbox gauges, read at each scrape (see the module)."""

    def collect(self):
        try:
            depth, oldest_age, parked = outbox_state()
        except DatabaseError as exc:
            logger.warning("metrics: could not read the outbox: %s", exc)
            return
        yield GaugeMetricFamily(
            "orderstream_outbox_depth", "Outbox rows waiting to be published", value=depth
        )
        yield GaugeMetricFamily(
            "orderstream_outbox_oldest_age_seconds",
            "Age of the oldest outbox row waiting to be published (0 when none waits)",
            value=oldest_age,
        )
        yield GaugeMetricFamily(
            "orderstream_outbox_parked",
            "Outbox rows the broker refused for good, waiting for an operator",
            value=parked,
        )
