"""The local Apache Kafka broker: compose env -> server properties, and a real start/restart.

The translation tests are pure. The broker test needs `java` (17+) and `mvn` (the first run
downloads the jars from Maven Central, about 45 MB) and is skipped without them.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from devstack import apache_kafka
from devstack.apache_kafka import (
    COMPOSE_FILE,
    KAFKA_VERSION,
    ApacheKafkaBroker,
    ToolMissing,
    compose_kafka_settings,
    kafka_lib_dir,
    local_settings,
    properties_text,
)
from testkit.helpers import eventually

COMPOSE_SETTINGS = {
    "cluster.id": "b3JkZXJzdHJlYW0ta3JhZg",
    "node.id": "1",
    "process.roles": "broker,controller",
    "controller.quorum.voters": "1@kafka:9093",
    "controller.listener.names": "CONTROLLER",
    "listeners": "INTERNAL://:9092,CONTROLLER://:9093,HOST://:29092",
    "advertised.listeners": "INTERNAL://kafka:9092,HOST://localhost:29092",
    "listener.security.protocol.map": "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,HOST:PLAINTEXT",
    "inter.broker.listener.name": "INTERNAL",
    "log.dirs": "/var/lib/kafka/data",
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
}
LOCALIZED = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}


def write_compose(tmp_path: Path, environment: str) -> Path:
    path = tmp_path / "docker-compose.yml"
    path.write_text(
        "services:\n  kafka:\n    image: apache/kafka\n    environment:\n"
        + textwrap.indent(textwrap.dedent(environment), " " * 6)
    )
    return path


def test_compose_kafka_service_translates_as_the_image_does():
    assert compose_kafka_settings(COMPOSE_FILE) == COMPOSE_SETTINGS


def test_compose_images_use_the_pinned_version():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name in ("kafka", "kafka-init"):
        assert services[name]["image"] == f"apache/kafka:{KAFKA_VERSION}", name


def test_translation_rule_on_an_inline_example(tmp_path):
    compose = write_compose(
        tmp_path,
        """\
        CLUSTER_ID: ${KAFKA_CLUSTER_ID:-abc}
        KAFKA_LOG_RETENTION_HOURS: 1
        KAFKA_LISTENER_NAME_INTERNAL_SSL__CLIENT__AUTH: none
        KAFKA_SOME___DASHED_NAME: x
        KAFKA_SASL_JAAS_CONFIG: "a$$b"
        KAFKA_EMPTY:
        KAFKA_HEAP_OPTS: -Xmx1g
        KAFKA_OPTS: -Dx=y
        OTHER: ignored
        """,
    )
    assert compose_kafka_settings(compose) == {
        "cluster.id": "abc",
        "log.retention.hours": "1",
        "listener.name.internal.ssl_client_auth": "none",
        "some-dashed.name": "x",
        "sasl.jaas.config": "a$b",
        "empty": "",
    }


def test_list_form_environment_and_unresolvable_variables(tmp_path):
    listed = tmp_path / "listed.yml"
    listed.write_text(
        "services:\n  kafka:\n    environment:\n      - CLUSTER_ID=x\n      - KAFKA_NODE_ID=3\n"
    )
    assert compose_kafka_settings(listed) == {"cluster.id": "x", "node.id": "3"}
    with pytest.raises(ValueError, match="KAFKA_NODE_ID"):
        compose_kafka_settings(write_compose(tmp_path, "KAFKA_NODE_ID: ${NODE_ID}\n"))


def test_local_settings_of_the_compose_file_change_only_listeners_quorum_and_log_dirs():
    settings = compose_kafka_settings(COMPOSE_FILE)
    local = local_settings(settings, 39001, 39002, Path("/data/kafka-logs"))
    assert local["listeners"] == "INTERNAL://127.0.0.1:39001,CONTROLLER://127.0.0.1:39002"
    assert local["advertised.listeners"] == "INTERNAL://127.0.0.1:39001"
    assert local["controller.quorum.voters"] == "1@127.0.0.1:39002"
    assert local["log.dirs"] == "/data/kafka-logs"
    assert {key for key in local if local[key] != settings.get(key)} == LOCALIZED
    assert settings == COMPOSE_SETTINGS  # not modified in place


def test_local_settings_fill_in_names_and_protocols_when_missing():
    settings = {"node.id": "7", "process.roles": "broker,controller", "listeners": "PLAIN://:1"}
    local = local_settings(settings, 39001, 39002, Path("/d"))
    assert local == {
        **settings,
        "listeners": "PLAIN://127.0.0.1:39001,CONTROLLER://127.0.0.1:39002",
        "advertised.listeners": "PLAIN://127.0.0.1:39001",
        "inter.broker.listener.name": "PLAIN",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAIN:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.quorum.voters": "7@127.0.0.1:39002",
        "log.dirs": "/d",
    }


def test_properties_text_is_sorted_and_escaped():
    assert properties_text({"b": "2", "a": "x\\y"}) == "a=x\\\\y\nb=2\n"


def test_missing_maven_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(apache_kafka, "CACHE_DIR", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match="mvn.*Maven"):
        kafka_lib_dir()


def tools_missing() -> list[str]:
    needed = ["java"]
    if not (apache_kafka.CACHE_DIR / KAFKA_VERSION / "lib").is_dir():
        needed.append("mvn")
    return [tool for tool in needed if shutil.which(tool) is None]


@pytest.mark.skipif(
    bool(tools_missing()),
    reason=f"install {' and '.join(tools_missing())} (a Java 17+ runtime, Maven) for Apache Kafka",
)
def test_broker_keeps_topics_messages_and_group_offsets_across_a_restart(tmp_path):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic
    from kafka.errors import (
        CoordinatorLoadInProgressError,
        CoordinatorNotAvailableError,
        NotCoordinatorError,
    )

    def committed_offsets(admin, group: str) -> dict | None:
        """The group's committed offsets; None while the coordinator is not ready yet."""
        try:
            return admin.list_group_offsets(group)[group]
        except (CoordinatorLoadInProgressError, CoordinatorNotAvailableError, NotCoordinatorError):
            return None  # the restarted broker is still loading its group coordinator

    def read_one(bootstrap: str, group: str) -> bytes | None:
        consumer = KafkaConsumer(
            "restart.test",
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=20_000,
        )
        try:
            record = next(consumer, None)  # None after 20 s without one
            consumer.commit()
            return record and record.value
        finally:
            consumer.close()

    data_dir = tmp_path / "kafka"
    log_path = str(tmp_path / "kafka.log")
    with ApacheKafkaBroker(data_dir=data_dir, log_path=log_path) as broker:
        assert (data_dir / "kafka-logs" / "meta.properties").is_file()
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("restart.test", 2, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        producer.send("restart.test", b"kept", key=b"k").get(timeout=10)
        producer.close()
        assert read_one(broker.bootstrap, "group-before") == b"kept"
    assert broker.process is None

    broker.start()  # same data dir (and ports): no format, the data is still there
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        assert "restart.test" in admin.list_topics()
        offsets = eventually(
            lambda: committed_offsets(admin, "group-before"),
            message="the group coordinator loaded its offsets after the restart",
        )
        assert sum(meta.offset for meta in offsets.values()) == 1
        admin.close()
        assert read_one(broker.bootstrap, "group-after") == b"kept"
    finally:
        broker.stop()
