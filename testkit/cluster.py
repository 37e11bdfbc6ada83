"""The session's Apache Kafka cluster as the tests see it: its partitions, their leaders
and replicas, the quorum's leader, described through kafka-python's admin client (the
admin port creates topics; describing them is the tests' own need); waiting until it is
whole again after a fault."""

from __future__ import annotations

import time
from collections import Counter
from typing import NamedTuple

from django.conf import settings

from orderstream.kafka import ConfigResource, ConfigResourceType, KafkaAdminClient, KafkaError
from testkit.helpers import eventually


class Partition(NamedTuple):
    """One partition of a topic: its leader (-1: none), its replicas and those in sync."""

    topic: str
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]


def admin_client() -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BROKERS,
        client_id="tests-cluster",
        request_timeout_ms=5000,
    )


def describe_partitions(topic: str) -> list[Partition]:
    """The partitions of `topic`, by number."""
    admin = admin_client()
    try:
        described = admin.describe_topics([topic])
    finally:
        admin.close()
    return sorted(
        Partition(topic, p["partition_index"], p["leader_id"], p["replica_nodes"], p["isr_nodes"])
        for t in described
        if t["name"] == topic
        for p in t["partitions"]
    )


def topic_config(topic: str, name: str) -> str | None:
    """The value of the topic's setting `name` (its own, or the broker's default)."""
    admin = admin_client()
    try:
        wanted = ConfigResource(ConfigResourceType.TOPIC, topic)
        described = admin.describe_configs([wanted], config_filter="all")
    finally:
        admin.close()
    entry = described.get("topic", {}).get(topic, {}).get(name) or {}
    return entry.get("value")


def quorum_leader() -> int:
    """The node id of the KRaft quorum's leader: the active controller (DescribeQuorum)."""
    admin = admin_client()
    try:
        quorum = admin.describe_metadata_quorum()
    finally:
        admin.close()
    return quorum["topics"][0]["partitions"][0]["leader_id"]


def busiest_leader(topic: str) -> tuple[int, int]:
    """(node id, partitions it leads) of the node leading most partitions of `topic`."""
    leaders = Counter(p.leader for p in describe_partitions(topic))
    return leaders.most_common(1)[0]


def in_sync(topics: list[str]) -> bool:
    """Every partition of `topics` has a leader and all its replicas in sync (False while
    the cluster does not answer)."""
    try:
        partitions = [p for topic in topics for p in describe_partitions(topic)]
    except KafkaError:
        return False
    return bool(partitions) and all(
        p.leader >= 0 and sorted(p.isr) == sorted(p.replicas) for p in partitions
    )


def wait_healed(cluster, topics: list[str], timeout: float = 120.0) -> float:
    """Wait until every node runs, lists every node, and every replica of `topics` and of
    the group offsets is in sync (the test fails after `timeout` seconds); the seconds it
    took."""
    began = time.monotonic()
    ids = {node.node_id for node in cluster.nodes}

    def healed() -> bool:
        return (
            all(node.process and node.process.poll() is None for node in cluster.nodes)
            and all(node.unfenced_brokers() >= ids for node in cluster.nodes)
            and in_sync([*topics, "__consumer_offsets"])
        )

    eventually(healed, timeout=timeout, interval=0.5, message="the cluster whole and in sync")
    return time.monotonic() - began
