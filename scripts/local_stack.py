#!/usr/bin/env python
"""The local stack behind `make run` and `make test`.

    python scripts/local_stack.py run      prepare, then serve the API and run the worker
    python scripts/local_stack.py test     prepare PostgreSQL and Redis, then run pytest
    python scripts/local_stack.py prepare  prepare only (databases, Redis, broker, topics)
    python scripts/local_stack.py broker   only the embedded broker, in the foreground
    python scripts/local_stack.py manage CMD [ARGS]   manage.py CMD with the local values

Environment: the values of `local.env` are used where the shell does not set them.
Preparing means: check PostgreSQL and create the two databases if missing, check Redis,
start the embedded Tansu broker when KAFKA_BROKERS does not answer (loopback only),
create the topics, migrate both databases and create the local admin user.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orderstream.devstack.ports import port_answers  # noqa: E402
from orderstream.devstack.tansu import TansuBroker  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class StackError(RuntimeError):
    """A service the stack needs is missing; the message says which and what to do."""


def load_local_env(path: Path = ROOT / "local.env") -> None:
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            os.environ.setdefault(name.strip(), value.strip())


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


def check_redis() -> None:
    import redis

    addr = os.environ["REDIS_ADDR"]
    url = addr if "://" in addr else f"redis://{addr}/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise StackError(
            f"Redis is not reachable at {addr} ({exc}).\n"
            "Start it, or point REDIS_ADDR elsewhere, e.g. REDIS_ADDR=host:6379 make run"
        ) from None


def ensure_broker() -> TansuBroker | None:
    """Return a started embedded broker, or None when KAFKA_BROKERS already answers."""
    first = os.environ["KAFKA_BROKERS"].split(",")[0].strip()
    parts = urlsplit(f"//{first}")
    host, port = parts.hostname or "localhost", parts.port or 9092
    if port_answers(host, port):
        print(f"using the Kafka broker at {first}")
        return None
    if host not in LOOPBACK:
        raise StackError(
            f"Kafka does not answer at {first}. Start it, or unset KAFKA_BROKERS to use "
            "the embedded broker on 127.0.0.1:29092."
        )
    log_path = ROOT / "tansu.log"
    broker = TansuBroker(port=port, log_path=str(log_path)).start()
    print(f"started the embedded Tansu broker on {broker.bootstrap} (log: {log_path.name})")
    return broker


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


def prepare(with_broker: bool) -> TansuBroker | None:
    ensure_database("API_POSTGRES_DSN")
    ensure_database("WORKER_POSTGRES_DSN")
    check_redis()
    if not with_broker:
        return None
    broker = ensure_broker()
    try:
        setup_django()
        migrate_and_seed()
    except BaseException:
        if broker:
            broker.stop()
        raise
    return broker


def run_services(broker: TansuBroker | None) -> int:
    """Run gunicorn and the worker in the foreground until Ctrl-C or one of them exits."""
    port = os.environ.get("API_PORT", "8080")
    python = sys.executable
    bindir = Path(python).parent
    commands = {
        "api": [str(bindir / "gunicorn"), "orderstream.wsgi", "-c", str(ROOT / "gunicorn.conf.py")],
        "worker": [python, "manage.py", "run_worker"],
    }
    children = {name: subprocess.Popen(cmd, cwd=ROOT) for name, cmd in commands.items()}
    print(
        f"\nOrderStream is up:\n"
        f"  API          http://127.0.0.1:{port}/orders  (health: /health)\n"
        f"  Swagger UI   http://127.0.0.1:{port}/docs\n"
        f"  Admin        http://127.0.0.1:{port}/admin/  "
        f"(user {os.environ.get('LOCAL_ADMIN_USER', 'admin')})\n"
        f"  Kafka        {os.environ['KAFKA_BROKERS']}\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
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
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if broker:
            broker.stop()
        print("stopped")
    return exit_code


def run_broker(broker: TansuBroker | None) -> int:
    """Keep the embedded broker in the foreground until Ctrl-C (for running parts apart)."""
    if broker is None:
        return 0  # one already answers at KAFKA_BROKERS
    try:
        return broker.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()


def run_tests(pytest_args: list[str]) -> int:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "orderstream.settings.test"}
    return subprocess.call(
        [sys.executable, "-m", "pytest", "--create-db", *pytest_args], cwd=ROOT, env=env
    )


def main(argv: list[str]) -> int:
    load_local_env()
    command = argv[0] if argv else "run"
    try:
        if command == "run":
            return run_services(prepare(with_broker=True))
        if command == "prepare":
            broker = prepare(with_broker=True)
            if broker:
                broker.stop()
            return 0
        if command == "broker":
            return run_broker(ensure_broker())
        if command == "manage":
            os.chdir(ROOT)
            os.execv(sys.executable, [sys.executable, "manage.py", *argv[1:]])
        if command == "test":
            prepare(with_broker=False)  # the test suite starts its own broker
            return run_tests(argv[1:])
    except StackError as exc:
        print(f"\nCannot start: {exc}", file=sys.stderr)
        return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
