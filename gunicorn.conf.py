"""gunicorn settings for the API (local stack and container); GUNICORN_CMD_ARGS overrides."""

import os

bind = f"{os.environ.get('API_BIND_HOST', '127.0.0.1')}:{os.environ.get('API_PORT', '8080')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads: a request waiting for its ACK holds one thread, not a whole process.
worker_class = "gthread"
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


def post_worker_init(worker):
    """Start this worker's ACK listener.

    Runs in the worker process after the fork: Kafka clients and their threads are never
    created in the master (they would not survive the fork). A failure here is logged,
    never raised: a raise is a WORKER_BOOT_ERROR, on which the master halts the whole
    server; the listener is built again on first use.
    """
    from orders_api import runtime

    try:
        if not runtime.start(ready_timeout=LISTENER_READY_TIMEOUT):
            worker.log.warning(
                "ACK listener not ready after %ss (no broker?): serving anyway; POSTs "
                "answer 202 until it is",
                LISTENER_READY_TIMEOUT,
            )
    except Exception:
        worker.log.exception("could not start the ACK listener; retried on first use")


def worker_exit(server, worker):
    """Stop the ACK listener's thread."""
    from orders_api import runtime

    runtime.shutdown()
