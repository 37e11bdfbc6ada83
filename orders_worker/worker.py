"""The order worker: the generic batch loop (`orderstream/kafka/batch_loop.py`) with the
order handler (`handler.py`, whose periodic housekeeping purges old event ids and dead
letters), configured from Django settings.

`manage.py run_worker` builds an `OrderWorker(WorkerConfig.from_settings(...))` and runs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from orders_worker.handler import HandlerConfig, OrderEventsHandler
from orders_worker.metrics import worker_loop_metrics
from orderstream.batch_pacing import pacing_from_settings
from orderstream.kafka import one_fetch_timeout_ms
from orderstream.kafka.batch_loop import BatchLoop, LoopConfig
from orderstream.kafka.loop_metrics import LoopMetrics
from orderstream.kafka.topics import ensure_topics

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class WorkerConfig(LoopConfig, HandlerConfig):
    """Everything the worker needs; `from_settings` fills it from Django settings."""

    metrics: LoopMetrics = field(default_factory=worker_loop_metrics)

    @classmethod
    def from_settings(cls, **overrides) -> WorkerConfig:
        """The settings' values; `overrides` that are not None win."""
        values = {
            "events_topic": settings.ORDERS_EVENTS_TOPIC,
            "ack_topic": settings.ORDERS_ACK_TOPIC,
            "dlq_topic": settings.ORDERS_DLQ_TOPIC,
            "group": settings.WORKER_GROUP,
            "batch_size": settings.WORKER_BATCH_SIZE,
            "result_ttl": settings.ORDER_RESULT_TTL,
            "stats_interval": settings.WORKER_STATS_INTERVAL,
            "ack_linger_ms": settings.WORKER_ACK_LINGER_MS,
            "event_retention_seconds": settings.WORKER_EVENT_RETENTION_SECONDS,
            "dead_letter_retention_seconds": settings.DEAD_LETTER_RETENTION_SECONDS,
            "max_poll_interval_ms": settings.KAFKA_MAX_POLL_INTERVAL_MS,
            "heartbeat_file": settings.WORKER_HEARTBEAT_FILE,
            "idle_poll_ms": settings.WORKER_IDLE_POLL_MS,
            "idle_poll_timeout_ms": one_fetch_timeout_ms(),
            "unassigned_warn_seconds": settings.WORKER_UNASSIGNED_WARN_SECONDS,
            "unassigned_max_seconds": settings.WORKER_UNASSIGNED_MAX_SECONDS,
            "pacing": pacing_from_settings(),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class OrderWorker(BatchLoop):
    """One member of the worker group; `run()` loops until `stop()` or `max_messages`.

    `clock` is the monotonic clock that decides when the worker is idle (see
    `BatchLoop._pause_when_idle`): tests move it on instead of waiting.
    """

    def __init__(self, config: WorkerConfig, *, clock: Callable[[], float] = time.monotonic):
        super().__init__(config, OrderEventsHandler(config), clock=clock)

    def _build_producer(self):
        """The producer, once the topics it writes to exist: the ACK and dead-letter
        topics are created when missing (a broker that does not create topics on first
        use, as the Go original's compose file left them, would refuse every record).
        A failure is logged once per attempt, naming the topics; the attempts back off."""
        layout = {
            self.config.ack_topic: settings.ORDERS_EVENTS_PARTITIONS,
            self.config.dlq_topic: 1,
        }
        try:
            ensure_topics(layout)
        except Exception as exc:
            logger.error(
                "the worker's topics %s are missing and could not be created (%s): "
                "create them, or let the worker's Kafka user create topics",
                " and ".join(layout),
                exc,
            )
            raise
        return super()._build_producer()
