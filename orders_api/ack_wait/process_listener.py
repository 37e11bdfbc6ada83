"""This process's ACK listener, the one background thread of an API process.

It is created on first use (or by `start()` when an API worker starts: orderstream/rsgi.py),
never in the server's main process: a listener created in another process (pid) or for
other broker or topic settings is replaced, which also keeps tests that switch brokers
honest. Events are
published by the relay (`manage.py run_relay`), not here.
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings

from orders_api.ack_wait.listener import AckListener

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_listener: tuple[tuple, AckListener] | None = None


def _identity() -> tuple:
    return (os.getpid(), tuple(settings.KAFKA_BROKERS), settings.ORDERS_ACK_TOPIC)


def ack_listener() -> AckListener:
    """This process's ACK listener, started when first asked for."""
    global _listener
    identity = _identity()
    entry = _listener
    if entry is not None and entry[0] == identity:
        return entry[1]
    with _lock:
        if _listener is not None and _listener[0] == identity:
            return _listener[1]
        if _listener is not None and _listener[0][0] == os.getpid():
            _stop(_listener[1])
        listener = AckListener()
        listener.start()
        _listener = (identity, listener)
        return listener


def _stop(listener: AckListener) -> None:
    try:
        listener.stop()
    except Exception:
        logger.exception("could not stop the ACK listener cleanly")


def start(*, ready_timeout: float = 0.0) -> bool:
    """Start the listener now (as an API worker starts), instead of on first use.

    Waits up to `ready_timeout` seconds for it to be positioned, so that the first
    requests of a new process can wait for their ACK (a POST waits at most a second for an
    unready listener, then answers 202). True when the listener is ready.
    """
    return ack_listener().ready.wait(ready_timeout)


def shutdown() -> None:
    """Stop this process's listener and join its thread."""
    global _listener
    with _lock:
        if _listener is not None and _listener[0][0] == os.getpid():
            _stop(_listener[1])
        _listener = None
