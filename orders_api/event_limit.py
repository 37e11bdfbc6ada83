"""The effective event size limit: the largest event the API accepts (a 413 above it) and
the relay sends (it parks a larger one without sending it).

It is MAX_EVENT_BYTES (`orderstream.messages`), or less when the events topic's
`max.message.bytes` leaves less room for one record's value: the smaller wins. Without
it, a topic set below MAX_EVENT_BYTES took events the API had accepted only to refuse
them for good, and the relay parked them forever.

The topic's setting is read from the broker once per process (per broker list and topic):
the relay reads it when it builds its producer, before its first pass
(`event_size_limit_load`, waiting); an API process asks for it when it first builds an
event, in a thread of its own, so that no request waits for the broker: until the broker
has answered, MAX_EVENT_BYTES applies. A lookup that failed (no broker) is tried again
RETRY_SECONDS later, and so is one of a topic the broker does not know yet; a broker
that does not say (the embedded Tansu, for a topic created without the setting) leaves
MAX_EVENT_BYTES. A topic's setting changed later is read by processes started after.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from orderstream import messages
from orderstream.kafka import record_value_room, topic_max_message_bytes

logger = logging.getLogger(__name__)

ORDER_KEY_BYTES = 36  # a record's key: the order's uuid as text
RETRY_SECONDS = 60.0


@dataclass
class _Lookup:
    """What is known of one topic's room for a value: None until the broker said."""

    room: int | None = None
    answered: bool = False  # the broker answered (with the setting or without it)
    running: bool = False
    retry_at: float = 0.0


_lock = threading.Lock()
_lookups: dict[tuple, _Lookup] = {}


def _key(topic: str) -> tuple:
    return (tuple(settings.KAFKA_BROKERS), topic)


def _effective(room: int | None) -> int:
    limit = messages.MAX_EVENT_BYTES  # read now: tests lower it
    return limit if room is None else min(limit, room)


def event_size_limit(*, topic: str | None = None) -> int:
    """The effective limit of events to `topic` (the events topic) as known now; never
    waits, starting the topic's lookup in a thread when it is due."""
    key = _key(topic or settings.ORDERS_EVENTS_TOPIC)
    with _lock:
        lookup = _lookups.setdefault(key, _Lookup())
        start = not (lookup.answered or lookup.running) and time.monotonic() >= lookup.retry_at
        if start:
            lookup.running = True
        room = lookup.room
    if start:
        timeout_ms = _timeout_ms()  # read here: a test's settings are gone in the thread
        threading.Thread(
            target=_look_up, args=(key, lookup, timeout_ms), name="event-limit", daemon=True
        ).start()
    return _effective(room)


def event_size_limit_load(*, topic: str | None = None) -> int:
    """Read the topic's setting now, unless the broker already answered (waiting up to
    OUTBOX_PUBLISH_TIMEOUT for it), and return the effective limit; a broker that does not
    answer leaves the limit as it was."""
    key = _key(topic or settings.ORDERS_EVENTS_TOPIC)
    with _lock:
        lookup = _lookups.setdefault(key, _Lookup())
    if not lookup.answered:
        _look_up(key, lookup, _timeout_ms())
    return _effective(lookup.room)


def _timeout_ms() -> int:
    return int(settings.OUTBOX_PUBLISH_TIMEOUT * 1000)


def _look_up(key: tuple, lookup: _Lookup, timeout_ms: int) -> None:
    brokers, topic = key
    try:
        max_message_bytes = topic_max_message_bytes(
            topic, timeout_ms=timeout_ms, brokers=list(brokers)
        )
    except Exception as exc:  # no broker, or an answer it could not read: logged, retried
        logger.warning(
            "could not read max.message.bytes of %s (MAX_EVENT_BYTES applies; again in %ds): %s",
            topic,
            RETRY_SECONDS,
            exc,
        )
        with _lock:
            lookup.running, lookup.retry_at = False, time.monotonic() + RETRY_SECONDS
        return
    room = None
    if max_message_bytes is not None:
        room = record_value_room(max_message_bytes, key_bytes=ORDER_KEY_BYTES)
    with _lock:
        lookup.room, lookup.answered, lookup.running = room, True, False
    logger.info(
        "events to %s: at most %d bytes (max.message.bytes %s, MAX_EVENT_BYTES %d)",
        topic,
        _effective(room),
        "not said" if max_message_bytes is None else max_message_bytes,
        messages.MAX_EVENT_BYTES,
    )
