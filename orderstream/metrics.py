"""Prometheus metrics: the one exposition of every process, and the relay's and worker's port.

Each process keeps its counters in prometheus_client's default registry; the metrics
themselves are defined beside what they count (`orderstream/http_metrics.py`,
`orders_api/metrics.py`, `orders_api/relay/metrics.py`, `orders_api/outbox_metrics.py`,
`orders_worker/metrics.py`). Gauges that say how things are now (the outbox, the worker's
lag) are *collectors*, read when Prometheus scrapes, never kept up to date in between.

- The API (`GET /metrics`, `metrics_page`) runs as several processes: with
  `PROMETHEUS_MULTIPROC_DIR` set (orderstream/api_server.py sets it to a fresh directory) every
  process writes its counters to files there and the page sums all of them, so any
  process answers for the whole server.
- The relay and the worker are one process each: `metrics_server_start` serves their
  registry on a port of their own (RELAY_METRICS_PORT, WORKER_METRICS_PORT; 0 = off) on
  METRICS_ADDR (127.0.0.1 by default). PROMETHEUS_MULTIPROC_DIR is for the API only: a
  relay or worker that has it still shows its own figures, but also leaves files there
  that an API using the same directory would add to its own.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client import start_http_server as prometheus_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class MetricsPortInUse(CommandError):
    """The metrics port is taken (another worker or relay on this machine?): the command
    stops with this message."""


class _Exposed:
    """What one scrape shows: a registry, then some collectors (read at scrape time)."""

    def __init__(self, registry, collectors: Iterable[Collector], *, close_connections: bool):
        self.registry = registry
        self.collectors = list(collectors)
        self.close_connections = close_connections

    def collect(self):
        try:
            yield from self.registry.collect()
            for collector in self.collectors:
                yield from collector.collect()
        finally:
            if self.close_connections:
                # A scrape of the relay's or worker's port runs in a thread of its own:
                # the database connection a collector opened there is closed with it.
                connections.close_all()


def _process_registry():
    """This process's counters, or (multiprocess mode) those of every process of the
    server, summed from PROMETHEUS_MULTIPROC_DIR."""
    if not os.environ.get(MULTIPROCESS_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def metrics_page(collectors: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The Prometheus text of this server and `collectors`, and its content type."""
    exposed = _Exposed(_process_registry(), collectors, close_connections=False)
    return generate_latest(exposed), CONTENT_TYPE_LATEST


def metrics_server_start(
    *, setting: str, port: int | None = None, collectors: Iterable[Collector] = ()
) -> WSGIServer | None:
    """Serve this process's metrics and `collectors` on METRICS_ADDR, port `port` (None:
    the setting named `setting`), in a daemon thread; None when the port is 0 (off).

    Raises MetricsPortInUse when the port is taken: several workers (or relays) on one
    machine each need their own port (`--metrics-port`, or the variable per process).
    """
    port = getattr(settings, setting) if port is None else port
    if not port:
        return None
    addr = settings.METRICS_ADDR
    # One process: its own registry (in multiprocess mode too, where it reads its own file).
    exposed = _Exposed(REGISTRY, collectors, close_connections=True)
    try:
        server, _ = prometheus_http_server(port, addr=addr, registry=exposed)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise MetricsPortInUse(
            f"the metrics port {addr}:{port} ({setting}) is already in use: give each "
            f"process on this machine its own (--metrics-port, or {setting} per process), "
            "or 0 to turn metrics off"
        ) from exc
    logger.info("metrics on http://%s:%d/metrics", addr, port)
    return server


def metrics_server_stop(server: WSGIServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
