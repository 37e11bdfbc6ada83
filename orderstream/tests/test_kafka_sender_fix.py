"""A producer whose broker cannot take a ready batch yet waits for the network instead of
spinning (orderstream/kafka/driver.py)."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import kafka
import kafka.producer.sender as producer_sender
import pytest

from orderstream.kafka import ensure_topics, make_producer
from orderstream.kafka.driver import not_ready_delay_ms, wait_for_unready_nodes
from testkit.drivers import kafka_python_only

pytestmark = kafka_python_only("its producer sender's wait")


def test_the_fix_is_applied_once_the_project_builds_clients():
    wait_for_unready_nodes()  # a second call changes nothing
    method = producer_sender.Sender._send_producer_data
    assert method.waits_for_unready_nodes
    assert "not_ready_delay_ms" in method.__code__.co_names


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
        [conn] = [c for c in sender._client._manager._conns.values() if c.connected]
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


@pytest.mark.parametrize(
    ("version", "method", "refusal"),
    [
        ("9.9.9", None, "fixes kafka-python 3.0.12, found 9.9.9"),
        ("3.0.12", lambda self, now=None: 0, "not the one this fix knows"),
    ],
)
def test_another_kafka_python_stops_the_import(monkeypatch, version, method, refusal):
    original = producer_sender.Sender._send_producer_data.__wrapped__
    monkeypatch.setattr(producer_sender.Sender, "_send_producer_data", method or original)
    monkeypatch.setattr(kafka, "__version__", version)
    with pytest.raises(RuntimeError, match=refusal):
        wait_for_unready_nodes()
