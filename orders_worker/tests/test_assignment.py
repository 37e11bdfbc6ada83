"""A worker the group leaves without partitions says so, and its liveness check fails (the
watch itself: orderstream/tests/test_kafka_assignment.py)."""

from __future__ import annotations

import logging
import threading
import uuid

import pytest

from orders_worker.worker import OrderWorker, WorkerConfig
from orderstream.heartbeat import heartbeat_age
from orderstream.kafka import ensure_topics
from testkit.helpers import eventually


@pytest.fixture
def one_partition_topics(settings):
    """Topics of this test's own whose events topic has a single partition."""
    suffix = uuid.uuid4().hex[:8]
    settings.ORDERS_EVENTS_TOPIC = f"test.orders.events.one.{suffix}"
    settings.ORDERS_ACK_TOPIC = f"test.orders.ack.one.{suffix}"
    settings.ORDERS_DLQ_TOPIC = f"test.orders.dlq.one.{suffix}"
    settings.ORDERS_EVENTS_PARTITIONS = 1
    settings.WORKER_GROUP = f"test-one-partition-{suffix}"
    ensure_topics()
    return settings


@pytest.mark.broker
@pytest.mark.django_db(transaction=True, databases=["default", "worker"])
def test_a_worker_without_partitions_warns_and_stops_beating_until_it_gets_one(
    one_partition_topics, tmp_path, caplog
):
    """Two workers, one partition: the one that holds none warns at every stats interval
    and lets its heartbeat go stale; once the holder stops, the other takes the partition
    and beats again."""
    caplog.set_level(logging.INFO, logger="orderstream.kafka")
    workers = {
        name: OrderWorker(
            WorkerConfig.from_settings(
                poll_timeout_ms=100,
                stats_interval=0.3,
                heartbeat_file=str(tmp_path / f"{name}.alive"),
                unassigned_warn_seconds=0.5,
                unassigned_max_seconds=1.5,
            )
        )
        for name in ("first", "second")
    }
    threads = [threading.Thread(target=w.run, name=n, daemon=True) for n, w in workers.items()]
    for thread in threads:
        thread.start()
    try:

        def settled() -> tuple[str, str] | None:
            """(holder, idle) once both were given an assignment and one holds the
            partition (before the second joins, the first may hold it for a moment)."""
            held = [name for name, worker in workers.items() if worker.partitions() == {0}]
            empty = [
                name
                for name, worker in workers.items()
                if worker.assigned.is_set() and not worker.partitions()
            ]
            return (held[0], empty[0]) if len(held) == 1 and len(empty) == 1 else None

        holding, idle = eventually(settled, timeout=30, message="one worker holds the partition")

        def warnings_of(name: str) -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.threadName == name and "holding no partitions" in r.getMessage()
            ]

        eventually(lambda: len(warnings_of(idle)) >= 2, timeout=20, message="warned twice")
        assert one_partition_topics.WORKER_GROUP in warnings_of(idle)[0]
        eventually(
            lambda: (heartbeat_age(tmp_path / f"{idle}.alive") or 0) > 1.5,
            timeout=10,
            message="the idle worker's heartbeat went stale",
        )
        assert workers[idle].partitions() == set()

        workers[holding].stop()
        eventually(lambda: workers[idle].partitions() == {0}, timeout=30, message="rebalanced")
        eventually(
            lambda: heartbeat_age(tmp_path / f"{idle}.alive") < 1.5,
            timeout=10,
            message="the heartbeat is back",
        )
    finally:
        for worker in workers.values():
            worker.stop()
        for thread in threads:
            thread.join(30)
