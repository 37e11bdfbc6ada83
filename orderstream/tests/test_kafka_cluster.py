"""KAFKA_NODES=3: the local three-node Apache Kafka cluster, and the topics made on it.

The unit tests check the nodes' settings (from the compose file, as the one node's), the
setting's values, the banner and KAFKA_BROKERS of the local stack, and the replication the
project's topics get for a cluster's size. The broker test describes the topics on the
session's broker through the admin client: replication factor min(3, nodes), every replica
in sync, `min.insync.replicas=2` on three nodes (run after test_cluster_faults.py: in sync
again after its restarts).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from devstack import brokers, stack
from devstack.apache_kafka import COMPOSE_FILE, ApacheKafkaBroker, compose_kafka_settings
from devstack.kafka_cluster import CLUSTER_SETTINGS, ApacheKafkaCluster
from devstack.ports import free_port
from orderstream.kafka import ensure_topics, topic_layout
from orderstream.kafka.topics import replication
from testkit.cluster import describe_partitions, topic_config
from testkit.helpers import eventually

# What each node of the cluster changes of the compose file's settings.
PER_NODE = {"node.id", "listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}


# ------------------------------------------------------------------------------ the setting
@pytest.mark.parametrize(("value", "nodes"), [(None, 1), ("", 1), ("1", 1), (" 3 ", 3)])
def test_kafka_nodes_defaults_to_one_and_reads_three(monkeypatch, value, nodes):
    if value is None:
        monkeypatch.delenv("KAFKA_NODES", raising=False)
    else:
        monkeypatch.setenv("KAFKA_NODES", value)
    assert brokers.kafka_nodes() == nodes


@pytest.mark.parametrize("value", ["2", "0", "three", "-3"])
def test_kafka_nodes_refuses_other_values_naming_the_setting(monkeypatch, value):
    monkeypatch.setenv("KAFKA_NODES", value)
    with pytest.raises(ValueError, match=f"KAFKA_NODES={value!r}: choose 1 or 3"):
        brokers.kafka_nodes()


def test_a_cluster_of_tansu_is_refused(tmp_path):
    with pytest.raises(ValueError, match="KAFKA_NODES=3 needs BROKER=kafka"):
        brokers.embedded_broker("tansu", port=None, data_dir=tmp_path, log_path=None, nodes=3)


def test_three_nodes_make_a_cluster_and_one_the_single_broker(tmp_path):
    cluster = brokers.embedded_broker(
        "kafka", port=None, data_dir=tmp_path / "kafka", log_path=tmp_path / "kafka.log", nodes=3
    )
    single = brokers.embedded_broker(
        "kafka", port=None, data_dir=tmp_path / "one", log_path=tmp_path / "one.log"
    )
    assert isinstance(cluster, ApacheKafkaCluster) and len(cluster.nodes) == 3
    assert isinstance(single, ApacheKafkaBroker)


def test_a_cluster_starts_only_its_stopped_nodes_and_runs_once_all_do(tmp_path, monkeypatch):
    """A test that stopped some nodes (or all) starts the cluster again: a node still
    running keeps its process (launched again, it would fight its own ports)."""
    cluster = ApacheKafkaCluster(3, data_dir=tmp_path, log_path=None)
    launched = []

    def launch(node):
        launched.append(node.node_id)
        node.process = object()

    monkeypatch.setattr(ApacheKafkaBroker, "launch", launch)
    monkeypatch.setattr(ApacheKafkaBroker, "wait_ready", lambda node, timeout: None)
    monkeypatch.setattr(ApacheKafkaCluster, "wait_whole", lambda cluster, timeout: None)
    first = cluster.nodes[0]
    first.process = running = object()
    assert not cluster.running
    cluster.start()
    assert launched == [2, 3] and first.process is running
    assert cluster.running and all(node.running for node in cluster.nodes)


# ------------------------------------------------------------------------------ the nodes
def node_settings(node: ApacheKafkaBroker) -> dict[str, str]:
    return node.server_settings()[0]


def test_each_node_is_broker_and_controller_of_one_three_voter_quorum(tmp_path):
    port = free_port()
    cluster = ApacheKafkaCluster(3, port=port, data_dir=tmp_path, log_path=tmp_path / "kafka.log")
    nodes = cluster.nodes
    assert nodes[0].port == port  # the configured address stays the first node's
    ports = {p for node in nodes for p in (node.port, node.controller_port)}
    assert len(ports) == 6  # six distinct loopback ports
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    for number, node in enumerate(nodes, start=1):
        settings = node_settings(node)
        assert settings["node.id"] == str(number) == str(node.node_id)
        assert set(settings["process.roles"].split(",")) == {"broker", "controller"}
        assert settings["controller.quorum.voters"] == voters
        assert settings["advertised.listeners"] == f"INTERNAL://127.0.0.1:{node.port}"
        assert settings["log.dirs"] == str(tmp_path / f"node-{number}" / "kafka-logs")
        assert node.data_dir == tmp_path / f"node-{number}"
        assert node.log_path == str(tmp_path / f"kafka-{number}.log")
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{n.port}" for n in nodes)
    assert cluster.bootstrap_servers == [f"127.0.0.1:{n.port}" for n in nodes]


def test_the_nodes_keep_the_compose_settings_but_replicate_the_internal_topics_three_times(
    tmp_path,
):
    compose = compose_kafka_settings(COMPOSE_FILE)
    compose.pop("cluster.id")
    cluster = ApacheKafkaCluster(3, data_dir=tmp_path, log_path=None)
    for node in cluster.nodes:
        settings, cluster_id = node.server_settings()
        assert cluster_id == compose_kafka_settings(COMPOSE_FILE)["cluster.id"]
        kept = {key: value for key, value in settings.items() if key not in PER_NODE}
        expected = {k: v for k, v in {**compose, **CLUSTER_SETTINGS}.items() if k not in PER_NODE}
        assert kept == expected
    assert CLUSTER_SETTINGS["offsets.topic.replication.factor"] == "3"
    assert CLUSTER_SETTINGS["transaction.state.log.replication.factor"] == "3"
    assert CLUSTER_SETTINGS["transaction.state.log.min.isr"] == "2"


def test_a_single_broker_keeps_its_one_voter_quorum(tmp_path):
    broker = ApacheKafkaBroker(data_dir=tmp_path, log_path=None)
    settings = node_settings(broker)
    assert settings["controller.quorum.voters"] == f"1@127.0.0.1:{broker.controller_port}"
    assert settings["offsets.topic.replication.factor"] == "1"


# ------------------------------------------------------------------------------ the local stack
class FakeNode:
    def __init__(self, number: int, data_dir: Path):
        self.port = free_port()
        self.data_dir = data_dir / f"node-{number}"
        self.log_path = str(data_dir.parent / f"kafka-{number}.log")


class FakeCluster:
    """What ensure_broker sees of a cluster: its nodes and their addresses."""

    def __init__(self, data_dir: Path):
        self.nodes = [FakeNode(n, data_dir) for n in (1, 2, 3)]
        self.bootstrap = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        self.started = False

    def start(self):
        self.started = True
        return self

    def stop(self):
        self.started = False


def test_the_local_stack_starts_three_nodes_lists_them_in_kafka_brokers_and_the_banner(
    monkeypatch, tmp_path
):
    port = free_port()  # nothing answers there: the stack starts its own
    made = {}

    def fake_embedded_broker(kind, *, port, data_dir, log_path, nodes):
        made.update(kind=kind, port=port, nodes=nodes)
        made["cluster"] = FakeCluster(data_dir)
        return made["cluster"]

    monkeypatch.setattr(stack, "embedded_broker", fake_embedded_broker)
    monkeypatch.setenv("BROKER", "kafka")
    monkeypatch.setenv("KAFKA_NODES", "3")
    monkeypatch.setenv("KAFKA_BROKERS", f"127.0.0.1:{port}")
    local = stack.Stack(tmp_path, throwaway=False)
    stack.ensure_broker(local)
    cluster = made["cluster"]
    assert (made["kind"], made["port"], made["nodes"]) == ("kafka", port, 3)
    assert cluster.started and local.started == [cluster]
    assert stack.os.environ["KAFKA_BROKERS"] == cluster.bootstrap
    assert len(local.banner) == 3
    for number, (line, node) in enumerate(zip(local.banner, cluster.nodes, strict=True), 1):
        assert line.split()[:2] == ["Kafka", str(number)]
        assert f"127.0.0.1:{node.port}" in line and f"kafka-{number}.log" in line
    local.stop()
    assert not cluster.started


# ------------------------------------------------------------------------------ the topics
@pytest.mark.parametrize(
    ("live_brokers", "factor", "configs"),
    [
        (1, 1, {}),
        (2, 2, {}),
        (3, 3, {"min.insync.replicas": "2"}),
        (5, 3, {"min.insync.replicas": "2"}),
    ],
)
def test_topics_are_replicated_on_up_to_three_brokers_two_in_sync_with_three(
    live_brokers, factor, configs
):
    assert replication(live_brokers) == (factor, configs)


def session_nodes(kafka_broker) -> int:
    if kafka_broker is None:
        pytest.skip("the session uses a broker of TEST_KAFKA_BROKERS: its size is unknown")
    if not isinstance(kafka_broker, ApacheKafkaBroker | ApacheKafkaCluster):
        pytest.skip("Tansu keeps one copy of everything: nothing to replicate")
    return len(getattr(kafka_broker, "nodes", [kafka_broker]))


@pytest.mark.broker
def test_the_project_topics_are_replicated_as_the_cluster_allows_every_replica_in_sync(
    kafka_broker, settings
):
    nodes = session_nodes(kafka_broker)
    factor = min(3, nodes)
    suffix = uuid.uuid4().hex[:8]
    settings.ORDERS_EVENTS_TOPIC = f"test.replicated.events.{suffix}"
    settings.ORDERS_ACK_TOPIC = f"test.replicated.ack.{suffix}"
    settings.ORDERS_DLQ_TOPIC = f"test.replicated.dlq.{suffix}"
    created = ensure_topics()
    layout = topic_layout()
    assert sorted(created) == sorted(layout)
    # The ones just made, and the session's own (made when the session began, used by the
    # tests before this one: the fault tests' restarts included).
    topics = [*layout, "test.orders.events", "test.orders.ack", "test.orders.events.dlq"]
    for topic in topics:
        partitions = eventually(
            lambda topic=topic: describe_partitions(topic), message=f"{topic} described"
        )
        assert len(partitions) == layout.get(topic, len(partitions)), topic
        assert {len(p.replicas) for p in partitions} == {factor}, (topic, partitions)
        expected = "2" if nodes == 3 else "1"
        assert topic_config(topic, "min.insync.replicas") == expected, topic
    eventually(
        lambda: all_in_sync([*topics, "__consumer_offsets"]),
        timeout=60,
        message="every replica of the topics in sync",
    )
    offsets = describe_partitions("__consumer_offsets")
    assert {len(p.replicas) for p in offsets} == {factor}


def all_in_sync(topics: list[str]) -> bool:
    return all(sorted(p.isr) == sorted(p.replicas) for t in topics for p in describe_partitions(t))
