"""A group consumer whose heartbeat gets no answer still waits in poll() instead of spinning
(orderstream/kafka/driver.py)."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest
from kafka.future import Future

from orderstream.kafka import ensure_topics, make_consumer
from orderstream.kafka.driver import FixedConsumerCoordinator, HeartbeatWaitingCoordinator
from testkit.drivers import kafka_python_only
from testkit.helpers import eventually

pytestmark = kafka_python_only("its coordinator's heartbeat wait")


@pytest.mark.broker
def test_every_consumer_the_project_builds_has_the_heartbeat_waiting_coordinator():
    consumer = make_consumer(group_id=f"test-heartbeat-{uuid.uuid4().hex[:8]}")
    try:
        assert isinstance(consumer._coordinator, HeartbeatWaitingCoordinator)
    finally:
        consumer.close(autocommit=False)
    assert issubclass(FixedConsumerCoordinator, HeartbeatWaitingCoordinator)


@pytest.mark.broker
def test_a_poll_waits_for_fetches_while_the_heartbeat_gets_no_answer(settings):
    """The coordinator stops answering heartbeats (a frozen broker) while fetches still
    come back after their wait. Unfixed, the due heartbeat capped every fetch wait at 0
    and poll() turned hundreds of times a second (each turn a round trip to the client's
    I/O thread): with the broker frozen, every worker and the relay's ACK recorder took a
    quarter of a core from the API on the same host."""
    topic = f"test.heartbeat.{uuid.uuid4().hex[:8]}"
    ensure_topics({topic: 1})
    consumer = make_consumer(
        topic, group_id=f"test-heartbeat-{uuid.uuid4().hex[:8]}", fetch_max_wait_ms=500
    )
    coordinator = consumer._coordinator
    heartbeat = coordinator.heartbeat
    try:
        eventually(
            lambda: consumer.poll(timeout_ms=50) is not None and consumer.assignment(),
            timeout=30,
            message="the consumer joins its group",
        )
        unanswered = Future()  # never completes, like a request to a frozen broker

        async def never_answered():
            await unanswered

        coordinator._send_heartbeat_request = never_answered
        interval = heartbeat.config["heartbeat_interval_ms"] / 1000
        eventually(
            lambda: (
                heartbeat.last_send > heartbeat.last_receive
                and time.monotonic() - heartbeat.last_send > interval
            ),
            timeout=10 * interval,
            message="a heartbeat waits for its answer longer than the heartbeat interval",
        )
        turns = 0
        poll_once = consumer._poll_once

        def counted(*args, **kwargs):
            nonlocal turns
            turns += 1
            return poll_once(*args, **kwargs)

        consumer._poll_once = counted
        # Each fetch of the empty topic is held (fetch_max_wait_ms) or answered at once
        # with nothing: a poll that waits for them turns a few times in 1.5 s.
        began = time.monotonic()
        consumer.poll(timeout_ms=1500)
        assert time.monotonic() - began >= 1.4
        assert turns < 40, f"poll() turned {turns} times in 1.5 s"
    finally:
        consumer.close(autocommit=False)


def coordinator_stub(
    *, due_in: float, sent: float, answered: float, failed, auto_commit=False, joining=False
):
    """What the fixed time_to_next_poll reads of its coordinator."""
    heartbeat = SimpleNamespace(
        last_send=sent,
        last_receive=answered,
        heartbeat_failed=failed,
        config={"heartbeat_interval_ms": 1000},
    )
    # A coordinator without its constructor: just what time_to_next_poll reads.
    coordinator = object.__new__(HeartbeatWaitingCoordinator)
    vars(coordinator).update(
        config={"enable_auto_commit": auto_commit},
        heartbeat=heartbeat,
        time_to_next_heartbeat=lambda: due_in,
        stable=lambda: not joining,
        need_rejoin=lambda: False,
    )
    return coordinator


@pytest.mark.parametrize(
    ("stub", "expected"),
    [
        # sent at 10, no answer yet: wait up to the interval, not 0
        (coordinator_stub(due_in=0, sent=10, answered=5, failed=False), 1.0),
        # answered: the next one is due now (the loop sends it)
        (coordinator_stub(due_in=0, sent=10, answered=10.2, failed=False), 0),
        # failed: due after the retry backoff, as kafka-python says
        (coordinator_stub(due_in=0, sent=10, answered=5, failed=True), 0),
        # never sent (failed is None before the first)
        (coordinator_stub(due_in=0, sent=float("-inf"), answered=float("-inf"), failed=None), 0),
        # not due yet: unchanged
        (coordinator_stub(due_in=0.4, sent=10, answered=5, failed=False), 0.4),
        # with auto-commit: unchanged
        (coordinator_stub(due_in=0, sent=10, answered=5, failed=False, auto_commit=True), 0),
        # joining (the join's answers come through poll()): unchanged
        (coordinator_stub(due_in=0, sent=10, answered=5, failed=False, joining=True), 0),
    ],
)
def test_the_cap_is_the_interval_only_while_the_heartbeat_awaits_its_answer(stub, expected):
    if stub.config["enable_auto_commit"]:
        stub.next_auto_commit_deadline = float("inf")
    assert stub.time_to_next_poll() == expected
