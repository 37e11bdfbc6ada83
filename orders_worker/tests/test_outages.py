"""The worker while its PostgreSQL is unreachable: retried, nothing skipped or repeated."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from orders_worker.models import ProcessedEvent, ProcessedOrder
from orders_worker.worker import OrderWorker, WorkerConfig
from testkit.factories import OrderEventFactory
from testkit.helpers import eventually
from testkit.results import stored_result
from testkit.topics import committed_offsets

from .support import worker_errors

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True, databases=["default", "worker"]),
]


def test_postgresql_unreachable_is_retried_without_commit_ack_or_skip_and_recovers_once(
    unique_topics,
    worker_db_outage,
    running_worker,
    send_events,
    ack_reader,
    caplog,
):
    """The worker's connection is cut and new ones refused for longer than
    max.poll.interval.ms (6 s in the tests): the batch is retried with no ACK and no offset
    commit while the worker keeps its place in the group; when PostgreSQL returns the same
    event is applied exactly once, acknowledged once, committed, and the next event flows."""
    group, topic = unique_topics.WORKER_GROUP, unique_topics.ORDERS_EVENTS_TOPIC
    events = ProcessedEvent.objects.using("worker")
    direct_port = str(connections["worker"].settings_dict["PORT"])

    # Warm up: the worker holds an open connection through the proxy.
    before = OrderEventFactory()
    send_events(before)
    ack_reader.read_until(lambda recs: len(recs) >= 1, timeout=10)
    eventually(lambda: running_worker.stats.processed == 1, timeout=10)
    assert worker_db_outage.accepted >= 1, "the worker thread did not connect via the proxy"
    assert committed_offsets(group, topic) == 1

    worker_db_outage.pause()  # cut the open connection, refuse new ones
    retries = running_worker.stats.retries
    during = OrderEventFactory()
    send_events(during)
    # Past the backoff cap (0.2, 0.4, 0.8, then 1 s) and past max.poll.interval.ms,
    # watching for an ACK all along.
    outage_started = time.monotonic()
    max_poll_interval = unique_topics.KAFKA_MAX_POLL_INTERVAL_MS / 1000

    def retried_past_the_poll_interval() -> bool:
        assert len(ack_reader.read_for(0.1)) == 1, "an ACK while PostgreSQL was away"
        return (
            running_worker.stats.retries >= retries + 7
            and time.monotonic() - outage_started > max_poll_interval
        )

    eventually(
        retried_past_the_poll_interval,
        timeout=max_poll_interval + 15,
        interval=0,
        message="the worker to retry the database step past max.poll.interval.ms",
    )
    assert running_worker.stats.processed == 1
    assert running_worker.stats.rejected == 0
    assert not worker_errors(caplog)
    assert "could not apply the batch to PostgreSQL" in caplog.text
    assert not worker_errors(caplog)
    assert committed_offsets(group, topic) == 1
    # The test's own connection still goes straight to PostgreSQL.
    assert str(connections["worker"].settings_dict["PORT"]) == direct_port
    assert not events.filter(event_id=during.event_id).exists()
    assert not ProcessedOrder.objects.using("worker").filter(order_id=during.order_id).exists()
    assert stored_result(order_id=during.order_id) is None

    accepted = worker_db_outage.accepted
    worker_db_outage.resume()
    ack_reader.read_until(lambda recs: len(recs) >= 2, timeout=10)
    eventually(lambda: running_worker.stats.processed == 2, timeout=10)
    assert worker_db_outage.accepted > accepted  # reconnected through the proxy
    assert committed_offsets(group, topic) == 2
    assert events.filter(event_id=during.event_id).count() == 1
    row = ProcessedOrder.objects.using("worker").get(order_id=during.order_id)
    assert (row.version, row.last_status) == (1, "created")
    assert stored_result(order_id=during.order_id).status == "created"

    after = OrderEventFactory()
    send_events(after)
    ack_reader.read_until(lambda recs: len(recs) >= 3, timeout=10)
    eventually(lambda: running_worker.stats.processed == 3, timeout=10)
    assert ack_reader.statuses_by_event() == {
        before.event_id: ["created"],
        during.event_id: ["created"],
        after.event_id: ["created"],
    }
    assert committed_offsets(group, topic) == 3
    assert (
        events.filter(event_id__in=[before.event_id, during.event_id, after.event_id]).count() == 3
    )
    assert running_worker.stats.rejected == 0
    assert not worker_errors(caplog)


def test_a_worker_retrying_an_outage_takes_part_in_a_rebalance(
    unique_topics, redis_outage, running_worker, send_events, ack_reader
):
    """While the first worker backs off from a Redis outage, a second one joins: the group
    settles within seconds (the retrying member answers the rebalance from inside poll()),
    both hold partitions, and once Redis is back the waiting event is applied and ACKed."""
    redis_outage.pause()
    stuck = OrderEventFactory()
    send_events(stuck)
    eventually(lambda: running_worker.stats.retries >= 2, message="the first worker retries")
    second = OrderWorker(WorkerConfig.from_settings(poll_timeout_ms=100, backoff_max=1.0))
    thread = threading.Thread(target=second.run, daemon=True)
    thread.start()
    partitions = set(range(unique_topics.ORDERS_EVENTS_PARTITIONS))
    try:
        eventually(
            lambda: (
                running_worker.partitions()
                and second.partitions()
                and running_worker.partitions() | second.partitions() == partitions
            ),
            timeout=20,
            message="both workers hold partitions while the first one retries",
        )
        redis_outage.resume()
        ack_reader.read_until(
            lambda records: stuck.event_id in ack_reader.statuses_by_event(), timeout=30
        )
        assert set(ack_reader.statuses_by_event()[stuck.event_id]) == {"created"}
        assert ProcessedEvent.objects.using("worker").filter(event_id=stuck.event_id).count() == 1
    finally:
        second.stop()
        thread.join(30)
