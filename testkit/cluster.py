"""The session's Apache Kafka cluster as the tests see it: its partitions and their
replicas, described through kafka-python's admin client (the admin port creates topics;
describing them is the tests' own need)."""

from __future__ import annotations

from typing import NamedTuple

from django.conf import settings

from orderstream.kafka import ConfigResource, ConfigResourceType, KafkaAdminClient


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
