"""Partitions and offsets between the project's names (kafka-python's TopicPartition) and
librdkafka's, and a client's view of the cluster's topics."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as CKTopicPartition

from orderstream.kafka import driver as kp
from orderstream.kafka.drivers.confluent.errors import project_error

TopicPartition = kp.TopicPartition
# Metadata, watermark and committed-offset requests.
METADATA_TIMEOUT_S = 10.0


def to_ck(tp: TopicPartition, offset: int | None = None) -> CKTopicPartition:
    if offset is None:
        return CKTopicPartition(tp.topic, tp.partition)
    return CKTopicPartition(tp.topic, tp.partition, offset)


def to_tp(ck: CKTopicPartition) -> TopicPartition:
    return TopicPartition(ck.topic, ck.partition)


def offset_of(value) -> int:
    """An offset given as an int or as kafka-python's OffsetAndMetadata."""
    return int(getattr(value, "offset", value))


def topic_names(client, timeout: float = METADATA_TIMEOUT_S) -> set[str]:
    try:
        return set(client.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise project_error(exc) from exc


def partitions_of(client, topic: str) -> set[int]:
    """The partitions of `topic` (empty when the cluster does not know it)."""
    try:
        described = client.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics.get(topic)
    except KafkaException as exc:
        raise project_error(exc) from exc
    if described is None or described.error is not None:
        return set()
    return set(described.partitions)
