"""The relay's loop (`manage.py run_relay`): publish outbox rows as they are committed.

It passes (`relay.outbox_relay_once`) whenever an outbox row was committed (a PostgreSQL
notification), goes on while passes publish (under load, a few milliseconds apart, so
that each pass publishes a batch: `orderstream.batch_pacing`), and otherwise passes every
OUTBOX_RELAY_INTERVAL seconds, which catches anything a notification missed (a relay
that was down, a row whose retry came due, a parked row put back). After a failed pass it
backs off (exponentially, up to OUTBOX_RELAY_MAX_BACKOFF), deaf to notifications, and
after RENEW_AFTER failed passes in a row it replaces its producer. Until a pass publishes
again, each pass tries one row (a probe) instead of a batch: with the broker down, a
batch's sends, timeouts and retry bookkeeping burned most of a core, on a host the API
may share, to learn what one row tells. Every
OUTBOX_PURGE_INTERVAL seconds it purges (`purge.expired_rows_purge`). Every turn of the
loop touches its liveness heartbeat (RELAY_HEARTBEAT_FILE, see orderstream/heartbeat.py):
a pass that never returns lets it go stale.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connections

from orders_api.event_limit import event_size_limit_load
from orders_api.relay.metrics import relay_pass_counted
from orders_api.relay.notifications import OutboxNotifications
from orders_api.relay.publish import outbox_relay_once, relay_backoff
from orders_api.relay.purge import expired_rows_purge
from orderstream.batch_pacing import BatchPacer, pacing_from_settings
from orderstream.heartbeat import Heartbeat
from orderstream.kafka import KafkaProducer, make_producer

logger = logging.getLogger(__name__)


# A pass sends its rows, then flushes, and the flush sends whatever waits at once: the
# linger only keeps `send()` from sending the pass's first records alone, so that a pass
# goes out as one produce request (which the worker then fetches as one batch).
PASS_LINGER_MS = 1000


def relay_producer() -> KafkaProducer:
    """The relay's producer: it waits at most OUTBOX_PUBLISH_TIMEOUT for a broker (in its
    constructor, which probes one, and for metadata), and sends each pass at its flush."""
    bound_ms = int(settings.OUTBOX_PUBLISH_TIMEOUT * 1000)
    return make_producer(
        client_id="orderstream-relay",
        max_block_ms=bound_ms,
        bootstrap_timeout_ms=bound_ms,
        linger_ms=PASS_LINGER_MS,
    )


class OutboxRelay:
    """One relay; `run()` loops until `stop()`."""

    # Consecutive failed passes after which the producer is replaced: after a broker
    # restart an idempotent producer's sequence state can be refused for good.
    RENEW_AFTER = 3

    def __init__(
        self,
        *,
        producer_factory: Callable[[], KafkaProducer] = relay_producer,
        notifications: OutboxNotifications | None = None,
    ):
        self.notifications = notifications or OutboxNotifications()
        self._producer_factory = producer_factory
        self.producer = None
        self.passes = 0  # passes made (for tests and logs)
        self.published = 0
        self.pacer = BatchPacer(pacing_from_settings())
        self._stop = threading.Event()
        self._heartbeat = Heartbeat(settings.RELAY_HEARTBEAT_FILE)

    def stop(self) -> None:
        """End the loop after the current pass (from any thread)."""
        self._stop.set()
        self.notifications.wake()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        logger.info("outbox relay starting: batches of %d", settings.OUTBOX_RELAY_BATCH)
        self.notifications.listen()  # before the first pass: no commit goes unnoticed
        failures = 0
        probing = False  # a pass failed and none has published since: passes send one row
        next_purge = 0.0
        try:
            while not self.stopping:
                self._heartbeat.touch()
                self._linger_under_load()
                self.pacer.started()
                published, failed = self._pass_safely(batch_size=1 if probing else None)
                self.pacer.handled(published)
                failures = failures + 1 if failed else 0
                probing = (probing or failed) and not published
                if failures and failures % self.RENEW_AFTER == 0:
                    self._renew_producer()
                if time.monotonic() >= next_purge:
                    self._purge_safely()
                    next_purge = time.monotonic() + settings.OUTBOX_PURGE_INTERVAL
                if failures:
                    self._stop.wait(relay_backoff(failures))
                elif not published:
                    self.notifications.wait(settings.OUTBOX_RELAY_INTERVAL)
        finally:
            self._close()
        logger.info("outbox relay stopped after %d event(s)", self.published)

    def _linger_under_load(self) -> None:
        """Under load, let the next pass find more rows (`orderstream.batch_pacing`)."""
        delay = self.pacer.linger()
        if delay:
            self._stop.wait(delay)

    def _pass_safely(self, batch_size: int | None = None) -> tuple[int, bool]:
        """One pass (of `batch_size` rows, else OUTBOX_RELAY_BATCH): how many rows it
        published, and whether it failed (a row not published, no broker, or the pass)."""
        whole_pass_failed = True
        try:
            close_old_connections()
            producer = self._ensure_producer()
            if producer is None:
                return 0, True
            published, failed = outbox_relay_once(producer=producer, batch_size=batch_size)
            whole_pass_failed = False
        except Exception:
            logger.exception("outbox relay pass failed")
            connections["default"].close()
            return 0, True
        finally:
            self.passes += 1
            relay_pass_counted(failed=whole_pass_failed)
        self.published += published
        return published, bool(failed)

    def _purge_safely(self) -> None:
        try:
            expired_rows_purge()
        except Exception:
            logger.exception("outbox relay: purge failed (will retry at the next interval)")
            connections["default"].close()

    def _ensure_producer(self):
        """The producer, built now if there is none; None (logged) when no broker answers.
        With it, the first time, the events topic's size limit (`event_limit`)."""
        if self.producer is None:
            try:
                self.producer = self._producer_factory()
            except Exception as exc:
                logger.warning("outbox relay: no producer for %s: %s", settings.KAFKA_BROKERS, exc)
            else:
                event_size_limit_load()
        return self.producer

    def _renew_producer(self) -> None:
        logger.warning("outbox relay: renewing the producer after repeated failures")
        self._close_producer()

    def _close_producer(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=settings.OUTBOX_PUBLISH_TIMEOUT)

    def _close(self) -> None:
        self._close_producer()
        self.notifications.close()
        connections["default"].close()
