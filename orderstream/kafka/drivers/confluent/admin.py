"""The admin port on librdkafka's AdminClient."""

from __future__ import annotations

from confluent_kafka import KafkaError as CKError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from orderstream.kafka import driver as kp
from orderstream.kafka.drivers.confluent.config import base_config
from orderstream.kafka.drivers.confluent.errors import project_error
from orderstream.kafka.drivers.confluent.partitions import METADATA_TIMEOUT_S, topic_names


class ConfluentAdmin:
    """The admin port on librdkafka's AdminClient."""

    def __init__(self, *, bootstrap_servers, client_id="orderstream-admin", timeout_ms=None):
        conf = base_config({"bootstrap_servers": bootstrap_servers, "client_id": client_id})
        self._timeout = METADATA_TIMEOUT_S if timeout_ms is None else timeout_ms / 1000
        self._admin = AdminClient(conf)

    def topic_names(self) -> set[str]:
        return topic_names(self._admin, self._timeout)

    def broker_count(self) -> int:
        try:
            return len(self._admin.list_topics(timeout=self._timeout).brokers)
        except KafkaException as exc:
            raise project_error(exc) from exc

    def create_topics(self, layout, *, replication_factor=1, configs=None) -> None:
        """Create the topics of `layout` (name -> partitions); one that exists is no error."""
        futures = self._admin.create_topics(
            [
                NewTopic(name, partitions, replication_factor, config=configs or {})
                for name, partitions in layout.items()
            ],
            request_timeout=self._timeout,
        )
        for future in futures.values():
            try:
                future.result(timeout=self._timeout)
            except KafkaException as exc:
                if exc.args[0].code() != CKError.TOPIC_ALREADY_EXISTS:
                    raise project_error(exc) from exc

    def max_message_bytes(self, topic: str) -> int | None:
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        try:
            described = self._admin.describe_configs([resource], request_timeout=self._timeout)
            entries = described[resource].result(timeout=self._timeout)
        except KafkaException as exc:
            raise project_error(exc) from exc
        entry = entries.get("max.message.bytes")
        if entry is None and topic not in self.topic_names():
            raise kp.UnknownTopicOrPartitionError(f"no topic {topic}")
        return int(entry.value) if entry is not None and entry.value else None

    def close(self) -> None:
        """Nothing to release (the AdminClient goes with its last reference)."""
