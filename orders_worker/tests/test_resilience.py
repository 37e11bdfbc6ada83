"""The worker under failure: killed mid-batch and restarted, and two workers in a group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
from django.conf import settings

from orders_worker.models import ProcessedEvent, ProcessedOrder
from orders_worker.worker import OrderWorker, WorkerConfig
from orderstream.messages import OrderAck
from testkit.factories import OrderEventFactory
from testkit.helpers import eventually
from testkit.results import stored_result

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True, databases=["default", "worker"]),
]


def order_histories(count: int) -> tuple[list, dict]:
    """`count` orders, each created, updated, and every third deleted; the event list in
    order and each order's expected final (status, amount, version)."""
    events, expected = [], {}
    for n in range(count):
        created = OrderEventFactory(payload={"id": n, "amount": n})
        updated = replace(
            created,
            event_id=str(uuid.uuid4()),
            status="updated",
            version=2,
            payload={"id": n, "items": [{"price": n, "qty": 2}]},
        )
        events += [created, updated]
        expected[created.order_id] = ("done", Decimal(2 * n), 2)
        if n % 3 == 0:
            events.append(replace(updated, event_id=str(uuid.uuid4()), status="deleted", version=3))
            expected[created.order_id] = ("deleted", Decimal(2 * n), 3)
    return events, expected


def expected_ack(event) -> str:
    return {"created": "created", "updated": "updated", "deleted": "deleted"}[event.status]


def assert_applied_exactly(events, expected, ack_reader) -> None:
    """Every order in its final state, every event recorded once and acknowledged with
    the status of its first (and only) application, however often it was delivered."""
    rows = {
        str(r.order_id): (r.status, r.amount, r.version)
        for r in ProcessedOrder.objects.using("worker").filter(order_id__in=expected)
    }
    assert rows == expected
    assert ProcessedEvent.objects.using("worker").count() == len(events)
    statuses: dict[str, set[str]] = {}
    for ack in ack_reader.acks():
        statuses.setdefault(ack.event_id, set()).add(ack.status)
    assert statuses == {e.event_id: {expected_ack(e)} for e in events}
    sample = next(iter(expected))
    assert stored_result(order_id=sample).order_status == expected[sample][0]


def all_acknowledged(events):
    """A `read_until` condition: every event has at least one ACK."""
    wanted = {e.event_id for e in events}
    return lambda recs: wanted <= {OrderAck.from_bytes(r.value).event_id for r in recs}


def worker_process(group: str) -> subprocess.Popen:
    """`manage.py run_worker` in a child process on this test's databases and topics."""
    db = settings.DATABASES["worker"]
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "orderstream.settings.test",
        "WORKER_POSTGRES_DSN": (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}"
            f"/{db['NAME']}"
        ),
        "KAFKA_BROKERS": ",".join(settings.KAFKA_BROKERS),
        "TEST_ORDERS_EVENTS_TOPIC": settings.ORDERS_EVENTS_TOPIC,
        "TEST_ORDERS_ACK_TOPIC": settings.ORDERS_ACK_TOPIC,
        "TEST_ORDERS_DLQ_TOPIC": settings.ORDERS_DLQ_TOPIC,
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--group", group, "--batch-size", "50"],
        cwd=settings.BASE_DIR,
        env=env,
        # A file, not a pipe: a pipe read only at the end fills and blocks the worker once
        # it has logged 64 KB (seen with LOG_LEVELS=kafka.coordinator=DEBUG passed on).
        stdout=tempfile.TemporaryFile(),
        stderr=subprocess.STDOUT,
    )


def output_of(process: subprocess.Popen) -> str:
    """What a `worker_process` wrote."""
    process.stdout.seek(0)
    return process.stdout.read().decode(errors="replace")


def test_a_worker_killed_mid_stream_and_restarted_loses_nothing_and_applies_nothing_twice(
    unique_topics, send_events, ack_reader
):
    events, expected = order_histories(600)
    send_events(*events)
    applied = ProcessedEvent.objects.using("worker")

    first = worker_process(unique_topics.WORKER_GROUP)
    try:
        eventually(
            lambda: applied.count() >= 200,
            timeout=60,
            message="the first worker to apply 200 events",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    at_kill = applied.count()
    assert at_kill < len(events), "the worker finished before it was killed"

    second = worker_process(unique_topics.WORKER_GROUP)
    try:
        eventually(
            lambda: applied.count() >= len(events),
            timeout=60,
            message="the restarted worker to catch up",
        )
        ack_reader.read_until(all_acknowledged(events), timeout=30)
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    finally:
        second.kill()
    assert second.returncode == 0, output_of(second)  # stopped through its shutdown, not killed
    assert_applied_exactly(events, expected, ack_reader)


def test_two_workers_in_one_group_share_the_partitions_and_apply_each_event_once(
    unique_topics, send_events, ack_reader
):
    workers = [
        OrderWorker(WorkerConfig.from_settings(poll_timeout_ms=100, batch_size=50))
        for _ in range(2)
    ]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        eventually(
            lambda: (
                all(w.partitions() for w in workers)
                and workers[0].partitions() | workers[1].partitions() == set(range(4))
            ),
            timeout=30,
            message="both workers to hold partitions",
        )
        assert not workers[0].partitions() & workers[1].partitions()
        events, expected = order_histories(300)
        send_events(*events)
        ack_reader.read_until(all_acknowledged(events), timeout=60)
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert all(w.stats.processed > 0 for w in workers)
    assert_applied_exactly(events, expected, ack_reader)


@pytest.mark.skipif(
    settings.KAFKA_CLIENT == "confluent",
    reason="eager rebalancing only: with cooperative-sticky (confluent) a member that leaves"
    " revokes nothing of the others, so the second worker's revoke this test stops it in"
    " never comes",
)
def test_a_worker_stopped_while_its_group_rebalances_leaves_its_partitions_to_the_next(
    unique_topics,
):
    """A member that stops while its own JoinGroup is in flight: its LeaveGroup must not
    overtake the join (a broker answers the join first, as it handles one request per
    connection at a time). Seen on Tansu: the member that left became the leader of the
    next generation, never sent its assignment, and no later worker ever got a partition."""
    config = WorkerConfig.from_settings(poll_timeout_ms=100, batch_size=50)
    first, second = OrderWorker(config), OrderWorker(config)
    threads = {w: threading.Thread(target=w.run, daemon=True) for w in (first, second)}
    for thread in threads.values():
        thread.start()
    eventually(
        lambda: first.partitions() and second.partitions(),
        timeout=30,
        message="both workers to hold partitions",
    )
    revoked = second.member.on_partitions_revoked

    def stop_once_revoked(partitions):
        revoked(partitions)
        second.stop()  # the join that follows the revoke is in flight when the loop ends

    second.member.on_partitions_revoked = stop_once_revoked
    first.stop()
    for thread in threads.values():
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads.values())

    successor = OrderWorker(config)
    thread = threading.Thread(target=successor.run, daemon=True)
    thread.start()
    try:
        eventually(
            lambda: successor.partitions() == set(range(4)),
            timeout=30,
            message="the next worker to hold every partition",
        )
    finally:
        successor.stop()
        thread.join(timeout=30)
