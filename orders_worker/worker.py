"""The order worker: the generic batch loop (`orderstream/kafka/batch_loop.py`) with the
order handler (`handler.py`, whose periodic housekeeping purges old event ids and dead
letters), configured from Django settings.

`manage.py run_worker` builds an `OrderWorker(WorkerConfig.from_settings(...))` and runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from orders_worker.handler import HandlerConfig, OrderEventsHandler
from orders_worker.metrics import worker_loop_metrics
from orderstream.batch_pacing import pacing_from_settings
from orderstream.kafka import (
    AuthorizationError,
    InvalidReplicationFactorError,
    PolicyViolationError,
    one_fetch_timeout_ms,
)
from orderstream.kafka.batch_loop import BatchLoop, LoopConfig
from orderstream.kafka.loop_metrics import LoopMetrics
from orderstream.kafka.topics import ensure_topics

# What a broker answers when it will not create a topic: no retry helps.
TOPIC_REFUSALS = (AuthorizationError, PolicyViolationError, InvalidReplicationFactorError)


class TopicsUnavailable(RuntimeError):
    """The worker's topics are missing and cannot be created: it does not start."""


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
        use would refuse every record to them). A broker that refuses to create them
        (authorization, policy) stops the worker with one line naming them
        (`TopicsUnavailable`); a broker that does not answer is retried with backoff."""
        layout = {
            self.config.ack_topic: settings.ORDERS_EVENTS_PARTITIONS,
            self.config.dlq_topic: 1,
        }
        try:
            ensure_topics(layout)
        except TOPIC_REFUSALS as exc:
            raise TopicsUnavailable(
                f"the worker's topics {' and '.join(layout)} are missing and the broker "
                f"refused to create them ({type(exc).__name__}: {exc}): create them, or let "
                "the worker's Kafka user create topics"
            ) from exc
        return super()._build_producer()
