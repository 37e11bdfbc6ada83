"""The kafka-python driver: its consumer and producer are kafka-python's own (with the fixes
of `orderstream/kafka/driver.py`), which have the ports' surface; its admin is below."""

from __future__ import annotations

from orderstream.kafka.driver import (
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    NewTopic,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

__all__ = ["KafkaConsumer", "KafkaProducer", "KafkaPythonAdmin"]


class KafkaPythonAdmin:
    """The admin port on kafka-python's KafkaAdminClient."""

    def __init__(self, *, bootstrap_servers, client_id="orderstream-admin", timeout_ms=None):
        bounds = {}
        if timeout_ms is not None:
            bounds = {"bootstrap_timeout_ms": timeout_ms, "request_timeout_ms": timeout_ms}
        self._admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers, client_id=client_id, **bounds
        )

    def topic_names(self) -> set[str]:
        return set(self._admin.list_topics())

    def broker_count(self) -> int:
        brokers = self._admin.describe_cluster()["brokers"]
        return sum(1 for broker in brokers if not broker.get("is_fenced"))

    def create_topics(self, layout, *, replication_factor=1, configs=None) -> None:
        """Create the topics of `layout` (name -> partitions); one that exists is no error."""
        new = [
            NewTopic(n, p, replication_factor, topic_configs=configs or {})
            for n, p in layout.items()
        ]
        try:
            self._admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass  # another process created them between the caller's list and this

    def max_message_bytes(self, topic: str) -> int | None:
        # Every setting of the topic: Tansu drops the connection when asked for one by name.
        wanted = ConfigResource(ConfigResourceType.TOPIC, topic)
        described = self._admin.describe_configs([wanted], config_filter="all")
        entry = described.get("topic", {}).get(topic, {}).get("max.message.bytes") or {}
        if not entry and topic not in self.topic_names():
            raise UnknownTopicOrPartitionError(f"no topic {topic}")
        value = entry.get("value")
        return int(value) if value else None

    def close(self) -> None:
        self._admin.close()
