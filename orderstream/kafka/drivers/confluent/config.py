"""librdkafka's properties from the kafka-python-named options `clients.py` builds
clients with."""

from __future__ import annotations

import logging
import uuid

from orderstream.kafka.drivers.confluent.errors import ErrorLog, RepeatedLogLines

# librdkafka's own log lines (served from poll/flush), in the project's log format.
LIBRDKAFKA_LOGGER = logging.getLogger("orderstream.kafka.librdkafka")
LIBRDKAFKA_LOGGER.addFilter(RepeatedLogLines())

ASSIGNMENT_STRATEGY = "cooperative-sticky"
# Network bound of calls that take no timeout (a synchronous commit, close).
SOCKET_TIMEOUT_MS = 10_000
# kafka-python's default delivery timeout, also used here.
DEFAULT_DELIVERY_TIMEOUT_MS = 120_000
# kafka-python's constructor waits this long for a broker by default; so does this driver's.
DEFAULT_BOOTSTRAP_TIMEOUT_MS = 2_000


RENAMED = {
    "batch_size": "batch.size",
    "request_timeout_ms": "request.timeout.ms",
    "max_request_size": "message.max.bytes",
    "retry_backoff_ms": "retry.backoff.ms",
}
# kafka-python's options librdkafka has no use for: produce never blocks, an idempotent
# producer retries until message.timeout.ms, no client metrics unless asked.
UNUSED = ("retries", "max_block_ms", "metrics_enabled", "api_version")


def base_config(config: dict) -> dict:
    """The properties of every client, taken out of `config` (kafka-python's names)."""
    conf = {
        "bootstrap.servers": ",".join(config.pop("bootstrap_servers")),
        "client.id": config.pop("client_id", "orderstream"),
        "logger": LIBRDKAFKA_LOGGER,
        "error_cb": ErrorLog(),
        "socket.timeout.ms": SOCKET_TIMEOUT_MS,
    }
    for name, prop in RENAMED.items():
        if name in config:
            conf[prop] = config.pop(name)
    for unused in UNUSED:
        config.pop(unused, None)
    return conf


def refuse_unknown(config: dict) -> None:
    if config:
        raise TypeError(f"the confluent driver does not know {', '.join(sorted(config))}")


# ---------------------------------------------------------------------------------- consumer
def consumer_config(config: dict) -> tuple[dict, int, bool]:
    """librdkafka's properties for make_consumer's kafka-python-named `config`; with the
    batch size (`max_poll_records`) and whether the consumer is group-less."""
    config = dict(config)
    conf = base_config(config)
    group_id = config.pop("group_id", None)
    groupless = group_id is None
    conf["group.id"] = group_id or f"orderstream-reader-{uuid.uuid4().hex}"
    if config.pop("enable_auto_commit", False):
        raise ValueError("the project commits its offsets itself")
    conf.update(
        {
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": config.pop("auto_offset_reset", "earliest"),
            "max.poll.interval.ms": config.pop("max_poll_interval_ms"),
            "session.timeout.ms": config.pop("session_timeout_ms"),
            "heartbeat.interval.ms": config.pop("heartbeat_interval_ms"),
            "fetch.wait.max.ms": config.pop("fetch_max_wait_ms"),
            "partition.assignment.strategy": ASSIGNMENT_STRATEGY,
        }
    )
    if groupless:  # a reader of every partition: a small prefetch (64 MB by default)
        conf["queued.max.messages.kbytes"] = 8192
    max_records = config.pop("max_poll_records", 500)
    refuse_unknown(config)
    return conf, max_records, groupless


# ---------------------------------------------------------------------------------- producer
def producer_config(config: dict) -> tuple[dict, float | None]:
    """librdkafka's properties for make_producer's kafka-python-named `config`; with the
    time to wait for a broker at construction (`bootstrap_timeout_ms`), or None for no wait
    (kafka-python's constructor connects only to learn the broker's API version: given
    `api_version`, it builds a producer with no broker up, which then retries)."""
    config = dict(config)
    version_given = config.get("api_version") is not None
    conf = base_config(config)
    if config.pop("enable_idempotence", True):
        # acks=all, max.in.flight <= 5 and retries without end follow (librdkafka); the
        # delivery is bounded by message.timeout.ms instead of a count of retries.
        conf["enable.idempotence"] = True
    conf["acks"] = config.pop("acks", "all")
    # Java's partitioner (murmur2), as kafka-python's: a key goes to the same partition.
    conf["partitioner"] = "murmur2_random"
    conf["linger.ms"] = config.pop("linger_ms", 0)
    conf["message.timeout.ms"] = config.pop("delivery_timeout_ms", DEFAULT_DELIVERY_TIMEOUT_MS)
    conf["enable.metrics.push"] = False
    # As kafka-python's constructor, which connects to a broker (2 s unless told).
    bootstrap_ms = config.pop("bootstrap_timeout_ms", DEFAULT_BOOTSTRAP_TIMEOUT_MS)
    refuse_unknown(config)
    return conf, None if version_given else bootstrap_ms / 1000
