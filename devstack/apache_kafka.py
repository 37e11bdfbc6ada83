"""A real Apache Kafka broker (KRaft, one node: broker + controller) as a child process.

The second local broker beside the embedded Tansu one (tansu.py), with the same surface; a
node of a cluster too (kafka_cluster.py: its node id, the quorum's voters, its settings).
Its jars come from Maven Central through `kafka-pom.xml` into `.cache/apache-kafka/<version>/lib`
(downloaded once; needs `mvn` and a Java 17+ `java`). Its settings are those of the compose
file's `kafka` service, translated as the apache/kafka image does, with only the listeners,
the controller quorum and `log.dirs` moved to 127.0.0.1 ports and a local data directory.
Unlike Tansu it keeps its data: a restart on the same data directory keeps topics and messages.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from .ports import free_port, port_answers
from .processes import start
from .server import ChildServer

# The one pin of the broker version; compose/docker-compose.yml uses the same image tag.
KAFKA_VERSION = "4.1.2"
ROOT = Path(__file__).resolve().parents[1]
POM = Path(__file__).with_name("kafka-pom.xml")
COMPOSE_FILE = ROOT / "compose" / "docker-compose.yml"
CACHE_DIR = ROOT / ".cache" / "apache-kafka"

# Variables the apache/kafka image does not turn into server properties.
IMAGE_NON_PROPERTIES = {
    "KAFKA_VERSION",
    "KAFKA_HEAP_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_JMX_HOSTNAME",
}
# A modest heap; serial GC and the C1 compiler only: fewer threads and less compiling at
# start-up, which matters on a 2-core machine (peak throughput does not, for a dev broker).
JVM_FLAGS = [
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
]
LOG4J2_PROPERTIES = """\
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
"""


class ToolMissing(RuntimeError):
    """`java` or `mvn` is not installed."""


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise ToolMissing(
            f"Apache Kafka needs {' and '.join(missing)} on PATH: install a Java 17+ runtime"
            " and Maven (Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven)"
        )


def kafka_lib_dir(version: str = KAFKA_VERSION) -> Path:
    """The directory of the broker's jars, downloaded with Maven on first use."""
    lib = CACHE_DIR / version / "lib"
    if lib.is_dir():
        return lib
    require_tools("mvn")
    partial = lib.with_name("lib.partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"Downloading Apache Kafka {version} from Maven Central into {lib} (once) ...")
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-Dlib.dir={partial}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"mvn could not fetch Apache Kafka {version}:\n{result.stdout}{result.stderr}"
        )
    partial.rename(lib)  # only a complete download becomes the cache
    return lib


_DEFAULT = re.compile(r"\$\{\w+:?-([^}]*)\}")


def compose_kafka_settings(compose_path: Path = COMPOSE_FILE) -> dict[str, str]:
    """The server properties of the compose file's `kafka` service, plus its `cluster.id`
    (`service_kafka_settings`)."""
    service = yaml.safe_load(Path(compose_path).read_text())["services"]["kafka"]
    return service_kafka_settings(service)


def service_kafka_settings(service: dict) -> dict[str, str]:
    """The server properties of a compose service running the apache/kafka image, plus its
    `cluster.id`.

    The apache/kafka image's rule: each `KAFKA_` variable (but the JVM/logging ones) becomes
    a property: prefix dropped, lowercased, `___` -> `-`, `__` -> `_`, `_` -> `.`. `CLUSTER_ID`
    (the id the log directory is formatted with) is returned as `cluster.id`. A
    `${VARIABLE:-default}` is resolved to its default; this reads no environment.
    """
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    settings = {}
    for name, raw in environment.items():
        value = _DEFAULT.sub(lambda match: match.group(1), "" if raw is None else str(raw))
        if "$" in value.replace("$$", ""):
            raise ValueError(f"{name}: only ${{VARIABLE:-default}} is supported, got {raw!r}")
        value = value.replace("$$", "$")
        if name == "CLUSTER_ID":
            settings["cluster.id"] = value
        elif name.startswith("KAFKA_") and name not in IMAGE_NON_PROPERTIES:
            key = name.removeprefix("KAFKA_").lower()
            key = key.replace("_", ".").replace("...", "-").replace("..", "_")
            settings[key] = value
    return settings


def local_settings(
    settings: dict[str, str],
    port: int,
    controller_port: int,
    log_dir: Path,
    *,
    voters: dict[int, int] | None = None,
) -> dict[str, str]:
    """`settings` on 127.0.0.1: one client listener on `port`, the controller on
    `controller_port`, the data in `log_dir`; every other setting is kept.

    The client listener keeps the name of the inter-broker listener (else the first
    non-controller one), so its security protocol in the map still applies. `voters`
    (node id -> controller port) is the quorum of a cluster; by default this node alone.
    """
    controller = settings.get("controller.listener.names", "CONTROLLER").split(",")[0]
    names = [item.split("://")[0] for item in settings.get("listeners", "").split(",") if item]
    client = settings.get("inter.broker.listener.name") or next(
        (name for name in names if name != controller), "PLAINTEXT"
    )
    local = dict(settings)
    local["listeners"] = f"{client}://127.0.0.1:{port},{controller}://127.0.0.1:{controller_port}"
    local["advertised.listeners"] = f"{client}://127.0.0.1:{port}"
    local["inter.broker.listener.name"] = client
    local.setdefault("controller.listener.names", controller)
    protocols = dict(
        item.split(":", 1)
        for item in settings.get("listener.security.protocol.map", "").split(",")
        if item
    )
    for name in (client, controller):
        protocols.setdefault(name, "PLAINTEXT")
    local["listener.security.protocol.map"] = ",".join(f"{k}:{v}" for k, v in protocols.items())
    voters = voters or {int(settings.get("node.id", "1")): controller_port}
    local["controller.quorum.voters"] = ",".join(
        f"{node}@127.0.0.1:{port}" for node, port in voters.items()
    )
    local["log.dirs"] = str(log_dir)
    return local


def properties_text(settings: dict[str, str]) -> str:
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("\n", "\\n")

    return "".join(f"{key}={escape(value)}\n" for key, value in sorted(settings.items()))


class ApacheKafkaBroker(ChildServer):
    """An Apache Kafka broker on 127.0.0.1:`port` keeping its data in `data_dir`.

    Configured from the compose file's `kafka` service (see `compose_kafka_settings`), with
    `overrides` on top; a node of a cluster gets its `node_id` and the quorum's `voters`
    (node id -> controller port, its own `controller_port` among them). `data_dir` holds
    server.properties, log4j2.properties and the log directory `kafka-logs`, formatted on
    the first start only. Ports and data stay with the object: a stopped node started
    again is the same node.
    """

    STOP_TIMEOUT = 30.0  # SIGTERM is a controlled shutdown that flushes the logs

    def __init__(
        self,
        port: int | None = None,
        *,
        data_dir: Path,
        log_path: str | None = None,
        compose_path: Path = COMPOSE_FILE,
        node_id: int | None = None,
        controller_port: int | None = None,
        voters: dict[int, int] | None = None,
        overrides: dict[str, str] | None = None,
        jvm_flags: list[str] = JVM_FLAGS,
    ):
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.data_dir = Path(data_dir)
        self.log_path = log_path
        self.compose_path = compose_path
        self.overrides = {**(overrides or {})}
        if node_id is not None:
            self.overrides["node.id"] = str(node_id)
        self.voters = voters
        self.jvm_flags = jvm_flags
        self.node_id = int(self.server_settings()[0].get("node.id", "1"))
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, main: str, *args: str) -> list[str]:
        classpath = str(kafka_lib_dir() / "*")
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        return ["java", *self.jvm_flags, log4j, "-cp", classpath, main, *args]

    def server_settings(self) -> tuple[dict[str, str], str]:
        """The node's server properties and the cluster id its log directory gets."""
        settings = {**compose_kafka_settings(self.compose_path), **self.overrides}
        cluster_id = settings.pop("cluster.id")
        log_dir = self.data_dir / "kafka-logs"
        local = local_settings(
            settings, self.port, self.controller_port, log_dir, voters=self.voters
        )
        return local, cluster_id

    def _configure(self) -> tuple[Path, str]:
        """Write server.properties and log4j2.properties; return the file and cluster id."""
        local, cluster_id = self.server_settings()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        server_properties = self.data_dir / "server.properties"
        server_properties.write_text(properties_text(local))
        return server_properties, cluster_id

    def start(self, timeout: float = 60.0) -> ApacheKafkaBroker:
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the process (formatting the log directory the first time), not waiting
        for it: the nodes of a cluster answer only once a quorum of them runs."""
        require_tools("java")
        server_properties, cluster_id = self._configure()
        with open(self.log_path or "/dev/null", "ab") as log:
            if not (self.data_dir / "kafka-logs" / "meta.properties").exists():
                format_command = self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(server_properties),
                )
                subprocess.run(format_command, stdout=log, stderr=subprocess.STDOUT, check=True)
            self.process = start(
                self._java("kafka.Kafka", str(server_properties)),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float) -> None:
        self.wait_answering(
            self._answers, timeout, f"Apache Kafka on {self.bootstrap}", interval=0.2
        )

    def _answers(self) -> bool:
        """The broker lists itself unfenced and its group coordinator answers.

        The first group request makes the broker create `__consumer_offsets` (50
        partitions, from the compose settings); until they are loaded every consumer gets
        NOT_COORDINATOR, so a worker started right after would wait seconds for its group.
        """
        from orderstream.kafka import KafkaError

        with self._admin() as admin:
            try:
                if admin is None or self.node_id not in unfenced(admin):
                    return False
                admin.describe_groups(["orderstream-broker-ready"])
                return True
            except KafkaError:
                return False

    def unfenced_brokers(self) -> set[int]:
        """The ids of the brokers this one lists unfenced now (none while it does not
        answer): a cluster is whole once each of its nodes lists all."""
        from orderstream.kafka import KafkaError

        with self._admin() as admin:
            try:
                return unfenced(admin) if admin else set()
            except KafkaError:
                return set()

    @contextlib.contextmanager
    def _admin(self):
        """An admin client of this broker alone, or None while it does not answer."""
        if not port_answers("127.0.0.1", self.port):
            yield None
            return
        from orderstream.kafka import KafkaAdminClient, KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                bootstrap_timeout_ms=2000,
                request_timeout_ms=2000,
            )
        except KafkaError:
            yield None
            return
        try:
            yield admin
        finally:
            admin.close()


def unfenced(admin) -> set[int]:
    """The ids of the brokers a (kafka-python) admin client's cluster lists unfenced."""
    brokers = admin.describe_cluster()["brokers"]
    return {broker["broker_id"] for broker in brokers if not broker.get("is_fenced")}
