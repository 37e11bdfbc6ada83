"""The confluent-kafka (librdkafka) driver: `KAFKA_CLIENT=confluent`.

Modules: `config` (librdkafka's properties from kafka-python's option names), `errors`
(librdkafka's codes as the project's errors), `partitions`, `consumer`, `producer`, `admin`.

Its consumer, producer and admin present the surface of the ports (`orderstream/kafka/ports.py`,
the part of kafka-python's the project uses), so the loop, the relay and the readers are the
same code on either driver. Errors are raised as the project's Kafka errors (the classes
`orderstream.kafka.driver` exports), mapped from librdkafka's codes (`project_error`).

What librdkafka does differently, and what this module does about it:

- `poll()` returns one message and `consume(n, t)` waits for all n (or t): a batch is the
  first message of `poll(t)` and what is already queued (`consume(n - 1, 0)`).
- Rebalance callbacks run inside poll/consume/close on the application's thread, and an
  exception in one is re-raised from poll: the listener's are called through `_call`,
  which logs and never raises. The assignment is taken (`incremental_assign` with
  cooperative-sticky) before the listener runs, so `assignment()` says what is held; a
  partition revoked or lost is resumed (a pause outlives its assignment in librdkafka).
  A commit asked for during a revoke is sent synchronously (the broker thread does the
  I/O; the member still holds the generation).
- One commit callback per consumer (`on_commit`): a per-call callback is matched to its
  commit by the offsets it carries.
- No `paused()`: the paused partitions are tracked here.
- A group-less reader still needs a `group.id` (a throwaway one, never committed to).
- `produce()` returns nothing and never blocks: `send()` returns a `Delivery` future filled
  by the delivery report (served by flush/poll); `flush()` returns what is left, turned
  into a KafkaTimeoutError as kafka-python's.
"""

from orderstream.kafka.drivers.confluent.admin import ConfluentAdmin
from orderstream.kafka.drivers.confluent.config import consumer_config, producer_config
from orderstream.kafka.drivers.confluent.consumer import ConfluentConsumer, Record
from orderstream.kafka.drivers.confluent.errors import (
    ErrorLog,
    KafkaFatalError,
    LibrdkafkaError,
    project_error,
)
from orderstream.kafka.drivers.confluent.producer import ConfluentProducer, Delivery

__all__ = [
    "ConfluentAdmin",
    "ConfluentConsumer",
    "ConfluentProducer",
    "Delivery",
    "ErrorLog",
    "KafkaFatalError",
    "LibrdkafkaError",
    "Record",
    "consumer_config",
    "producer_config",
    "project_error",
]
