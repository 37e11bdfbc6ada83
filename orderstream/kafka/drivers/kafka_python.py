"""The kafka-python driver: its consumer and producer are kafka-python's own (with the fixes
of `orderstream/kafka/driver.py`), which have the ports' surface; its admin is below."""

from __future__ import annotations

import time

from orderstream.kafka.driver import (
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    NewTopic,
    TopicAlreadyExistsError,
    UnknownBrokerIdError,
    UnknownTopicOrPartitionError,
)

__all__ = ["KafkaConsumer", "KafkaProducer", "KafkaPythonAdmin"]

# A create the controller of which the client's metadata did not list yet is tried this
# many times in all, with fresh metadata (a new client) after a pause.
CREATE_ATTEMPTS = 5
RETRY_PAUSE_S = 1.0


class KafkaPythonAdmin:
    """The admin port on kafka-python's KafkaAdminClient."""

    def __init__(self, *, bootstrap_servers, client_id="orderstream-admin", timeout_ms=None):
        bounds = {}
        if timeout_ms is not None:
            bounds = {"bootstrap_timeout_ms": timeout_ms, "request_timeout_ms": timeout_ms}
        self._config = {"bootstrap_servers": bootstrap_servers, "client_id": client_id, **bounds}
        self._admin = KafkaAdminClient(**self._config)

    def topic_names(self) -> set[str]:
        return set(self._admin.list_topics())

    def broker_count(self) -> int:
        brokers = self._admin.describe_cluster()["brokers"]
        return sum(1 for broker in brokers if not broker.get("is_fenced"))

    def create_topics(self, layout, *, replication_factor=1, configs=None) -> None:
        """Create the topics of `layout` (name -> partitions); one that exists is no error.

        kafka-python sends a create to the node the metadata names controller; once, on a
        three-node cluster that had just started, its own metadata did not list that node
        (UnknownBrokerIdError): the create is tried again with a new client's metadata."""
        new = [
            NewTopic(n, p, replication_factor, topic_configs=configs or {})
            for n, p in layout.items()
        ]
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                self._admin.create_topics(new)
                return
            except TopicAlreadyExistsError:
                return  # another process created them between the caller's list and this
            except UnknownBrokerIdError:
                if attempt == CREATE_ATTEMPTS:
                    raise
            self._admin.close()
            time.sleep(RETRY_PAUSE_S)
            self._admin = KafkaAdminClient(**self._config)

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
