"""The relay's loop and its error paths, against the real database and broker.

Faults are injected into the relay's own producer (`producer_factory`) or into the real
database (a trigger that refuses an UPDATE); what each test asserts is what the README
promises: nothing committed is lost, a failed pass backs off and is retried, a stop ends
the loop after the current pass.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid

import pytest
from django.db import connection, transaction
from kafka.errors import KafkaTimeoutError

from orders_api.models import IdempotencyKey, OutboxEvent
from orders_api.outbox_events import outbox_event_add
from orders_api.relay.loop import OutboxRelay
from orders_api.relay.notifications import OutboxNotifications
from orders_api.relay.publish import outbox_relay_once
from orders_api.services import order_upsert
from orderstream.heartbeat import check
from orderstream.kafka import make_producer
from testkit.factories import OrderFactory
from testkit.failing_clients import Failing
from testkit.helpers import eventually
from testkit.running import running

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def quick_relay(settings):
    settings.OUTBOX_RELAY_INTERVAL = 0.1
    settings.OUTBOX_RELAY_MAX_BACKOFF = 0.2
    settings.OUTBOX_PUBLISH_TIMEOUT = 1


def committed_event(**order_fields) -> str:
    """An order and its event, committed; the event's id."""
    with transaction.atomic():
        return outbox_event_add(
            order=OrderFactory(**order_fields), operation="created"
        ).event.event_id


def published(event_id: str) -> bool:
    return OutboxEvent.objects.filter(event_id=event_id, published_at__isnull=False).exists()


def relay_running(relay: OutboxRelay):
    return running(relay, ready=lambda: relay.passes, what="relay")


class FailingProducers:
    """A producer factory for the relay: each producer a real one whose `method` raises
    `error` for the next `failures` calls (None: until `heal()`), counted across them."""

    def __init__(self, method: str, error: Exception, *, after_the_call: bool = False):
        self.method, self.error, self.after_the_call = method, error, after_the_call
        self.built: list[Failing] = []
        self.failures: int | None = None

    def __call__(self):
        producer = Failing(
            make_producer(client_id="api-tests-relay"),
            self.method,
            self.error,
            after_the_call=self.after_the_call,
        )
        producer.fail(self.failures)
        self.built.append(producer)
        return producer

    def heal(self) -> None:
        self.failures = 0
        for producer in self.built:
            producer.heal()

    @property
    def failed(self) -> int:
        return sum(producer.failed for producer in self.built)


def test_a_committed_row_wakes_the_relay_through_its_notification(unique_topics, settings):
    """With the periodic pass an hour away, only the insert's notification can wake it."""
    settings.OUTBOX_RELAY_INTERVAL = 3600
    relay = OutboxRelay()
    with relay_running(relay):
        eventually(lambda: relay.notifications.listening)
        event_id = committed_event()
        eventually(lambda: published(event_id), timeout=30, message="published")
    assert relay.published == 1


def test_notifications_come_at_commit_only():
    notifications = OutboxNotifications()
    try:
        assert notifications.listen()
        with transaction.atomic():
            outbox_event_add(order=OrderFactory(), operation="created")
            assert not notifications.wait(0.2), "notified before the commit"
        assert notifications.wait(30), "no notification after the commit"
        assert not notifications.wait(0.2), "one commit, one notification"
    finally:
        notifications.close()


def test_a_wake_ends_the_wait_of_a_stopping_relay():
    notifications = OutboxNotifications()
    try:
        notifications.wake()
        assert notifications.wait(30)
    finally:
        notifications.close()


def test_a_row_no_notification_announced_is_published_by_the_periodic_pass(unique_topics):
    """A row that came due later (here: its retry time) brings no notification."""
    event_id = committed_event()
    OutboxEvent.objects.filter(event_id=event_id).update(attempts=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orders_api_outboxevent SET next_attempt_at = now() + interval '1 second'"
        )
    relay = OutboxRelay()
    with relay_running(relay):
        eventually(lambda: published(event_id), timeout=30, message="published")


def test_a_send_that_fails_is_retried_with_backoff_and_the_row_published_once(
    unique_topics, topic_reader
):
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    producers = FailingProducers("send", KafkaTimeoutError("injected"))
    event_id = committed_event()
    with relay_running(OutboxRelay(producer_factory=producers)):
        eventually(lambda: producers.failed >= 2, timeout=30)
        row = OutboxEvent.objects.get(event_id=event_id)
        assert row.published_at is None and row.attempts >= 1
        assert "KafkaTimeoutError" in row.last_error
        producers.heal()
        eventually(lambda: published(event_id), timeout=30, message="published after healing")
    records = reader.read_until(lambda records: records)
    assert [json.loads(r.value)["event_id"] for r in records] == [event_id]


def test_a_flush_that_times_out_after_the_broker_confirmed_still_marks_the_row(unique_topics):
    """The real flush runs (the broker confirms the send) before the injected timeout: on
    three nodes with acks=all a confirmation can take longer than the relay's last look at
    its futures, so a timeout injected without the flush would be a real failure."""
    producers = FailingProducers("flush", KafkaTimeoutError("injected"), after_the_call=True)
    producers.failures = 1
    # The topic known to its leader first: on three nodes a topic this new made the real
    # flush time out too (UnknownTopicOrPartition), a failure the test is not about.
    warm = make_producer(client_id="api-tests-warm-up")
    try:
        warm.send(unique_topics.ORDERS_EVENTS_TOPIC, b"warm-up").get(timeout=30)
    finally:
        warm.close(timeout=5)
    event_id = committed_event()
    with relay_running(OutboxRelay(producer_factory=producers)):
        eventually(lambda: published(event_id), timeout=30, message="published")
    assert producers.failed == 1
    assert OutboxEvent.objects.get(event_id=event_id).attempts == 0


class UnconfirmedSends:
    """A real producer whose first `unconfirmed` sends go out but are never confirmed in
    time (their future's `get` times out), as with a broker that answers late."""

    def __init__(self, unconfirmed: int):
        self.producer = make_producer(client_id="api-tests-relay")
        self.unconfirmed = unconfirmed

    def send(self, *args, **kwargs):
        future = self.producer.send(*args, **kwargs)
        if self.unconfirmed <= 0:
            return future
        self.unconfirmed -= 1
        return Unconfirmed(future)

    def __getattr__(self, name):
        return getattr(self.producer, name)


class Unconfirmed:
    def __init__(self, future):
        self.future = future

    def get(self, timeout=None):
        self.future.get(timeout=10)  # the record is on the broker...
        raise KafkaTimeoutError("confirmation not in time (injected)")  # ...unknown to us


def test_a_confirmation_that_does_not_come_leaves_the_row_for_the_next_try(
    unique_topics, topic_reader
):
    """The row stays unpublished and is sent again: a duplicate on the topic (one
    event_id, which the worker applies once), never a loss."""
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    producer = UnconfirmedSends(unconfirmed=1)
    event_id = committed_event()
    with relay_running(OutboxRelay(producer_factory=lambda: producer)):
        eventually(lambda: published(event_id), timeout=30, message="published at last")
    row = OutboxEvent.objects.get(event_id=event_id)
    assert row.attempts == 1 and "confirmation not in time" in row.last_error
    records = reader.read_until(lambda records: len(records) >= 2)
    assert [json.loads(r.value)["event_id"] for r in records] == [event_id, event_id]


def test_repeated_failures_renew_the_producer(unique_topics):
    producers = FailingProducers("send", KafkaTimeoutError("injected"))
    committed_event()
    relay = OutboxRelay(producer_factory=producers)
    with relay_running(relay):
        eventually(lambda: len(producers.built) >= 2, timeout=30, message="a new producer")
    assert producers.failed >= OutboxRelay.RENEW_AFTER


def test_a_pass_that_raises_is_logged_backed_off_and_retried(unique_topics, caplog):
    """Anything unexpected in a pass (here the producer raises a non-Kafka error) does not
    end the loop: it logs, backs off and tries again."""
    producers = FailingProducers("send", RuntimeError("injected"))
    event_id = committed_event()
    with caplog.at_level(logging.ERROR, logger="orders_api.relay.loop"):
        with relay_running(OutboxRelay(producer_factory=producers)):
            eventually(lambda: producers.failed >= 2, timeout=30)
            producers.heal()
            eventually(lambda: published(event_id), timeout=30, message="published")
    assert [r.getMessage() for r in caplog.records].count("outbox relay pass failed") >= 2


@pytest.fixture
def published_at_refused():
    """The database refuses to mark rows published (a trigger that raises)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse_published() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'refused by the test'; END $$;"
            "CREATE TRIGGER test_refuse_published BEFORE UPDATE OF published_at"
            " ON orders_api_outboxevent FOR EACH ROW EXECUTE FUNCTION test_refuse_published()"
        )

    def allow() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS test_refuse_published ON orders_api_outboxevent;"
                "DROP FUNCTION IF EXISTS test_refuse_published()"
            )

    yield allow
    allow()


def test_rows_the_database_would_not_mark_are_published_again_and_marked_later(
    unique_topics, topic_reader, published_at_refused
):
    """The broker took the event but marking it published failed: the pass fails (its
    transaction rolls back), the row is published again later and then marked. The event
    is on the topic twice, with one event_id, which the worker applies once."""
    reader = topic_reader(unique_topics.ORDERS_EVENTS_TOPIC)
    event_id = committed_event()
    relay = OutboxRelay()
    with relay_running(relay):
        reader.read_until(lambda records: len(records) >= 2, timeout=30)
        assert not published(event_id)
        published_at_refused()
        eventually(lambda: published(event_id), timeout=30, message="marked at last")
    ids = {json.loads(r.value)["event_id"] for r in reader.records}
    assert ids == {event_id}


def test_a_stop_during_a_pass_ends_the_loop_after_the_pass(unique_topics):
    """The relay is stopped while it sends a batch: the batch is finished (published and
    marked), then the loop ends."""
    event_ids = [committed_event() for _ in range(3)]
    relay = None

    class StopOnFirstSend:
        def __init__(self):
            self.producer = make_producer(client_id="api-tests-relay")

        def send(self, *args, **kwargs):
            relay.stop()
            return self.producer.send(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.producer, name)

    relay = OutboxRelay(producer_factory=StopOnFirstSend)
    with relay_running(relay) as thread:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert all(published(event_id) for event_id in event_ids)
    assert relay.passes == 1


def test_a_failing_purge_is_logged_and_the_relay_goes_on(unique_topics, settings, caplog):
    settings.OUTBOX_RETENTION_SECONDS = "not a number"  # the purge raises
    relay = OutboxRelay()
    with caplog.at_level(logging.ERROR, logger="orders_api.relay.loop"):
        with relay_running(relay):
            event_id = committed_event()
            eventually(lambda: published(event_id), timeout=30, message="published")
    assert any("purge failed" in r.getMessage() for r in caplog.records)


def test_the_relay_purges_published_rows_and_expired_idempotency_keys(unique_topics, settings):
    settings.OUTBOX_RETENTION_SECONDS = 0
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 0
    settings.OUTBOX_PURGE_INTERVAL = 0.1
    write = order_upsert(
        user_id=uuid.uuid4(), order_id=None, payload={"amount": 1}, idempotency_key="k"
    )
    assert IdempotencyKey.objects.filter(event_id=write.event_id).exists()
    with relay_running(OutboxRelay()):
        eventually(
            lambda: not OutboxEvent.objects.exists() and not IdempotencyKey.objects.exists(),
            timeout=30,
            message="the published row and the expired key purged",
        )


def test_the_relay_beats_while_its_loop_turns_and_goes_stale_while_a_pass_hangs(
    unique_topics, settings, tmp_path
):
    """RELAY_HEARTBEAT_FILE: touched on every turn (idle passes included); a pass that does
    not return (here: a send that hangs) lets it go stale, so the compose healthcheck
    fails; the loop beats again once the pass returns, and the row goes out later."""
    heartbeat_file = tmp_path / "relay.alive"
    settings.RELAY_HEARTBEAT_FILE = str(heartbeat_file)
    hang, release = threading.Event(), threading.Event()

    class HangingProducer:
        def __init__(self):
            self.producer = make_producer(client_id="api-tests-relay")

        def send(self, *args, **kwargs):
            if hang.is_set():
                release.wait(timeout=60)
                hang.clear()
                raise KafkaTimeoutError("released")
            return self.producer.send(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.producer, name)

    with relay_running(OutboxRelay(producer_factory=HangingProducer)):
        eventually(lambda: check(heartbeat_file, 5), timeout=10, message="the first beat")
        beat = heartbeat_file.stat().st_mtime_ns
        eventually(
            lambda: heartbeat_file.stat().st_mtime_ns > beat,
            timeout=10,
            message="a later beat of the idle relay",
        )
        hang.set()
        event_id = committed_event()  # wakes the relay, whose send now hangs
        eventually(
            lambda: not check(heartbeat_file, 1.5), timeout=15, message="the heartbeat stale"
        )
        assert not published(event_id)
        release.set()
        eventually(lambda: check(heartbeat_file, 1.5), timeout=15, message="beating again")
        eventually(lambda: published(event_id), timeout=30, message="published after all")


def test_after_a_failed_pass_the_relay_probes_with_one_row_until_one_is_published(
    unique_topics, monkeypatch
):
    """While the broker is down, each pass after the first tries one row, not a batch: a
    frozen broker costs the relay's host (shared with the API) one send per backoff."""
    import orders_api.relay.loop as relay_loop

    sizes: list[int | None] = []

    def spied(*, producer, batch_size=None):
        sizes.append(batch_size)
        return outbox_relay_once(producer=producer, batch_size=batch_size)

    monkeypatch.setattr(relay_loop, "outbox_relay_once", spied)
    producers = FailingProducers("send", KafkaTimeoutError("injected"))
    first = [committed_event() for _ in range(5)]
    with relay_running(OutboxRelay(producer_factory=producers)):
        eventually(lambda: producers.failed >= 8, timeout=30, message="probes")
        assert sizes[0] is None and set(sizes[1:]) == {1}, sizes
        assert producers.failed == 5 + len(sizes) - 1  # the batch, then one row a pass
        producers.heal()
        eventually(lambda: all(published(e) for e in first), timeout=30, message="published")
        later = committed_event()
        eventually(lambda: published(later), timeout=30, message="the later row")
    probes_end = sizes.index(None, 1)
    assert set(sizes[1:probes_end]) == {1}, sizes
