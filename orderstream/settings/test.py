"""Tests: own database names and topic names, so tests can run beside `make run`."""

from .base import *  # noqa: F403
from .base import DATABASES, env

SECRET_KEY = "test-key-not-for-production"
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# TEST_DB_SUFFIX lets two test runs share one PostgreSQL server.
_suffix = env("TEST_DB_SUFFIX", "")
DATABASES["default"]["TEST"] = {"NAME": f"test_orderstream_api{_suffix}"}
DATABASES["worker"]["TEST"] = {"NAME": f"test_orderstream_worker{_suffix}"}

# Never the real topic names; TEST_* lets a worker subprocess of a test use its topics.
ORDERS_EVENTS_TOPIC = env("TEST_ORDERS_EVENTS_TOPIC", "test.orders.events")
ORDERS_ACK_TOPIC = env("TEST_ORDERS_ACK_TOPIC", "test.orders.ack")
ORDERS_DLQ_TOPIC = env("TEST_ORDERS_DLQ_TOPIC", "test.orders.events.dlq")
ORDERS_EVENTS_PARTITIONS = 4
WORKER_GROUP = "test-order-workers"
ACK_RECORDER_GROUP = "test-ack-recorders"
# Fast group joins on the embedded broker. 6 s is the shortest session Apache Kafka accepts
# by default (group.min.session.timeout.ms), and the compose settings keep that default.
KAFKA_MAX_POLL_INTERVAL_MS = 6000
KAFKA_SESSION_TIMEOUT_MS = 6000
KAFKA_HEARTBEAT_INTERVAL_MS = 300
ORDER_ACK_WAIT_TIMEOUT = 10.0
ORDER_RESULT_TTL = 600
# The embedded broker holds an empty fetch this long before answering: keep ACKs quick.
KAFKA_FETCH_MAX_WAIT_MS = 20
# Worker and relay processes that tests start serve no metrics unless the test gives them
# a port (a fixed one would be taken by a `make run` beside the suite, or by another test).
WORKER_METRICS_PORT = int(env("WORKER_METRICS_PORT", "0"))
RELAY_METRICS_PORT = int(env("RELAY_METRICS_PORT", "0"))
