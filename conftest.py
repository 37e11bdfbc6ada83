"""Fixtures shared by every app's tests, and the layers of the suite.

Every test is sorted into layers by what it needs (markers, set at collection):
- `unit`: nothing but Python (no database, Redis or broker): `make test-fast`;
- `db`: PostgreSQL or Redis (tests marked `django_db`, or `db` by hand for Redis alone);
- `broker`: the Kafka broker (tests marked `broker`, or using a fixture that needs it);
- `slow`: the fault, fuzz and browser tests, and the tests that start the project's
  processes.
The broker is one embedded server on a free loopback port for the whole session, started
when the first test that needs it runs, so tests never touch the broker of a running
`make run` stack: Tansu, or Apache Kafka with BROKER=kafka (three nodes with
KAFKA_NODES=3; TEST_KAFKA_BROKERS: use an existing one). A test that needs no broker sees
an address where none answers, so a test that uses Kafka without saying so fails the same
way alone and in the whole suite.
"""

import os
import uuid

import pytest
from django.test import override_settings

from devstack.brokers import embedded_broker, kafka_nodes
from orderstream.kafka import ensure_topics
from testkit.running import running


def broker_kind() -> str:
    return os.environ.get("BROKER", "tansu")


SLOW_MARKERS = ("faults", "fuzz", "browser", "processes")
# Fixtures that give a test PostgreSQL or Redis: pytest-django's, and the suite's own
# `redis` (orders_worker/tests/test_results.py) and `scratch_databases` (test_compose.py).
DATABASE_FIXTURES = {
    *("db", "transactional_db", "django_db_setup", "live_server"),
    *("redis", "scratch_databases"),
}
BROKER_FIXTURES = {"kafka_broker", "kafka_bootstrap"}
# Where no broker answers (port 1 refuses at once): the address tests without `broker` see.
NO_BROKER = ["127.0.0.1:1"]


def pytest_collection_modifyitems(items):
    for item in items:
        uses = set(item.fixturenames)
        needs_broker = item.get_closest_marker("broker") or uses & BROKER_FIXTURES
        needs_db = (
            item.get_closest_marker("django_db")
            or item.get_closest_marker("db")
            or uses & DATABASE_FIXTURES
        )
        if needs_broker and not item.get_closest_marker("broker"):
            item.add_marker(pytest.mark.broker)
        if needs_db and not item.get_closest_marker("db"):
            item.add_marker(pytest.mark.db)
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            item.add_marker(pytest.mark.slow)
        if not (needs_broker or needs_db):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def kafka_brokers_of_this_test(request, settings):
    """KAFKA_BROKERS for this test: the session's broker for tests marked `broker` (started
    when the first of them runs), NO_BROKER for the others."""
    if request.node.get_closest_marker("broker"):
        settings.KAFKA_BROKERS = request.getfixturevalue("kafka_bootstrap")
    else:
        settings.KAFKA_BROKERS = NO_BROKER


@pytest.fixture(autouse=True)
def fresh_ack_wait_gate(monkeypatch):
    """A new ACK wait gate for each test (it is per process): one test's timed-out wait
    or outbox says nothing of the next test's pipeline."""
    from orders_api.ack_wait import gate as ack_wait_gate

    monkeypatch.setattr(ack_wait_gate, "_gate", ack_wait_gate.AckWaitGate())


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """The session's embedded broker (None with TEST_KAFKA_BROKERS), the project's
    (test-named) topics created on it."""
    broker = None
    if not os.environ.get("TEST_KAFKA_BROKERS"):
        kind = broker_kind()
        logs = tmp_path_factory.mktemp("broker")
        broker = embedded_broker(
            kind,
            port=None,
            data_dir=logs / "data",
            log_path=logs / f"{kind}.log",
            nodes=kafka_nodes(),
        ).start()
    yield broker
    if broker:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker) -> list[str]:
    """The addresses of the session's broker."""
    external = os.environ.get("TEST_KAFKA_BROKERS")
    addresses = (external or kafka_broker.bootstrap).split(",")
    with override_settings(KAFKA_BROKERS=addresses):
        ensure_topics()
    return addresses


@pytest.fixture
def unique_topics(settings, kafka_bootstrap):
    """Fresh event/ACK/dead-letter topic names, worker and ACK recorder groups for one test."""
    suffix = uuid.uuid4().hex[:8]
    settings.ORDERS_EVENTS_TOPIC = f"test.orders.events.{suffix}"
    settings.ORDERS_ACK_TOPIC = f"test.orders.ack.{suffix}"
    settings.ORDERS_DLQ_TOPIC = f"test.orders.events.dlq.{suffix}"
    settings.WORKER_GROUP = f"test-order-workers-{suffix}"
    settings.ACK_RECORDER_GROUP = f"test-ack-recorders-{suffix}"
    ensure_topics()
    return settings


@pytest.fixture
def six_partition_topics(settings, request):
    """`unique_topics`, the events topic with 6 partitions (the tests under load)."""
    settings.ORDERS_EVENTS_PARTITIONS = 6
    return request.getfixturevalue("unique_topics")


def topics_of_the_test_first(request) -> None:
    """Apply `unique_topics` before a running loop reads the topic settings, when the test
    asks for it."""
    if "unique_topics" in request.fixturenames:
        request.getfixturevalue("unique_topics")


@pytest.fixture
def running_worker(request, settings, kafka_bootstrap):
    """The order worker consuming in a background thread, on this test's topics.

    Uses the test databases and Redis (tests need
    `@pytest.mark.django_db(transaction=True, databases=["default", "worker"])`), waits
    until the worker holds partitions, yields the `OrderWorker`, and on teardown stops
    it, joins the thread and fails the test if the worker crashed. Combine with
    `unique_topics` for topics of the test's own (it is applied first).
    """
    from orders_worker.worker import OrderWorker, WorkerConfig

    topics_of_the_test_first(request)
    worker = OrderWorker(
        WorkerConfig.from_settings(poll_timeout_ms=100, stats_interval=60, backoff_max=1.0)
    )
    with running(worker, ready=worker.partitions, what="worker"):
        yield worker


@pytest.fixture
def running_relay(request, settings, kafka_bootstrap):
    """The outbox relay in a background thread, publishing what the test commits.

    Uses the test's API database (tests need `@pytest.mark.django_db(transaction=True)`:
    the relay sees committed rows only) and this test's topics when combined with
    `unique_topics`. Yields the `OutboxRelay` once it made its first pass; on teardown
    stops it, joins the thread and fails the test if the relay crashed.
    """
    from orders_api.relay.loop import OutboxRelay

    topics_of_the_test_first(request)
    relay = OutboxRelay()
    with running(relay, ready=lambda: relay.passes, what="relay"):
        yield relay


@pytest.fixture
def running_ack_recorder(request, settings, kafka_bootstrap):
    """The ACK recorder (`orders_api.ack_recorder.recorder`) in a background thread, recording the
    ACKs of this test's topics (with `unique_topics`) in the test's API database (tests
    need `@pytest.mark.django_db(transaction=True)`). Yields the `AckRecorder` once it
    holds partitions; on teardown stops it, joins the thread and fails the test if it
    crashed."""
    from orders_api.ack_recorder.recorder import AckRecorder, AckRecorderConfig

    topics_of_the_test_first(request)
    recorder = AckRecorder(
        AckRecorderConfig.from_settings(poll_timeout_ms=100, stats_interval=60, backoff_max=1.0)
    )
    with running(recorder, ready=recorder.partitions, what="ACK recorder"):
        yield recorder
