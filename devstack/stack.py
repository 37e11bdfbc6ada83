"""Bringing up the local stack's services: use what answers, else start an embedded one.

`scripts/local_stack.py` (`make run`, `make test`) calls `ensure_*` for PostgreSQL, Redis and
the broker, each at its configured address (from the environment), and `ensure_database`
for the two databases; `Stack` keeps what it started, stops it in reverse order and says
what it did in the start banner.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from .brokers import embedded_broker, kafka_nodes
from .ports import port_answers

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class StackError(RuntimeError):
    """A service the stack needs is missing; the message says which and what to do."""


class Stack:
    """The embedded services this run started, stopped in reverse order; what it printed."""

    def __init__(self, data_dir: Path, throwaway: bool, durable: bool | None = None):
        self.data_dir = data_dir
        self.throwaway = throwaway
        # PostgreSQL's and Redis's durability settings (DataDirServer): by default a
        # throwaway stack trades them for speed.
        self.durable = (not throwaway) if durable is None else durable
        self.started: list = []
        self.banner: list[str] = []

    def start(self, name: str, service, where: str):
        """Start `service` at `where`; the banner gets a line for it, or for each of its
        `nodes` (a cluster: "Kafka 1", "Kafka 2", ...)."""
        self.started.append(service.start())
        nodes = getattr(service, "nodes", None)
        if nodes:
            for number, node in enumerate(nodes, start=1):
                self._describe(f"{name} {number}", node, f"127.0.0.1:{node.port}")
        else:
            self._describe(name, service, where)
        return service

    def _describe(self, name: str, service, where: str) -> None:
        log = getattr(service, "log_path", None)
        data = getattr(service, "data_dir", None)
        kept = "throwaway" if self.throwaway else "kept"
        details = [f"data {self._show(data)} ({kept})"] if data else ["in memory"]
        if log:
            details.append(f"log {self._show(Path(log))}")
        self.banner.append(f"  {name:<11} embedded at {where}: {', '.join(details)}")

    def use(self, name: str, where: str) -> None:
        self.banner.append(f"  {name:<11} {where} (already answering)")

    def stop(self) -> None:
        for service in reversed(self.started):
            service.stop()
        self.started.clear()
        if self.throwaway:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @staticmethod
    def _show(path: Path) -> str:
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def endpoint(address: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"//{address}")
    return parts.hostname or "localhost", parts.port or default_port


def with_port(address: str, port: int) -> str:
    """`address` (a DSN, URL or host:port) pointing at 127.0.0.1:`port` instead."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    moved = parts._replace(netloc=netloc).geturl()
    return moved if "://" in address else moved.removeprefix("//")


def must_be_loopback(host: str, port: int, what: str, variable: str) -> None:
    if host not in LOOPBACK:
        raise StackError(
            f"{what} does not answer at {host}:{port}. Start it, or point {variable} at "
            "127.0.0.1 for an embedded one."
        )


def _answering_or_embedded(
    stack: Stack, name: str, variable: str, default_port: int, build, folder: str
):
    """The server at `variable`'s address when one answers there (None is returned), else
    `build(data_dir / folder, port, throwaway=...)` started there, or on a free port for a
    throwaway stack; with the configured (host, port)."""
    host, port = endpoint(os.environ[variable], default_port)
    if port_answers(host, port):
        stack.use(name, f"{host}:{port}")
        return None, (host, port)
    must_be_loopback(host, port, name, variable)
    server = build(
        stack.data_dir / folder,
        None if stack.throwaway else port,
        throwaway=stack.throwaway,
        durable=stack.durable,
    )
    stack.start(name, server, f"127.0.0.1:{server.port}")
    return server, (host, port)


def ensure_postgres(stack: Stack) -> None:
    """Use the PostgreSQL of the two DSNs, or start an embedded one (one for both)."""
    from devstack.postgres import EmbeddedPostgres

    postgres, address = _answering_or_embedded(
        stack, "PostgreSQL", "API_POSTGRES_DSN", 5432, EmbeddedPostgres, "postgres"
    )
    for variable in ("API_POSTGRES_DSN", "WORKER_POSTGRES_DSN"):
        if postgres and endpoint(os.environ[variable], 5432) == address:
            os.environ[variable] = with_port(os.environ[variable], postgres.port)


def ensure_database(dsn_variable: str) -> None:
    """Create the database named in the DSN if missing, connecting to `postgres`."""
    import dj_database_url
    import psycopg2
    from psycopg2 import sql

    config = dj_database_url.parse(os.environ[dsn_variable])
    where = f"{config['HOST'] or 'localhost'}:{config['PORT'] or 5432}"
    try:
        conn = psycopg2.connect(
            dbname="postgres",
            user=config["USER"],
            password=config["PASSWORD"],
            host=config["HOST"],
            port=config["PORT"] or 5432,
            connect_timeout=3,
        )
    except psycopg2.OperationalError as exc:
        raise StackError(
            f"PostgreSQL is not reachable at {where} ({str(exc).strip()}).\n"
            f"Start it, or point {dsn_variable} at another server, e.g.\n"
            f"  {dsn_variable}=postgres://user:password@host:5432/{config['NAME']} make run"
        ) from None
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
            print(f"created database {config['NAME']} on {where}")
    conn.close()


def ensure_redis(stack: Stack) -> None:
    """Use the Redis of REDIS_ADDR, or start an embedded one."""
    from devstack.redis import EmbeddedRedis

    redis, _ = _answering_or_embedded(stack, "Redis", "REDIS_ADDR", 6379, EmbeddedRedis, "redis")
    if redis:
        os.environ["REDIS_ADDR"] = with_port(os.environ["REDIS_ADDR"], redis.port)


def ensure_broker(stack: Stack) -> None:
    """Use the broker at KAFKA_BROKERS, or start the embedded one BROKER names there (with
    KAFKA_NODES=3, a cluster whose first node is there; KAFKA_BROKERS then lists all)."""
    first = os.environ["KAFKA_BROKERS"].split(",")[0].strip()
    host, port = endpoint(first, 9092)
    if port_answers(host, port):
        stack.use("Kafka", first)
        return
    must_be_loopback(host, port, "Kafka", "KAFKA_BROKERS")
    kind = os.environ.get("BROKER", "tansu")
    nodes = kafka_nodes()
    # A cluster's data apart from the one node's: each was formatted for its own quorum.
    folder = kind if nodes == 1 else f"{kind}-cluster"
    broker = embedded_broker(
        kind,
        port=port,
        data_dir=stack.data_dir / folder,
        log_path=stack.data_dir / f"{folder}.log",
        nodes=nodes,
    )
    name = "Tansu" if kind == "tansu" else "Kafka"
    stack.start(name, broker, broker.bootstrap)
    if nodes > 1:  # the first node stays at the configured address; the others are added
        os.environ["KAFKA_BROKERS"] = broker.bootstrap
