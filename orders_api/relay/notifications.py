"""Wake-ups of the relay: PostgreSQL's `LISTEN` on the outbox channel, and a stop.

Every transaction that inserts outbox rows notifies OUTBOX_CHANNEL when it commits (a
statement trigger, migration 0006), so the relay publishes within milliseconds instead of
at its next periodic pass. The listening connection is the relay's own, outside Django's
(a notification arrives between transactions, on an idle connection). It is opened again
after a database outage; what was inserted meanwhile is caught by the periodic pass.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select

from django.db import connections

logger = logging.getLogger(__name__)

OUTBOX_CHANNEL = "orders_outbox"


class OutboxNotifications:
    """`wait(timeout)` returns early when an outbox row was committed or `wake()` was
    called (from another thread or a signal handler)."""

    def __init__(self, alias: str = "default"):
        self._alias = alias
        self._connection = None
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    @property
    def listening(self) -> bool:
        return self._connection is not None

    def listen(self) -> bool:
        """Open the listening connection (if it is not open); False when the database does
        not answer (logged; the next `wait` tries again)."""
        if self._connection is not None:
            return True
        wrapper = connections[self._alias]
        try:
            connection = wrapper.get_new_connection(wrapper.get_connection_params())
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {OUTBOX_CHANNEL}")
        except Exception as exc:
            logger.warning("outbox relay: cannot listen for new rows (will retry): %s", exc)
            return False
        self._connection = connection
        return True

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a notification or a wake-up; True if one came."""
        self.listen()
        watched = [self._wake_read]
        if self._connection is not None:
            watched.append(self._connection)
        readable, _, _ = select.select(watched, [], [], max(timeout, 0))
        if self._wake_read in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_read, 4096)
        if self._connection is not None and self._connection in readable:
            try:
                self._connection.poll()
                self._connection.notifies.clear()
            except Exception as exc:
                logger.warning("outbox relay: lost the listening connection: %s", exc)
                self._close_connection()
        return bool(readable)

    def wake(self) -> None:
        """End the current or next `wait` at once (nothing once closed)."""
        if self._wake_write < 0:
            return
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._wake_write, b"!")

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def close(self) -> None:
        self._close_connection()
        fds, (self._wake_read, self._wake_write) = (self._wake_read, self._wake_write), (-1, -1)
        for fd in fds:
            if fd >= 0:
                os.close(fd)
