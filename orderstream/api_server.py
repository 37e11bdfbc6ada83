"""`python -m orderstream.api_server [target]`: the API served by granian.

granian (HTTP/1.1 in Rust) runs API_WORKERS processes, each serving `target` (default
`orderstream.rsgi:application`: the API in two lanes, orderstream/rsgi_lanes.py) on
API_BIND_HOST:API_PORT. SIGTERM or SIGINT stops it: each worker finishes what it serves,
and one still running after GRACEFUL_TIMEOUT seconds is killed.

Before the first worker starts, the Prometheus multiprocess directory is made ready: each
worker writes its counters there and GET /metrics (any worker) sums them
(orderstream/metrics.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops

from orderstream.log_format import log_format_from, logging_dict

DEFAULT_TARGET = "orderstream.rsgi:application"
GRACEFUL_TIMEOUT = 20
# orderstream.metrics.MULTIPROCESS_ENV, written out: importing that module here would import
# prometheus_client before the variable is set, and the forked workers would inherit a
# client that counts in memory only.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
ACCESS_LOG_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3fms'


def metrics_dir_ready() -> Path | None:
    """Give the workers a fresh metrics directory, before the first one starts.

    PROMETHEUS_MULTIPROC_DIR when set (its old files are removed: counters start at 0 with
    the server, as Prometheus expects of a restarted target), else a new temporary one,
    which is returned (the caller removes it at exit). Set in this process's environment,
    so that every worker has it before it imports prometheus_client.
    """
    given = os.environ.get(METRICS_DIR_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
        return None
    made = Path(tempfile.mkdtemp(prefix="orderstream-metrics-"))
    os.environ[METRICS_DIR_ENV] = str(made)
    return made


def server(target: str = DEFAULT_TARGET) -> Granian:
    """granian, configured from the environment (README, "Configuration")."""
    return Granian(
        target,
        address=os.environ.get("API_BIND_HOST", "127.0.0.1"),
        port=int(os.environ.get("API_PORT", "8080")),
        interface=Interfaces.RSGI,
        workers=int(os.environ.get("API_WORKERS", "2")),
        loop=Loops.asyncio,
        http=HTTPModes.http1,
        websockets=False,
        log_dictconfig=logging_dict(log_format_from(os.environ.get("LOG_FORMAT"))),
        log_access=os.environ.get("API_ACCESS_LOG", "0") == "1",
        log_access_format=ACCESS_LOG_FORMAT,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_TIMEOUT,
    )


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderstream.settings.production")
    made = metrics_dir_ready()
    try:
        server(*argv[:1]).serve()
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
