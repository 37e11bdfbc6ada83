"""A local Apache Kafka cluster of three KRaft nodes (KAFKA_NODES=3), as child processes.

Each node is an `ApacheKafkaBroker` (apache_kafka.py: the same jars, the same settings from
the compose file's `kafka` service) with its own node id, ports and data directory. Every
node is both broker and controller: three JVMs (not six: a separate controller quorum
would double them on a 2-core machine), and a quorum of three voters, which keeps a
leader with one node down, as the partitions keep their leaders (replication factor 3,
`min.insync.replicas=2` on the project's topics: orderstream/kafka/topics.py). The
internal topics get the same replication as the project's (CLUSTER_SETTINGS).
"""

from __future__ import annotations

from pathlib import Path

from .apache_kafka import COMPOSE_FILE, ApacheKafkaBroker
from .polling import poll_until
from .ports import free_ports
from .processes import stop_all

# What a cluster changes of the compose file's one-node settings: the group offsets and
# the transaction state as safe as the project's topics (three copies, two in sync).
CLUSTER_SETTINGS = {
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
}


class ApacheKafkaCluster:
    """`size` Apache Kafka nodes on 127.0.0.1, the first on `port` (free when None), the
    others on free ports; node n keeps its data in `data_dir`/node-n and logs to
    `log_path` with `-n` before its suffix. The surface of one broker (`start`, `stop`,
    `bootstrap`, `port`), and its `nodes` for the tests that stop some of them."""

    def __init__(
        self,
        size: int,
        port: int | None = None,
        *,
        data_dir: Path,
        log_path: Path | str | None,
        compose_path: Path = COMPOSE_FILE,
    ):
        self.data_dir = Path(data_dir)
        chosen = free_ports(2 * size)
        ports = [port or chosen[0], *chosen[1:size]]
        controller_ports = chosen[size:]
        voters = {number: cport for number, cport in enumerate(controller_ports, start=1)}
        self.nodes = [
            ApacheKafkaBroker(
                ports[number - 1],
                data_dir=self.data_dir / f"node-{number}",
                log_path=node_log(log_path, number),
                compose_path=compose_path,
                node_id=number,
                controller_port=voters[number],
                voters=voters,
                overrides=CLUSTER_SETTINGS,
            )
            for number in range(1, size + 1)
        ]

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def bootstrap_servers(self) -> list[str]:
        return [node.bootstrap for node in self.nodes]

    @property
    def bootstrap(self) -> str:
        return ",".join(self.bootstrap_servers)

    def start(self, timeout: float = 120.0) -> ApacheKafkaCluster:
        """Start every node not running, then wait for each (a node answers only once a quorum of
        them runs, so they cannot be started one after another), and until each lists
        every other: a topic created before would get fewer replicas (topics.py asks the
        cluster its size)."""
        try:
            for node in self.nodes:
                if not node.running:  # a node left running keeps its process
                    node.launch()
            for node in self.nodes:
                node.wait_ready(timeout)
            self.wait_whole(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def running(self) -> bool:
        """Whether every node runs (a server's `running`)."""
        return all(node.running for node in self.nodes)

    def wait_whole(self, timeout: float) -> None:
        """Wait until every node lists every node unfenced (a RuntimeError after
        `timeout` seconds)."""
        ids = {node.node_id for node in self.nodes}
        if not poll_until(
            lambda: all(node.unfenced_brokers() >= ids for node in self.nodes),
            timeout,
            interval=0.2,
        ):
            raise RuntimeError(f"the Kafka nodes {self.bootstrap} did not all list {sorted(ids)}")

    def stop(self) -> None:
        """SIGTERM to every node at once (one by one, the last would wait for a quorum
        that left before it), SIGKILL to those still running after STOP_TIMEOUT."""
        running = [node for node in self.nodes if node.process]
        stop_all([node.process for node in running], ApacheKafkaBroker.STOP_TIMEOUT)
        for node in running:
            node.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def node_log(log_path: Path | str | None, number: int) -> str | None:
    """kafka.log -> kafka-2.log for node 2 (None: no log)."""
    if log_path is None:
        return None
    path = Path(log_path)
    return str(path.with_name(f"{path.stem}-{number}{path.suffix}"))
