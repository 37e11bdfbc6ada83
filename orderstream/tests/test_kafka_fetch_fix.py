"""kafka-python 3.0.12's fetcher and a leader that left the cluster's metadata
(`KnownLeaderFetcher`, orderstream/kafka/driver.py).

A broker killed in a cluster is fenced: the metadata lists it no more while a consumer's
view of a partition still names it leader. kafka-python then raised UnknownBrokerIdError
out of `poll()` after marking the node as fetching, a mark nothing cleared: when the node
came back and led a partition again, that partition was never fetched (found by
test_cluster_faults.py: events never handled, the worker's lag 0). The test takes the
leader out of the consumer's metadata and closes its connection, as a fence does.
"""

from __future__ import annotations

import uuid

import kafka.consumer.group as consumer_group
import pytest

from orderstream.kafka import TopicPartition, ensure_topics, make_consumer, make_producer
from orderstream.kafka.driver import KnownLeaderFetcher
from testkit.drivers import kafka_python_only
from testkit.helpers import eventually

pytestmark = [kafka_python_only("its fetcher's fix"), pytest.mark.broker]


def read_value(consumer, value: bytes) -> bool:
    """Poll once; True when `value` was among the records read."""
    batches = consumer.poll(timeout_ms=200)
    return any(record.value == value for batch in batches.values() for record in batch)


def test_every_consumer_the_project_builds_has_the_fixed_fetcher(kafka_bootstrap):
    assert consumer_group.Fetcher is KnownLeaderFetcher
    consumer = make_consumer(group_id=None, client_id="test-fetch-fix")
    try:
        assert isinstance(consumer._fetcher, KnownLeaderFetcher)
    finally:
        consumer.close()


def test_a_partition_whose_leader_left_the_metadata_is_fetched_once_it_is_back(
    kafka_bootstrap, monkeypatch
):
    topic = f"test.fetch.{uuid.uuid4().hex[:8]}"
    ensure_topics({topic: 1})
    producer = make_producer()
    consumer = make_consumer(group_id=None, client_id="test-fetch-fix")
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        producer.send(topic, b"before").get(timeout=30)
        eventually(lambda: read_value(consumer, b"before"), message="the first record read")

        cluster = consumer._manager.cluster
        leader = cluster.leader_for_partition(tp)
        known = cluster.broker_metadata
        monkeypatch.setattr(
            cluster, "broker_metadata", lambda node: None if node == leader else known(node)
        )
        consumer._manager.close(leader)
        eventually(lambda: leader not in consumer._manager._conns, message="the connection closed")
        consumer.poll(timeout_ms=500)  # the fetch to the fenced leader: no error
        consumer.poll(timeout_ms=500)

        monkeypatch.undo()  # the leader is listed again
        producer.send(topic, b"after").get(timeout=30)
        eventually(
            lambda: read_value(consumer, b"after"),
            timeout=20,
            message="the partition fetched again from its leader",
        )
    finally:
        consumer.close()
        producer.close(timeout=5)
