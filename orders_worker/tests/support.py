"""What several worker test modules share: plain records and a recording producer for
the handler without a broker, states and events for the rules, dead letters on record,
a worker running in a thread, the worker's logged errors."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from orders_worker.dead_letters import Rejection, dead_letters_record
from orders_worker.handler import HandlerConfig
from orders_worker.models import DeadLetter, DeadLetterKind
from orders_worker.rules import OrderState
from orders_worker.worker import OrderWorker
from orderstream.messages import OrderEvent
from orderstream.statuses import ProcessedStatus
from orderstream.timestamps import utc_now
from testkit.factories import OrderEventFactory
from testkit.helpers import Record
from testkit.running import running

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EARLIER = datetime(2026, 1, 1, tzinfo=UTC)

CONFIG = HandlerConfig(ack_topic="acks", dlq_topic="dead-letters", result_ttl=60)


def records_of(*messages) -> list[Record]:
    """Records of the events topic, one per event (or raw bytes), at offsets 0, 1, ..."""
    return [
        Record("events", 0, offset, m.key, m.to_bytes())
        if isinstance(m, OrderEvent)
        else Record("events", 0, offset, b"raw", m)
        for offset, m in enumerate(messages)
    ]


class RecordingProducer:
    """Keeps what the loop produces; every send succeeds."""

    class Sent:
        def failed(self) -> bool:
            return False

    def __init__(self, partitions: dict[str, set[int]] | None = None):
        self.sent = []
        self.partitions = partitions or {}
        self.partitions_sent_to: list[int | None] = []

    def send(self, topic, value=None, key=None, headers=None, partition=None):
        self.sent.append((topic, key, value, headers))
        self.partitions_sent_to.append(partition)
        return self.Sent()

    def partitions_for(self, topic):
        return self.partitions.get(topic)

    def flush(self, timeout=None):
        pass

    def statuses(self) -> dict[str, str]:
        return {
            json.loads(value)["order_id"]: json.loads(value)["status"]
            for topic, _, value, _ in self.sent
            if topic == "acks"
        }

    def errors(self) -> list[bytes]:
        return [dict(headers)["error"] for topic, *_, headers in self.sent if topic == "dlq"]


def stored_state(**changes) -> OrderState:
    """A stored order (done, version 2, last changed EARLIER), with `changes`."""
    state = OrderState(
        order_id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        amount=Decimal("10.00"),
        status=ProcessedStatus.DONE,
        payload={"id": "old", "amount": 10},
        created_at=EARLIER,
        updated_at=EARLIER,
        bucket=1,
        version=2,
        last_event_id=str(uuid.uuid4()),
        last_status="updated",
        processed_at=EARLIER,
    )
    return replace(state, **changes)


def event_for(state: OrderState | None = None, **fields) -> OrderEvent:
    """An event of `state`'s order (a new order without one)."""
    if state is not None:
        fields.setdefault("order_id", state.order_id)
        fields.setdefault("user_id", state.user_id)
    return OrderEventFactory(**fields)


def a_state(version: int, **changes) -> OrderState:
    """An order's state at `version` (its amount = version), as the Redis result stores it."""
    values = {
        "order_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "amount": Decimal(version),
        "status": "done",
        "payload": {"version": 0, "note": "заметка"},  # a misleading key inside the payload
        "created_at": NOW,
        "updated_at": NOW,
        "bucket": 1,
        "version": version,
        "last_event_id": str(uuid.uuid4()),
        "last_status": "updated",
        "processed_at": NOW,
    }
    return OrderState(**(values | changes))


def recorded(*rejected: tuple[bytes, str, DeadLetterKind]) -> list[DeadLetter]:
    """One dead letter per (value, error, kind), at offsets 0, 1, ...; key = `key-<offset>`."""
    rejections = [
        Rejection(Record("orders.events", 0, offset, f"key-{offset}".encode(), value), error, kind)
        for offset, (value, error, kind) in enumerate(rejected)
    ]
    dead_letters_record(rejections=rejections, failed_at=utc_now())
    return list(DeadLetter.objects.using("worker").order_by("source_offset"))


def worker_running(worker: OrderWorker):
    """`worker` consuming in a thread, holding partitions when this yields."""
    return running(worker, ready=worker.partitions, what="worker")


def worker_errors(caplog) -> list[str]:
    """Errors the worker logged: a database outage must never take the path of an
    unexpected failure (a batch replayed one message at a time, messages dead-lettered)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("orders_worker") and r.levelno >= logging.ERROR
    ]
