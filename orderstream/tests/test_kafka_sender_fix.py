"""A producer whose broker cannot take a ready batch yet waits for the network instead of
spinning (orderstream/kafka/driver.py)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import kafka.producer.sender as producer_sender
import pytest
from kafka import TopicPartition

from orderstream.kafka import ensure_topics, make_producer
from orderstream.kafka.driver import NetworkWaitingSender, SenderClientView, not_ready_delay_ms
from testkit.drivers import kafka_python_only

pytestmark = kafka_python_only("its producer sender's wait")


@pytest.mark.broker
def test_every_producer_the_project_builds_has_the_network_waiting_sender(settings):
    producer = make_producer()
    try:
        assert isinstance(producer._sender, NetworkWaitingSender)
        assert isinstance(producer._sender._client, SenderClientView)
    finally:
        producer.close(timeout=5)


def test_the_sender_reads_connection_delay_once_the_view_answers_for():
    """The view answers `connection_delay` alone: kafka-python's sender must read it in
    one place only, the not-ready wait (another use would get milliseconds or infinity)."""
    source = Path(producer_sender.__file__).read_text()
    assert source.count("connection_delay(") == 1
    assert "node_delay_ms = self._client.connection_delay(node)" in source


@pytest.mark.parametrize(("backoff_seconds", "expected_ms"), [(0.25, 250), (0, float("inf"))])
def test_a_node_in_backoff_is_looked_at_after_it_else_when_the_network_says(
    backoff_seconds, expected_ms
):
    client = SimpleNamespace(connection_delay=lambda node_id: backoff_seconds)
    assert not_ready_delay_ms(client, 0) == expected_ms


@pytest.mark.broker
def test_a_ready_batch_for_a_busy_connection_does_not_spin_the_sender(settings):
    """The connection to the partition's leader is connected but takes no request (as at
    its in-flight maximum while the broker answers nothing, a frozen broker). Unfixed, the
    sender looked again at once, turning thousands of times a second: the relay's I/O
    thread took a core's eighth from the API during a broker freeze."""
    topic = f"test.sender.{uuid.uuid4().hex[:8]}"
    ensure_topics({topic: 1})
    producer = make_producer()
    sender = producer._sender
    try:
        producer.send(topic, b"first").get(timeout=30)  # connected to the leader
        # the leader's connection (on a cluster the producer holds others too)
        leader = producer._metadata.leader_for_partition(TopicPartition(topic, 0))
        conn = sender._client._manager._conns[leader]
        assert conn.connected
        turns = 0
        run_once = sender.run_once

        def counted():
            nonlocal turns
            turns += 1
            run_once()

        conn.pause("test")
        sender.run_once = counted
        future = producer.send(topic, b"second")
        time.sleep(1.5)
        assert turns < 40, f"the sender turned {turns} times in 1.5 s"
        assert not future.is_done
        conn.unpause("test")
        sender.wakeup()
        future.get(timeout=30)  # sent once the connection takes requests again
    finally:
        producer.close(timeout=5)
