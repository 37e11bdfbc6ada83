"""The project's real processes, started by tests as a deployment starts them.

The API through `compose/start-api.sh` (granian), the relay as `manage.py run_relay`, the
worker as `manage.py run_worker`, each in its own session with its output in a file,
against scratch databases created on the test PostgreSQL server, the test Redis and the
session's broker. Used by the compose
tests (the start scripts) and by the tests that break things under load (test_faults.py,
test_real_broker.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import string
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from email.message import Message
from pathlib import Path
from urllib.parse import quote

import psycopg2
from django.conf import settings
from psycopg2 import sql

from devstack.polling import poll_until
from devstack.ports import free_port, url_answers
from devstack.processes import child_pids, start, stop
from orderstream.kafka import KafkaError, TopicPartition, make_consumer

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START_API = ROOT / "compose" / "start-api.sh"


# ------------------------------------------------------------------------------
# Scratch databases on the test PostgreSQL server
# ------------------------------------------------------------------------------
def random_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(50))


def server_facts() -> dict:
    """Host, port and credentials of the PostgreSQL server the test suite uses."""
    config = settings.DATABASES["default"]
    return {
        "host": config["HOST"] or "127.0.0.1",
        "port": int(config["PORT"] or 5432),
        "user": config["USER"] or "postgres",
        "password": config["PASSWORD"] or "",
    }


def connect(dbname: str):
    conn = psycopg2.connect(dbname=dbname, connect_timeout=5, **server_facts())
    conn.autocommit = True
    return conn


def query(dbname: str, sql: str, params=()) -> list[tuple]:
    """The rows of one statement run on its own connection to `dbname` (autocommit)."""
    conn = connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        conn.close()


@contextlib.contextmanager
def scratch_databases(prefix: str = "orderstream_compose") -> Iterator[dict[str, str]]:
    """Two fresh databases (`default`, `worker`), dropped on exit."""
    names = {alias: f"{prefix}_{uuid.uuid4().hex[:10]}_{alias}" for alias in ("default", "worker")}
    admin = connect("postgres")
    try:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield names
    finally:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        admin.close()


def dsn(dbname: str) -> str:
    facts = server_facts()
    auth = quote(facts["user"]) + (f":{quote(facts['password'])}" if facts["password"] else "")
    return f"postgres://{auth}@{facts['host']}:{facts['port']}/{dbname}"


def terminate_backends(dbname: str) -> int:
    """Cut every connection to `dbname` but the one asking; return how many were cut."""
    conn = connect("postgres")
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [dbname],
            )
            return cursor.fetchone()[0]
    finally:
        conn.close()


# ------------------------------------------------------------------------------
# Environment and processes
# ------------------------------------------------------------------------------
# Settings a test run passes on to the processes it starts when they are set (to look into
# a test's processes: e.g. LOG_LEVELS=kafka.coordinator=DEBUG).
PASSED_ON = ("LOG_LEVEL", "LOG_LEVELS")


def script_env(scratch: dict[str, str], topics, home: Path, **extra: str) -> dict[str, str]:
    """A container-like environment: only what the compose file would set.

    HOME is the test's own directory, apart from that of a `make run` stack on this machine.
    """
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "orderstream.settings.production",
        "DJANGO_SECRET_KEY": random_secret_key(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "API_POSTGRES_DSN": dsn(scratch["default"]),
        "WORKER_POSTGRES_DSN": dsn(scratch["worker"]),
        "KAFKA_BROKERS": ",".join(settings.KAFKA_BROKERS),
        "KAFKA_CLIENT": settings.KAFKA_CLIENT,
        "REDIS_ADDR": settings.REDIS_URL,
        "ORDERS_EVENTS_TOPIC": topics.ORDERS_EVENTS_TOPIC,
        "ORDERS_ACK_TOPIC": topics.ORDERS_ACK_TOPIC,
        "ORDERS_DLQ_TOPIC": topics.ORDERS_DLQ_TOPIC,
        "ORDERS_EVENTS_PARTITIONS": str(topics.ORDERS_EVENTS_PARTITIONS),
        "WORKER_GROUP": topics.WORKER_GROUP,
        "ACK_RECORDER_GROUP": topics.ACK_RECORDER_GROUP,
        "KAFKA_MAX_POLL_INTERVAL_MS": str(settings.KAFKA_MAX_POLL_INTERVAL_MS),
        "KAFKA_SESSION_TIMEOUT_MS": str(settings.KAFKA_SESSION_TIMEOUT_MS),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.KAFKA_HEARTBEAT_INTERVAL_MS),
        "DB_WAIT_TIMEOUT": "10",
        # No fixed metrics ports: tests run beside `make run` and each other (a Deployment
        # gives each of its relays and workers a free one).
        "WORKER_METRICS_PORT": "0",
        "RELAY_METRICS_PORT": "0",
        **coverage_env(),
        **{name: os.environ[name] for name in PASSED_ON if name in os.environ},
        **extra,
    }


def coverage_env() -> dict[str, str]:
    """What coverage (`make test`, `.coveragerc`'s `patch = subprocess`) hands to child
    processes, so the processes these tests start are measured too."""
    return {name: value for name, value in os.environ.items() if name.startswith("COVERAGE_")}


class Launched:
    """A command (or a start script) running in its own session, its output in a file."""

    def __init__(
        self,
        command: Path | Sequence[str],
        env: dict[str, str],
        log_path: Path,
        *,
        metrics_port: int = 0,
    ):
        self.log_path = log_path
        self.metrics_port = metrics_port  # where its Prometheus metrics are served (0: off)
        self._log = open(log_path, "wb")
        argv = [str(command)] if isinstance(command, Path) else list(command)
        self.process = start(
            argv, with_parent=False, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def assert_running(self) -> None:
        assert self.process.poll() is None, (
            f"exited with {self.process.returncode}:\n{self.output()}"
        )

    def command_line(self) -> str:
        raw = Path(f"/proc/{self.process.pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode()

    def stop(self, timeout: float = 25.0) -> int:
        """SIGTERM and wait, as `docker compose stop` does."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def cleanup(self) -> None:
        """End the process group if it still runs: SIGTERM (its processes stop cleanly and
        write their coverage data), SIGKILL after 10 s."""
        stop(self.process, 10, group=True, kill_wait=10)
        self._log.close()


def wait_until(predicate, timeout: float, what: str, launched: Launched | None = None):
    """`predicate()` once it is truthy; an AssertionError after `timeout` seconds or as
    soon as `launched` has exited (with its output)."""

    def check():
        if launched is not None:
            launched.assert_running()
        return predicate()

    result = poll_until(check, timeout, interval=0.2)
    if result:
        return result
    details = f"\n{launched.output()}" if launched else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{details}")


def http_get(url: str, timeout: float = 2) -> tuple[int, Message, bytes] | None:
    """Status, headers (names case-insensitive, as HTTP's) and body of a GET; None when
    nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Process `pid` runs: it exists and is no zombie (dead, not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


# ------------------------------------------------------------------------------
# A deployment of one test: API instances and order workers
# ------------------------------------------------------------------------------
class ApiInstance:
    """One API server (start-api.sh: granian's main process) serving on its own free port."""

    def __init__(self, launched: Launched, port: int):
        self.launched = launched
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def worker_pids(self) -> list[int]:
        return child_pids(self.launched.process.pid)


class Deployment:
    """The API instances and order workers one test starts; every one is killed on exit.

    `env` is `script_env` plus what tests under load need: the test settings' short
    consumer-group timeouts (6 s session and poll interval, 300 ms heartbeat, set by
    script_env), the test settings' short fetch wait (the embedded broker answers an empty
    fetch only after it) and a worker stats line every 5 s.
    """

    def __init__(
        self, scratch: dict[str, str], topics, home: Path, measured: bool = True, **extra: str
    ):
        self.home = home
        self.scratch = scratch
        self.env = script_env(
            scratch,
            topics,
            home,
            KAFKA_FETCH_MAX_WAIT_MS=str(settings.KAFKA_FETCH_MAX_WAIT_MS),
            WORKER_STATS_INTERVAL="5",
            **extra,
        )
        if not measured:  # a test that times its processes: no coverage tracing in them
            for name in coverage_env():
                del self.env[name]
        self.group = topics.WORKER_GROUP
        self.events_topic = topics.ORDERS_EVENTS_TOPIC
        self.partitions = topics.ORDERS_EVENTS_PARTITIONS
        self.started: list[Launched] = []
        self.workers: list[Launched] = []
        self.relays: list[Launched] = []
        self.apis: list[ApiInstance] = []

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc) -> None:
        for launched in reversed(self.started):
            launched.cleanup()

    def _launch(
        self, command: Path | Sequence[str], name: str, metrics_port: int = 0, **extra: str
    ) -> Launched:
        log_path = self.home / f"{name}-{len(self.started)}.log"
        launched = Launched(command, {**self.env, **extra}, log_path, metrics_port=metrics_port)
        self.started.append(launched)
        return launched

    def launch(
        self, apis: int = 1, api_workers: int = 2, workers: int = 2, relays: int = 1
    ) -> None:
        """Migrate, start `apis` API servers, `relays` outbox relays and `workers`
        order workers, and return once every API answers and the workers share every
        partition."""
        self.migrate_worker_database()
        for _ in range(apis):
            self.start_api(workers=api_workers)
        for _ in range(relays):
            self.start_relay()
        for _ in range(workers):
            self.start_worker()
        self.wait_until_serving()
        self.wait_until_consuming()

    def migrate_worker_database(self) -> None:
        """What start-worker.sh does before it execs the worker, done once for all workers."""
        self.migrate_database("worker")

    def migrate_database(self, alias: str) -> None:
        """What a start script does before it execs its process (`compose/prestart.py`)."""
        result = subprocess.run(
            [sys.executable, "compose/prestart.py", alias, "--timeout", "10"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def start_api(self, workers: int = 2, threads: int = 8, **extra: str) -> ApiInstance:
        port = free_port()
        launched = self._launch(
            START_API,
            "api",
            API_BIND_HOST="127.0.0.1",
            API_PORT=str(port),
            API_WORKERS=str(workers),
            API_WRITE_THREADS=str(threads),
            **extra,
        )
        api = ApiInstance(launched, port)
        self.apis.append(api)
        return api

    def start_relay(self, **extra: str) -> Launched:
        port = free_port()
        relay = self._launch(
            [sys.executable, "manage.py", "run_relay", f"--metrics-port={port}"],
            "relay",
            port,
            **extra,
        )
        self.relays.append(relay)
        return relay

    def start_worker(self) -> Launched:
        port = free_port()
        worker = self._launch(
            [sys.executable, "manage.py", "run_worker", f"--metrics-port={port}"], "worker", port
        )
        self.workers.append(worker)
        return worker

    def restart_worker(self, worker: Launched) -> Launched:
        """Forget a worker that was stopped or killed and start another in its place."""
        worker.cleanup()
        self.workers.remove(worker)
        return self.start_worker()

    def wait_until_serving(self, timeout: float = 60) -> None:
        for api in self.apis:
            wait_until(
                lambda api=api: url_answers(f"{api.base_url}/health"),
                timeout,
                f"/health of {api.base_url}",
                api.launched,
            )
            wait_until(lambda api=api: len(api.worker_pids()) >= 1, timeout, "API workers")

    def wait_until_consuming(self, timeout: float = 60) -> None:
        """Every worker holds partitions and each partition has one holder."""
        wait_until(
            lambda: partitions_shared(self.workers, self.partitions),
            timeout,
            f"the workers of {self.group} to share every partition",
        )

    def log_excerpts(self, count: int = 12) -> str:
        """The last warnings and errors of every process (for a failing test's message)."""
        parts = []
        for launched in self.started:
            text = launched.log_path.read_text(errors="replace")
            lines = [line for line in text.splitlines() if " WARNING " in line or "ERROR" in line]
            parts.append(f"--- {launched.log_path.name}:\n" + "\n".join(lines[-count:]))
        return "\n" + "\n".join(parts)

    def group_lag(self) -> int | None:
        return group_lag(self.group, self.events_topic)


@contextlib.contextmanager
def fault_deployment(prefix: str, topics, home: Path) -> Iterator[tuple[dict, Deployment]]:
    """Scratch databases and the deployment the tests under load break things in: one
    API server with 2 workers, a relay and two order workers, launched; all gone on
    exit."""
    with scratch_databases(prefix) as scratch, Deployment(scratch, topics, home) as deployment:
        deployment.launch(apis=1, api_workers=2, workers=2)
        yield scratch, deployment


_PARTITIONS_CHANGE = re.compile(r"partitions (assigned|revoked|lost): \[([\d, ]*)\]")


def worker_partitions(worker: Launched) -> set[int]:
    """The partitions the worker holds now, from its log's assigned/revoked/lost lines."""
    held: set[int] = set()
    for change, numbers in _PARTITIONS_CHANGE.findall(worker.log_path.read_text(errors="replace")):
        partitions = {int(n) for n in numbers.split(",") if n.strip()}
        held = held | partitions if change == "assigned" else held - partitions
    return held


def partitions_shared(workers: list[Launched], partitions: int) -> bool:
    """Every partition is held by exactly one of the (running) workers."""
    for worker in workers:
        worker.assert_running()
    held = [worker_partitions(worker) for worker in workers]
    return all(held) and sorted(p for h in held for p in h) == list(range(partitions))


def group_lag(group: str, topic: str) -> int | None:
    """Events of `topic` the group has not committed yet (None: the broker did not say)."""

    try:
        consumer = make_consumer(group_id=group)
    except KafkaError:
        return None
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        ends = consumer.end_offsets(partitions)
        return sum(ends[tp] - (consumer.committed(tp) or 0) for tp in partitions)
    except (KafkaError, TypeError):
        return None
    finally:
        consumer.close(autocommit=False)
