"""kafka-python's group join keeps an answer that came while the application was outside
poll() (the fix in orderstream/kafka/driver.py)."""

from __future__ import annotations

import threading
import time
import uuid

import kafka.coordinator.base as coordinator_base
import pytest

from orderstream.kafka import ensure_topics, make_consumer
from orderstream.kafka.driver import keep_finished_joins
from testkit.drivers import kafka_python_only
from testkit.helpers import eventually

pytestmark = kafka_python_only("its group coordinator's join fix")


def test_the_fix_is_applied_once_the_project_builds_clients():
    keep_finished_joins()  # a second call changes nothing
    method = coordinator_base.BaseCoordinator.join_group_async
    assert method.keeps_finished_joins
    assert "is_done" not in method.__code__.co_names


@pytest.mark.broker
def test_members_that_look_in_between_naps_all_get_partitions_when_one_joins(settings):
    """Three plain consumers of one group that poll 20 ms, then nap 100 ms (most join
    answers arrive during a nap). Unfixed, on Tansu the group never settled: every answer
    was thrown away and the join sent again."""
    topic = f"test.join.{uuid.uuid4().hex[:8]}"
    ensure_topics({topic: 6})
    group = f"test-join-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    held: dict[int, set[int]] = {}

    def member(n: int) -> None:
        consumer = make_consumer(topic, group_id=group, fetch_max_wait_ms=10)
        try:
            while not stop.is_set():
                consumer.poll(timeout_ms=20)
                held[n] = {tp.partition for tp in consumer.assignment()}
                time.sleep(0.1)
        finally:
            consumer.close(autocommit=False)

    threads = [threading.Thread(target=member, args=(n,), daemon=True) for n in range(3)]
    try:
        for thread in threads[:2]:
            thread.start()
        eventually(
            lambda: set().union(*held.values()) == set(range(6)), timeout=30, message="two hold all"
        )
        time.sleep(1)
        threads[2].start()
        eventually(
            lambda: (
                len(held) == 3
                and all(held.values())
                and sorted(p for ps in held.values() for p in ps) == list(range(6))
            ),
            timeout=20,
            message="the three members share every partition once",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
