"""RSGI entry point (`python -m orderstream.api_server` serves it with granian).

The WSGI application (orderstream/wsgi.py) in two lanes (orderstream/rsgi_lanes.py). Each
worker process starts settings.API_PROCESS_LISTENER (the ACK listener) before it serves,
and stops it when it stops.
"""

import os

from django.conf import settings
from django.utils.module_loading import import_string
from prometheus_client import multiprocess

from orderstream.metrics import MULTIPROCESS_ENV
from orderstream.rsgi_lanes import RsgiLanes
from orderstream.wsgi import application as wsgi_application  # sets Django up

# A new worker serves once its ACK listener is positioned, or after this many seconds.
LISTENER_READY_TIMEOUT = 10


def listener_started() -> None:
    """Start this worker's ACK listener, after the fork (Kafka clients and their threads
    never live in the master: they would not survive it). A failure is logged, never
    raised: the worker serves, its POSTs answer 202 until the listener is positioned."""
    if not settings.API_PROCESS_LISTENER:
        return
    listener = import_string(settings.API_PROCESS_LISTENER)
    try:
        if not listener.start(ready_timeout=LISTENER_READY_TIMEOUT):
            listener.logger.warning(
                "ACK listener not ready after %ss (no broker?): serving anyway; POSTs "
                "answer 202 until it is",
                LISTENER_READY_TIMEOUT,
            )
    except Exception:
        listener.logger.exception("could not start the ACK listener; retried on first use")


def listener_stopping() -> None:
    """Stop the ACK listener's thread; tell prometheus_client this process is gone (its
    live gauges stop counting, its counters keep adding up)."""
    if settings.API_PROCESS_LISTENER:
        import_string(settings.API_PROCESS_LISTENER).shutdown()
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(os.getpid())


application = RsgiLanes(
    wsgi_application,
    write_threads=settings.API_WRITE_THREADS,
    max_body=settings.API_MAX_BODY_BYTES,
    started=listener_started,
    stopping=listener_stopping,
)
