"""Readiness (`GET /ready`): can the API accept writes now, and what else answers?

Liveness is `/health` (the process serves requests); readiness asks each dependency for a
cheap answer, bounded in time: both PostgreSQL databases (`SELECT 1`), Redis (`PING`) and
the broker (a TCP connection to each bootstrap address). Only the API's own database is
REQUIRED_FOR_WRITES: without it no order can be stored (503, a load balancer takes the API
out). The rest is reported, not failed on (200, status `degraded`): while the broker, the
worker's database or Redis is down, the API still accepts orders (202, the outbox keeps
them) and reads them from its own database, so taking it out would turn a loss of
freshness into an outage.
"""

from __future__ import annotations

import socket

from django.conf import settings
from django.db import connections
from django_redis import get_redis_connection

BROKER_TIMEOUT_SECONDS = 1.0


def _postgres(alias: str) -> None:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        connections[alias].close()  # the next request connects afresh
        raise


def _redis() -> None:
    get_redis_connection("default").ping()


def _broker() -> None:
    """Some bootstrap address accepts a TCP connection (no Kafka client per request)."""
    for address in settings.KAFKA_BROKERS:
        host, _, port = address.strip().rpartition(":")
        try:
            socket.create_connection(
                (host or "localhost", int(port)), BROKER_TIMEOUT_SECONDS
            ).close()
        except OSError:
            continue
        return
    raise ConnectionError(f"no broker answers at {', '.join(settings.KAFKA_BROKERS)}")


REQUIRED_FOR_WRITES = frozenset({"postgres_api"})
CHECKS = {
    "postgres_api": lambda: _postgres("default"),
    "postgres_worker": lambda: _postgres("worker"),
    "redis": _redis,
    "broker": _broker,
}


def readiness_check() -> dict[str, str]:
    """Each dependency's state: "ok", or why it is down."""
    states = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # whatever the client raises, the answer is "down"
            states[name] = f"down: {type(exc).__name__}: {str(exc).strip()[:200]}"
        else:
            states[name] = "ok"
    return states
