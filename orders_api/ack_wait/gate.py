"""Whether a POST may wait for its ACK now: a few waiters per process, and none while the
pipeline is known to be behind or down.

A waiting POST holds one of the process's write threads (orderstream/rsgi_lanes.py) for up
to ORDER_ACK_WAIT_TIMEOUT. Unbounded, the waits fill every write thread as soon as the
broker, the relay or the workers stall, and every other write queues behind them: writes
look dead exactly when the outbox should be absorbing them. So a write waits only

- within ORDER_ACK_MAX_WAITERS concurrent waits of its process (default: half the write
  threads; the other half always serves the other writes), else `busy`;
- while the pipeline is not known to be behind, else `pipeline-behind`: the outbox's
  oldest waiting row is older than ORDER_ACK_WAIT_MAX_OUTBOX_AGE (the relay or the broker
  is stuck: read at most every OUTBOX_AGE_REFRESH_SECONDS), or this process's last wait of
  at least TRIP_SECONDS timed out and no ACK at all has been read since it began (the
  workers are down; the next ACK read, of whatever event, ends this);
- with an ACK listener that has been positioned (it is not while it reconnects after an
  error), else `listener-not-ready`. Before the process's listener was ever positioned, a
  write waits up to ACK_LISTENER_READY_WAIT for it, as a new process does at start.

A write that does not wait is answered 202 at once; its event is committed all the same.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

from orders_api.ack_wait import process_listener
from orders_api.ack_wait.listener import AckListener
from orders_api.models import OutboxEvent
from orderstream.messages import OrderAck

logger = logging.getLogger(__name__)

BUSY = "busy"
PIPELINE_BEHIND = "pipeline-behind"
LISTENER_NOT_READY = "listener-not-ready"

# Longest a write waits for a listener that was never positioned in this process.
ACK_LISTENER_READY_WAIT = 1.0
# A timed-out wait shorter than this says nothing about the pipeline (`Prefer: wait=0.1`).
TRIP_SECONDS = 1.0
OUTBOX_AGE_REFRESH_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class WaitSlot:
    """A write's right to wait: the listener to wait on, or why it does not wait (None
    for both when no wait was asked for)."""

    listener: AckListener | None
    skipped: str | None = None


class AckWaitGate:
    """The waits of one process (see the module); safe across request threads.

    `clock` (monotonic seconds) and `outbox_age` (seconds, the age of the oldest waiting
    outbox row) default to time.monotonic and the outbox's query; tests pass their own.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        outbox_age: Callable[[], float] | None = None,
    ):
        self._clock = clock
        self._outbox_age = outbox_age or _oldest_waiting_outbox_age
        self._lock = threading.Lock()
        self._waiting = 0
        self._stalled_wait_began: float | None = None
        self._age = 0.0
        self._age_read_at: float | None = None
        self._age_refreshing = False

    @property
    def waiting(self) -> int:
        return self._waiting

    @contextlib.contextmanager
    def slot(self, wait_seconds: float) -> Iterator[WaitSlot]:
        """A slot for one write that asks to wait `wait_seconds` (0: none asked)."""
        if wait_seconds <= 0:
            yield WaitSlot(None)
            return
        with self._lock:
            if self._waiting >= settings.ORDER_ACK_MAX_WAITERS:
                skipped = BUSY
            else:
                skipped = None
                self._waiting += 1
        if skipped:
            yield WaitSlot(None, skipped)
            return
        try:
            yield self._enter(wait_seconds)
        finally:
            with self._lock:
                self._waiting -= 1

    def _enter(self, wait_seconds: float) -> WaitSlot:
        listener = process_listener.ack_listener()
        if self._behind(listener):
            return WaitSlot(None, PIPELINE_BEHIND)
        if not listener.ready.is_set() and (
            listener.positioned_once
            or not listener.ready.wait(min(wait_seconds, ACK_LISTENER_READY_WAIT))
        ):
            return WaitSlot(None, LISTENER_NOT_READY)
        return WaitSlot(listener)

    def wait_for(
        self, slot: WaitSlot, event_id: str, timeout: float, **match: Any
    ) -> OrderAck | None:
        """The ACK of `event_id` from the slot's listener, waiting up to `timeout` (`match`:
        the listener's `order_id` and `began_at`); a wait of at least TRIP_SECONDS that
        gets none marks the pipeline stalled."""
        began = self._clock()
        ack = slot.listener.wait_for(event_id, timeout, **match)
        if ack is None and timeout >= TRIP_SECONDS:
            with self._lock:
                self._stalled_wait_began = max(began, self._stalled_wait_began or began)
        return ack

    def _behind(self, listener: AckListener) -> bool:
        stalled = self._stalled_wait_began
        if stalled is not None and listener.last_ack_at < stalled:
            return True
        return self._outbox_age_now() > settings.ORDER_ACK_WAIT_MAX_OUTBOX_AGE

    def _outbox_age_now(self) -> float:
        """The oldest waiting row's age, read again by one thread when the last reading is
        older than OUTBOX_AGE_REFRESH_SECONDS (the others use the last one meanwhile)."""
        now = self._clock()
        with self._lock:
            fresh = (
                self._age_read_at is not None
                and now - self._age_read_at < OUTBOX_AGE_REFRESH_SECONDS
            )
            if fresh or self._age_refreshing:
                return self._age
            self._age_refreshing = True
        try:
            age = self._outbox_age()
        finally:
            with self._lock:
                self._age_refreshing = False
        with self._lock:
            self._age, self._age_read_at = age, now
        return age


_OLDEST_WAITING_AGE_SQL = f"""
SELECT extract(epoch FROM now() - min(created_at)) FROM {OutboxEvent._meta.db_table}
WHERE published_at IS NULL AND parked_at IS NULL
"""


def _oldest_waiting_outbox_age() -> float:
    """The age in seconds of the oldest outbox row waiting to be published (0: none); 0
    when the database does not answer (the write itself fails then)."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(_OLDEST_WAITING_AGE_SQL)
            (age,) = cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("could not read the outbox's age: %s", exc)
        return 0.0
    return max(float(age or 0), 0.0)


_gate = AckWaitGate()


def ack_wait_gate() -> AckWaitGate:
    """This process's gate (module state survives the server's fork empty: no request
    ran in its main process)."""
    return _gate
