"""This process's background pieces: the event publisher, the outbox relay, the ACK listener.

Each is created on first use (or by `start()` from gunicorn's `post_worker_init`), never
before gunicorn forks: a piece created in another process (pid) or for other broker or
topic settings is replaced, which also keeps tests that switch brokers honest.
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings

from .acks import AckListener
from .outbox import OutboxPublisher, OutboxRelay

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_pieces: dict[str, tuple[tuple, object]] = {}


def _current(name: str, identity: tuple, build):
    """The piece `name` for `identity` (pid + settings); built or rebuilt as needed."""
    entry = _pieces.get(name)
    if entry is not None and entry[0] == identity:
        return entry[1]
    with _lock:
        entry = _pieces.get(name)
        if entry is not None and entry[0] == identity:
            return entry[1]
        if entry is not None and entry[0][0] == os.getpid():
            _stop(name, entry[1])
        piece = build()
        _pieces[name] = (identity, piece)
        return piece


def _stop(name: str, piece) -> None:
    try:
        if name == "publisher":
            publisher, relay = piece
            if relay is not None:
                relay.stop()
            publisher.close()
        else:
            piece.stop()
    except Exception:
        logger.exception("could not stop %s cleanly", name)


def _build_publisher():
    publisher = OutboxPublisher()
    relay = None
    if settings.OUTBOX_RELAY_ENABLED:
        relay = OutboxRelay(publisher)
        relay.start()
    return publisher, relay


def _build_listener():
    listener = AckListener()
    listener.start()
    return listener


def publisher() -> OutboxPublisher:
    """This process's event publisher (with its relay thread when OUTBOX_RELAY_ENABLED)."""
    identity = (os.getpid(), tuple(settings.KAFKA_BROKERS), settings.OUTBOX_RELAY_ENABLED)
    return _current("publisher", identity, _build_publisher)[0]


def ack_listener() -> AckListener:
    """This process's ACK listener, started when first asked for."""
    identity = (os.getpid(), tuple(settings.KAFKA_BROKERS), settings.ORDERS_ACK_TOPIC)
    return _current("listener", identity, _build_listener)


def start(*, ready_timeout: float = 0.0) -> bool:
    """Start every piece now (gunicorn's post_worker_init), instead of on first use.

    Waits up to `ready_timeout` seconds for the ACK listener to be positioned, so that the
    first requests of a new process can wait for their ACK (a POST waits at most a second
    for an unready listener, then answers 202). True when the listener is ready.
    """
    publisher()
    return ack_listener().ready.wait(ready_timeout)


def shutdown() -> None:
    """Stop this process's pieces: flush the producer, join the threads."""
    with _lock:
        for name, (identity, piece) in list(_pieces.items()):
            if identity[0] == os.getpid():
                _stop(name, piece)
            del _pieces[name]
