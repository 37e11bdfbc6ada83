#!/usr/bin/env python
"""The local stack behind `make run` and `make test`.

    python scripts/local_stack.py run      prepare, then serve the API and run the worker
    python scripts/local_stack.py test     prepare PostgreSQL and Redis, then run pytest
    python scripts/local_stack.py prepare  prepare only (databases, Redis, broker, topics)
    python scripts/local_stack.py services prepare and keep the services up until Ctrl-C
    python scripts/local_stack.py manage CMD [ARGS]   manage.py CMD with the local values
                                           (PostgreSQL and Redis started if none answers)
    python scripts/local_stack.py mutation [ARGS]     as `test`, plus one throwaway broker
                                           for every pytest run: scripts/mutation.py ARGS
    python scripts/local_stack.py bench [ARGS]        the whole benchmark on a stack of its
                                           own (bench/session.py; --help)
    python scripts/local_stack.py bench api|worker|capacity [ARGS]   one part with the local
                                           values, as `manage` (`python -m bench`, bench/cli.py)
    python scripts/local_stack.py bench scale-out [ARGS]   that part on a stack of its own

Environment: the values of `local.env` are used where the shell does not set them; BROKER
(`tansu`, the default, or `kafka`) chooses the embedded broker, KAFKA_NODES (1 or 3) how
many Apache Kafka nodes it runs.

Preparing means: for PostgreSQL, Redis and the broker, use the server that answers at the
configured loopback address, or start an embedded one there. `run` keeps their data in
`.local/` (so a restart keeps the orders); `test` starts throwaway ones on free ports in a
temporary folder (the suite starts its own broker). Then create the two databases if
missing, create the topics, migrate both databases and create the local admin user.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.brokers import embedded_broker  # noqa: E402
from devstack.processes import start, stop_all  # noqa: E402
from devstack.stack import (  # noqa: E402
    Stack,
    StackError,
    ensure_broker,
    ensure_database,
    ensure_postgres,
    ensure_redis,
)

LOCAL_DATA = ROOT / ".local"


# Apache Kafka answers a long poll as soon as a record comes, so a long fetch wait costs
# no latency there and saves the idle polls that local.env's short wait makes (needed by
# the embedded Tansu, which holds every fetch for the whole wait).
BROKER_DEFAULTS = {
    "kafka": {
        "KAFKA_FETCH_MAX_WAIT_MS": "500",
        "WORKER_IDLE_POLL_MS": "0",
        "ACK_RECORDER_IDLE_POLL_MS": "0",
    }
}


def load_local_env(path: Path = ROOT / "local.env") -> None:
    for name, value in BROKER_DEFAULTS.get(os.environ.get("BROKER", "tansu"), {}).items():
        os.environ.setdefault(name, value)
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            os.environ.setdefault(name.strip(), value.strip())


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderstream.settings.local")
    import django

    django.setup()


def migrate_and_seed() -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from orderstream.kafka import ensure_topics

    ensure_topics()
    for alias in ("default", "worker"):
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    print("migrated the databases `default` (API) and `worker`")
    username = os.environ.get("LOCAL_ADMIN_USER", "admin")
    password = os.environ.get("LOCAL_ADMIN_PASSWORD", "admin")
    users = get_user_model().objects
    if not users.filter(username=username).exists():
        users.create_superuser(username=username, email="", password=password)
        print(f"created the local admin user {username!r} (password from LOCAL_ADMIN_PASSWORD)")


def prepare(stack: Stack, with_broker: bool) -> None:
    """Bring up what is missing, create the databases; with the broker, topics and schema."""
    stack.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_postgres(stack)
    ensure_database("API_POSTGRES_DSN")
    ensure_database("WORKER_POSTGRES_DSN")
    ensure_redis(stack)
    if with_broker:
        ensure_broker(stack)
        setup_django()
        migrate_and_seed()
    print("Services:", *stack.banner, sep="\n", flush=True)


# How long a stopped child may take before it is killed, with what it started: longer than
# the API server's GRACEFUL_TIMEOUT (20 s), after which it kills its workers itself.
CHILD_STOP_TIMEOUT = 30.0


def api_address_free() -> None:
    """Raise StackError when the API's address (API_BIND_HOST, API_PORT) cannot be bound
    as the API server binds it (SO_REUSEADDR): the server would fail, and the stack run
    without an API."""
    host = os.environ.get("API_BIND_HOST", "127.0.0.1")
    port = int(os.environ.get("API_PORT", "8080"))
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise StackError(
                    f"the API's address {host}:{port} cannot be bound ({exc.strerror}); "
                    "set API_BIND_HOST or API_PORT."
                ) from None
            raise StackError(
                f"the API's address {host}:{port} is in use: another `make run`, or a "
                f"process left by one (`ss -ltnp 'sport = :{port}'` names it); stop it, or "
                "set API_PORT."
            ) from None


def start_child(command: list[str]) -> subprocess.Popen:
    """A child in a session of its own, so a terminal's Ctrl-C reaches this script alone,
    which stops each child with one signal; the child still dies with this script
    (devstack/processes.py `start`)."""
    return start(command, cwd=ROOT)


def run_services() -> int:
    """Run the API server, the relay and the worker in the foreground until Ctrl-C or one of them
    exits."""
    port = os.environ.get("API_PORT", "8080")
    python = sys.executable
    commands = {
        "api": [python, "-m", "orderstream.api_server"],
        "relay": [python, "manage.py", "run_relay"],
        "worker": [python, "manage.py", "run_worker"],
    }
    children = {name: start_child(cmd) for name, cmd in commands.items()}
    metrics = f"http://127.0.0.1:{port}/metrics, " + metrics_ports()
    print(
        f"\nOrderStream is up:\n"
        f"  API          http://127.0.0.1:{port}/orders  (health: /health)\n"
        f"  Swagger UI   http://127.0.0.1:{port}/docs\n"
        f"  ReDoc        http://127.0.0.1:{port}/redoc\n"
        f"  Metrics      {metrics}\n"
        f"  Admin        http://127.0.0.1:{port}/admin/  "
        f"(user {os.environ.get('LOCAL_ADMIN_USER', 'admin')})\n"
        f"  Kafka        {os.environ['KAFKA_BROKERS']}\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    return supervise(children)


def metrics_ports() -> str:
    """Where the relay and the worker serve their metrics (Django is set up by now)."""
    from django.conf import settings

    return ", ".join(
        f"{name} " + (f"http://{settings.METRICS_ADDR}:{port}/metrics" if port else "off")
        for name, port in (
            ("relay", settings.RELAY_METRICS_PORT),
            ("worker", settings.WORKER_METRICS_PORT),
        )
    )


def supervise(children: dict[str, subprocess.Popen]) -> int:
    """Wait for Ctrl-C, SIGTERM or a child's exit; then stop every child."""
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    try:
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"{name} exited with code {child.returncode}; stopping the stack")
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.2)
    finally:
        stop_children(children.values())
    return exit_code


def stop_children(children) -> None:
    """SIGTERM to each child (the API server stops its workers); a child still running
    CHILD_STOP_TIMEOUT seconds later is killed with its process group (its workers too)."""
    stop_all(children, CHILD_STOP_TIMEOUT, kill_group=True)


def wait_for_ctrl_c() -> int:
    """Keep the prepared services up in the foreground until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    return 0


def run_tests(pytest_args: list[str]) -> int:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "orderstream.settings.test"}
    return subprocess.call(
        [sys.executable, "-m", "pytest", "--create-db", *pytest_args], cwd=ROOT, env=env
    )


def run_mutation(stack: Stack, args: list[str]) -> int:
    """scripts/mutation.py (mutmut runs pytest once per mutant): one broker for all runs."""
    kind = os.environ.get("BROKER", "tansu")
    broker = embedded_broker(
        kind, port=None, data_dir=stack.data_dir / kind, log_path=stack.data_dir / f"{kind}.log"
    )
    stack.start("Tansu" if kind == "tansu" else "Kafka", broker, broker.bootstrap)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orderstream.settings.test",
        "TEST_KAFKA_BROKERS": broker.bootstrap,
    }
    return subprocess.call([sys.executable, "scripts/mutation.py", *args], cwd=ROOT, env=env)


def bench_environment() -> None:
    """The benchmark's own databases (`*_bench`) and broker (a throwaway one on a free
    port): it never writes into the stack of `make run`, and never uses its broker. Its
    relay and worker serve their metrics as under `make run`, on free ports (make run's
    may be taken)."""
    from devstack.ports import free_port

    for variable in ("API_POSTGRES_DSN", "WORKER_POSTGRES_DSN"):
        base, _, query = os.environ[variable].partition("?")
        os.environ[variable] = f"{base}_bench" + (f"?{query}" if query else "")
    os.environ["KAFKA_BROKERS"] = f"127.0.0.1:{free_port()}"
    relay_port = free_port()
    worker_port = next(port for port in iter(free_port, None) if port != relay_port)
    os.environ["RELAY_METRICS_PORT"], os.environ["WORKER_METRICS_PORT"] = map(
        str, (relay_port, worker_port)
    )


def run_bench(argv: list[str]) -> int:
    """The whole benchmark, or a part that starts its own processes (`scale-out`)."""
    if argv[:1] and argv[0] in OWN_STACK_BENCH_PARTS:
        return subprocess.call([sys.executable, "-m", "bench", *argv], cwd=ROOT)
    from bench.session import bench_session

    return bench_session(argv)


# `bench api|worker`: one part of the benchmark, run as `manage` runs (python -m bench).
BENCH_PARTS = {"api", "worker", "capacity"}
# `bench scale-out`: a part run like the whole benchmark, on a stack of its own.
OWN_STACK_BENCH_PARTS = {"scale-out"}


def main(argv: list[str]) -> int:
    # SIGTERM ends us through `finally` too (stopping the services), as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    load_local_env()
    command = argv[0] if argv else "run"
    if command not in {"run", "prepare", "services", "test", "manage", "mutation", "bench"}:
        print(__doc__, file=sys.stderr)
        return 2
    # The Python program `manage` runs: manage.py, or one part of the benchmark.
    program = ["manage.py", *argv[1:]]
    if command == "bench" and argv[1:2] and argv[1] in BENCH_PARTS:
        command, program = "manage", ["-m", "bench", *argv[1:]]
    throwaway = command in {"test", "mutation", "bench"}
    if command == "bench":
        if "--help" in argv or "-h" in argv:
            return run_bench(argv[1:])
        bench_environment()
    data_dir = Path(tempfile.mkdtemp(prefix="orderstream-test-")) if throwaway else LOCAL_DATA
    # The benchmark throws its data away but keeps make run's durability (fsync, synchronous
    # commits, Redis's append-only file): it measures the stack users run.
    stack = Stack(data_dir, throwaway=throwaway, durable=command not in {"test", "mutation"})
    try:
        if command == "run":
            api_address_free()  # before anything is started
        # The test suite and the benchmarks start their own broker.
        prepare(stack, with_broker=command not in {"test", "manage", "mutation"})
        if command == "manage":
            return subprocess.call([sys.executable, *program], cwd=ROOT)
        if command == "run":
            return run_services()
        if command == "services":
            return wait_for_ctrl_c()
        if command == "test":
            return run_tests(argv[1:])
        if command == "mutation":
            return run_mutation(stack, argv[1:])
        if command == "bench":
            return run_bench(argv[1:])
        return 0
    except StackError as exc:
        print(f"\nCannot start: {exc}", file=sys.stderr)
        return 2
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
