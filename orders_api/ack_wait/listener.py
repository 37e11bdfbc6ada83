"""The ACK wait: this process reads `orders.ack` and wakes the request waiting for it.

Every API process runs its own group-less reader of all ACK partitions, positioned at the
end when it starts (a shared consumer group would hand an ACK to the wrong process). After
an error it reconnects where it left off (the next offset of each partition), so ACKs
produced while it was reconnecting are not skipped.
Each ACK wakes the waiter registered for its `event_id`, if any, and is kept in a bounded
table of recent ACKs, so an ACK that arrives before its request starts waiting is not lost.
An ACK without an event id (the Go original worker's) wakes the oldest waiter of its
order that began before the ACK's `processed_at` (`order_match.py`); one no waiter takes
is kept, unclaimed, for a waiter of its order that begins later.
`ready` is set while the reader is positioned (cleared while it reconnects), and
`last_ack_at` says when it last read an ACK: `ack_wait/gate.py` decides from them whether a
request may wait at all.

The reader polls without pause only while requests wait for an ACK (and HOT_SECONDS after
the last one began): with no one waiting it reads every ACK_LISTENER_IDLE_POLL_MS, in
bulk, and a request that starts waiting wakes it at once. Each poll costs a fetch round
trip in Python whether or not ACKs came, and with non-waiting traffic or none at all
nobody needs them sooner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from django.conf import settings

from orders_api.ack_wait.order_match import Waiting, ack_for_waiter, waiter_for_ack
from orderstream.kafka import TopicPartition, make_consumer, one_fetch_timeout_ms
from orderstream.messages import InvalidMessage, OrderAck
from orderstream.original_format import ack_processed_at

logger = logging.getLogger(__name__)

RECENT_ACKS = 20_000
# Unclaimed ACKs without an event id kept per order (the newest).
UNCLAIMED_PER_ORDER = 16
# After a wait begins, the reader stays on continuous polling this long (a client sending
# one waiting POST after another keeps it there).
HOT_SECONDS = 2.0


class _Slot:
    __slots__ = ("event", "ack", "waiters", "order_id", "began_at", "rank")

    def __init__(self, order_id: str | None = None, began_at: datetime | None = None, rank=0):
        self.event = threading.Event()
        self.ack: OrderAck | None = None
        self.waiters = 0
        # What an ACK without an event id is matched by (None: such ACKs do not answer it).
        self.order_id = order_id
        self.began_at = began_at
        self.rank = rank


class AckListener(threading.Thread):
    """Reads every ACK partition from the end and wakes waiting requests.

    `clock` (monotonic seconds), `hot_seconds` and `recent_limit` default to
    time.monotonic, HOT_SECONDS and RECENT_ACKS; tests pass their own (a clock they move
    on, a small table), and `wake`, the event a starting wait sets to end the reader's
    idle sleep, to watch that sleep.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        hot_seconds: float = HOT_SECONDS,
        recent_limit: int = RECENT_ACKS,
        wake: threading.Event | None = None,
    ):
        super().__init__(name="ack-listener", daemon=True)
        self.brokers = tuple(settings.KAFKA_BROKERS)
        self.topic = settings.ORDERS_ACK_TOPIC
        self.ready = threading.Event()
        self.positioned_once = False  # ready was set once: a later unready is a reconnect
        self.last_ack_at = float("-inf")  # clock() when the last ACK was read
        self.stopping = threading.Event()
        self.idle_poll_seconds = settings.ACK_LISTENER_IDLE_POLL_MS / 1000
        self.hot_seconds = hot_seconds
        self.recent_limit = recent_limit
        self._clock = clock
        self._lock = threading.Lock()
        self._hot_until = 0.0  # clock() until which the reader polls continuously
        # Set when a wait begins: ends the reader's idle sleep.
        self._wake = wake if wake is not None else threading.Event()
        self._slots: dict[str, _Slot] = {}
        self._recent: OrderedDict[str, OrderAck] = OrderedDict()
        # ACKs without an event id that no waiter took yet, per order, oldest first:
        # (processed_at, ACK); at most `recent_limit` orders, UNCLAIMED_PER_ORDER each.
        self._unclaimed: OrderedDict[str, list[tuple[datetime | None, OrderAck]]] = OrderedDict()
        self._ranks = 0
        # The next offset to read per partition (reader thread only): where a reconnect resumes.
        self._next: dict[TopicPartition, int] = {}

    # -- the request side -------------------------------------------------------------

    def wait_for(
        self,
        event_id: str,
        timeout: float,
        *,
        order_id: str | None = None,
        began_at: datetime | None = None,
    ) -> OrderAck | None:
        """The ACK of `event_id`, waiting up to `timeout` seconds; None when none came.

        With `order_id` and `began_at` (when the write began), an ACK without an event id
        for that order may answer it too (see the module)."""
        with self._lock:
            ack = self._recent.get(event_id)
            if ack is not None:
                return ack
            if order_id is not None and began_at is not None:
                ack = self._claim_unclaimed(order_id, began_at)
                if ack is not None:
                    return ack
            slot = self._slots.get(event_id)
            if slot is None:
                self._ranks += 1
                slot = self._slots[event_id] = _Slot(order_id, began_at, self._ranks)
            slot.waiters += 1
            self._hot_until = self._clock() + self.hot_seconds
        self._wake.set()
        try:
            slot.event.wait(timeout)
            return slot.ack
        finally:
            with self._lock:
                slot.waiters -= 1
                if slot.waiters == 0 and self._slots.get(event_id) is slot:
                    del self._slots[event_id]

    def recent(self, event_id: str) -> OrderAck | None:
        """The ACK of `event_id` if it is among the recent ACKs, without waiting."""
        with self._lock:
            return self._recent.get(event_id)

    def waiting(self, event_id: str) -> bool:
        """Whether a request waits for the ACK of `event_id` now."""
        with self._lock:
            return event_id in self._slots

    def deliver(self, ack: OrderAck) -> None:
        """Record `ack` and wake whoever waits for it."""
        self.last_ack_at = self._clock()
        if not ack.event_id:
            if ack.order_id:
                self._deliver_by_order(ack)
            return
        with self._lock:
            self._recent[ack.event_id] = ack
            self._recent.move_to_end(ack.event_id)
            while len(self._recent) > self.recent_limit:
                self._recent.popitem(last=False)
            slot = self._slots.get(ack.event_id)
            if slot is not None:
                slot.ack = ack
                slot.event.set()

    def _deliver_by_order(self, ack: OrderAck) -> None:
        """Wake the oldest waiter of the ACK's order that began before it was processed
        (`order_match.waiter_for_ack`); keep the ACK unclaimed when none did."""
        processed_at = ack_processed_at(ack.processed_at)
        with self._lock:
            waiting = [
                Waiting(event_id, slot.began_at, slot.rank)
                for event_id, slot in self._slots.items()
                if slot.order_id == ack.order_id and slot.ack is None
            ]
            event_id = waiter_for_ack(processed_at=processed_at, waiting=waiting)
            if event_id is not None:
                slot = self._slots[event_id]
                slot.ack = ack
                slot.event.set()
                return
            kept = self._unclaimed.setdefault(ack.order_id, [])
            kept.append((processed_at, ack))
            del kept[:-UNCLAIMED_PER_ORDER]
            self._unclaimed.move_to_end(ack.order_id)
            while len(self._unclaimed) > self.recent_limit:
                self._unclaimed.popitem(last=False)

    def _claim_unclaimed(self, order_id: str, began_at: datetime) -> OrderAck | None:
        """Take the first unclaimed ACK of `order_id` processed after `began_at` (under the
        lock)."""
        kept = self._unclaimed.get(order_id)
        if not kept:
            return None
        index = ack_for_waiter(began_at=began_at, processed=[at for at, _ in kept])
        if index is None:
            return None
        _, ack = kept.pop(index)
        if not kept:
            del self._unclaimed[order_id]
        return ack

    # -- the reader -------------------------------------------------------------------

    def run(self) -> None:
        while not self.stopping.is_set():
            consumer = None
            try:
                consumer = make_consumer(group_id=None, client_id="orderstream-api-acks")
                self._position(consumer)
                while not self.stopping.is_set():
                    batches = consumer.poll(timeout_ms=self._poll_timeout_ms())
                    for partition, records in batches.items():
                        for record in records:
                            self._handle(record)
                            self._next[partition] = record.offset + 1
            except Exception:
                self.ready.clear()  # no request waits on a reader that is not reading
                logger.exception("ACK listener on %s failed; reconnecting", self.topic)
                self.stopping.wait(1.0)
            finally:
                if consumer is not None:
                    consumer.close()

    def _poll_timeout_ms(self) -> int:
        """How long the next poll may block: while requests wait, 200 ms (it returns as
        soon as ACKs come). Otherwise sleep up to the idle interval first (a new wait ends
        the sleep) and poll for one fetch."""
        self._wake.clear()  # before the check: a wait that begins after it ends the sleep
        with self._lock:
            hot = bool(self._slots) or self._clock() < self._hot_until
        if hot or self.idle_poll_seconds <= 0:
            return 200
        if self._wake.wait(self.idle_poll_seconds):
            return 200
        return one_fetch_timeout_ms()

    def _position(self, consumer) -> None:
        """Assign every ACK partition: at the end the first time, where the last reader
        stopped after a reconnect (new partitions at their end)."""
        partitions = None
        while not partitions and not self.stopping.is_set():
            consumer.topics()  # refresh metadata
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                logger.warning("ACK topic %s not found yet; retrying", self.topic)
                self.stopping.wait(1.0)
        if not partitions:
            return
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        fresh = [tp for tp in assigned if tp not in self._next]
        if fresh:
            consumer.seek_to_end(*fresh)
        for partition in assigned:
            if partition in self._next:
                consumer.seek(partition, self._next[partition])
            else:  # resolve now: ACKs from here on are ours
                self._next[partition] = consumer.position(partition)
        self.positioned_once = True
        self.ready.set()
        logger.info("ACK listener reading %d partition(s) of %s", len(assigned), self.topic)

    def _handle(self, record) -> None:
        """Deliver one ACK; log and skip one that cannot be read or delivered, so a bad
        record never stops the reader (it would fail on it again after every reconnect)."""
        try:
            self.deliver(OrderAck.from_bytes(record.value))
        except (InvalidMessage, TypeError, ValueError) as exc:
            logger.warning(
                "ignoring unreadable ACK at %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self._wake.set()
        self.join(timeout)
