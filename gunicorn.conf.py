"""gunicorn settings for the API (local stack and container); GUNICORN_CMD_ARGS overrides."""

import os
import shutil
import tempfile
from pathlib import Path

bind = f"{os.environ.get('API_BIND_HOST', '127.0.0.1')}:{os.environ.get('API_PORT', '8080')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads: a request waiting for its ACK holds one thread, not a whole process. GET and
# HEAD requests (/health, /ready, reads) have GUNICORN_READ_THREADS threads of their own
# besides these, so they never queue behind POSTs; a quit signal cannot hang a worker
# (orderstream/gunicorn_worker.py).
worker_class = "orderstream.gunicorn_worker.ApiThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = 60
graceful_timeout = 20
# A new worker serves once its ACK listener is positioned, or after this many seconds.
LISTENER_READY_TIMEOUT = 10
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG", "0") == "1" else None
# LOG_FORMAT=json: gunicorn's own lines (start, workers, access) as JSON too, like Django's
# (orderstream/log_format.py; the settings refuse a value other than text or json).
if os.environ.get("LOG_FORMAT", "text").strip().lower() == "json":
    logger_class = "orderstream.log_format.GunicornJsonLogger"


# Prometheus multiprocess mode: each worker writes its counters to files in this
# directory, and GET /metrics (any worker) sums them (orderstream/metrics.py).
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
made_metrics_dir: Path | None = None  # the temporary one on_starting made, if any


def on_starting(server):
    """Give the workers a fresh metrics directory, before the first one is forked.

    PROMETHEUS_MULTIPROC_DIR when set (its old files are removed: counters start at 0 with
    the server, as Prometheus expects of a restarted target), else a new temporary one,
    removed at exit. Set here, in the master, so that every worker inherits it before it
    imports prometheus_client.
    """
    global made_metrics_dir
    given = os.environ.get(METRICS_DIR_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
    else:
        made_metrics_dir = Path(tempfile.mkdtemp(prefix="orderstream-metrics-"))
        os.environ[METRICS_DIR_ENV] = str(made_metrics_dir)


def on_exit(server):
    """Remove the metrics directory made by on_starting (one given is left as it is)."""
    if made_metrics_dir is not None:
        shutil.rmtree(made_metrics_dir, ignore_errors=True)


def child_exit(server, worker):
    """Tell prometheus_client a worker is gone (its live gauges stop counting; its
    counters keep adding up)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Start this worker's ACK listener.

    Runs in the worker process after the fork: Kafka clients and their threads are never
    created in the master (they would not survive the fork). A failure here is logged,
    never raised: a raise is a WORKER_BOOT_ERROR, on which the master halts the whole
    server; the listener is built again on first use.
    """
    from orders_api.ack_wait import process_listener

    try:
        if not process_listener.start(ready_timeout=LISTENER_READY_TIMEOUT):
            worker.log.warning(
                "ACK listener not ready after %ss (no broker?): serving anyway; POSTs "
                "answer 202 until it is",
                LISTENER_READY_TIMEOUT,
            )
    except Exception:
        worker.log.exception("could not start the ACK listener; retried on first use")


def worker_exit(server, worker):
    """Stop the ACK listener's thread."""
    from orders_api.ack_wait import process_listener

    process_listener.shutdown()
