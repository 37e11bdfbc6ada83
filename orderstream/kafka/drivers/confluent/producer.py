"""The producer port on librdkafka's Producer: `send()` returns a `Delivery` future filled
by the delivery report."""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

import confluent_kafka
from confluent_kafka import KafkaException

from orderstream.kafka import driver as kp
from orderstream.kafka.drivers.confluent.config import producer_config
from orderstream.kafka.drivers.confluent.errors import project_error
from orderstream.kafka.drivers.confluent.partitions import partitions_of, topic_names

logger = logging.getLogger(__name__)
# A producer's view of a topic's partitions is asked again after this long.
PARTITIONS_TTL_S = 10.0


class Delivered(NamedTuple):
    """Where a record was written (kafka-python's RecordMetadata's attributes)."""

    topic: str
    partition: int
    offset: int


class Delivery:
    """The future of one produced record (kafka-python's FutureRecordMetadata's surface)."""

    __slots__ = ("_producer", "_done", "value", "exception")

    def __init__(self, producer):
        self._producer = producer
        self._done = threading.Event()
        self.value: Delivered | None = None
        self.exception: Exception | None = None

    def report(self, error, message) -> None:
        """librdkafka's delivery report (served by flush/poll)."""
        if error is not None:
            self.exception = project_error(error)
        else:
            self.value = Delivered(message.topic(), message.partition(), message.offset())
        self._done.set()

    def is_done(self) -> bool:
        return self._done.is_set()

    def succeeded(self) -> bool:
        return self.is_done() and self.exception is None

    def failed(self) -> bool:
        return self.is_done() and self.exception is not None

    def get(self, timeout: float | None = None) -> Delivered:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_done():
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise kp.KafkaTimeoutError(f"record not delivered within {timeout}s")
            self._producer.poll(min(left, 1.0))
        if self.exception is not None:
            raise self.exception
        return self.value


class ConfluentProducer:
    """A librdkafka producer with the producer port's surface (kafka-python's names)."""

    def __init__(self, **config):
        conf, bootstrap_timeout = producer_config(config)
        self._producer = confluent_kafka.Producer(conf)
        self._partitions: dict[str, tuple[float, set[int]]] = {}
        if bootstrap_timeout is not None:  # as kafka-python's: no producer without a broker
            topic_names(self._producer, bootstrap_timeout)

    def send(self, topic, value=None, key=None, headers=None, partition=None) -> Delivery:
        delivery = Delivery(self._producer)
        options = {"key": key, "headers": headers, "on_delivery": delivery.report}
        if partition is not None:
            options["partition"] = partition
        try:
            self._producer.produce(topic, value, **options)
        except BufferError as exc:  # the local queue is full
            raise kp.KafkaTimeoutError(f"producer queue full: {exc}") from exc
        except KafkaException as exc:
            raise project_error(exc) from exc
        self._producer.poll(0)  # serve the reports that came in
        return delivery

    def flush(self, timeout: float | None = None) -> None:
        left = self._producer.flush(-1 if timeout is None else timeout)
        if left:
            raise kp.KafkaTimeoutError(f"{left} record(s) not delivered within {timeout}s")

    def partitions_for(self, topic: str) -> set[int]:
        known = self._partitions.get(topic)
        if known is None or time.monotonic() - known[0] > PARTITIONS_TTL_S:
            known = self._partitions[topic] = (
                time.monotonic(),
                partitions_of(self._producer, topic),
            )
        return known[1]

    def close(self, timeout: float | None = None) -> None:
        """Deliver what waits for up to `timeout` seconds, then drop the rest (librdkafka's
        close would wait for it without bound)."""
        try:
            self._producer.flush(-1 if timeout is None else timeout)
            self._producer.purge()
            self._producer.flush(0)
            self._producer.close()
        except (KafkaException, RuntimeError) as exc:
            logger.warning("librdkafka producer close: %s", exc)
