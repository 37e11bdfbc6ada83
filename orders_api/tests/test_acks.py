"""The ACK wait: each process reads every ACK itself and wakes the request waiting for it."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from orders_api.ack_wait import listener as ack_listener_module
from orders_api.ack_wait.listener import AckListener
from orderstream.kafka import ensure_topics, make_producer, one_fetch_timeout_ms
from orderstream.messages import OrderAck
from testkit.helpers import (
    CountingPolls,
    OffsetClock,
    WatchedEvent,
    eventually,
    polls_after,
    shortest_gap,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def listeners(unique_topics):
    """Start AckListeners on the test's ACK topic (two of them = two API processes)."""
    started = []

    def start(**options) -> AckListener:
        """A started listener, positioned; `options` are AckListener's (clock, ...)."""
        listener = AckListener(**options)
        listener.start()
        assert listener.ready.wait(15), "the listener did not position itself"
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()


@pytest.fixture
def send_ack(unique_topics):
    producer = make_producer()

    def send(ack: OrderAck | bytes, *, key: bytes | None = None) -> None:
        value = ack if isinstance(ack, bytes) else ack.to_bytes()
        producer.send(unique_topics.ORDERS_ACK_TOPIC, key=key, value=value).get(timeout=10)

    yield send
    producer.close(timeout=2)


def ack_of(event_id: str, status: str = "created") -> OrderAck:
    return OrderAck(
        event_id=event_id,
        order_id=str(uuid.uuid4()),
        status=status,
        processed_at="2026-01-01T00:00:00Z",
    )


def test_a_waiting_request_is_woken_by_its_ack(listeners, send_ack):
    listener = listeners()
    event_id = str(uuid.uuid4())
    got = {}
    waiter = threading.Thread(target=lambda: got.update(ack=listener.wait_for(event_id, 10)))
    waiter.start()
    send_ack(ack_of(str(uuid.uuid4()), "updated"))  # someone else's ACK first
    send_ack(ack_of(event_id))
    waiter.join(15)
    assert got["ack"].event_id == event_id
    assert got["ack"].status == "created"


def test_an_ack_that_came_before_the_wait_is_not_lost(listeners, send_ack):
    """The ACK is read while nobody waits for it (a worker quicker than the request); the
    wait that begins afterwards finds it among the recent ACKs, without waiting at all."""
    listener = listeners()
    event_id = str(uuid.uuid4())
    send_ack(ack_of(event_id, "deleted"))
    eventually(lambda: listener.recent(event_id), message="the listener read the ACK")
    ack = listener.wait_for(event_id, 0)
    assert ack is not None and ack.status == "deleted"


def test_every_process_sees_every_ack(listeners, send_ack):
    """No shared consumer group: the process that waits gets the ACK, whichever it is."""
    first, second = listeners(), listeners()
    event_id = str(uuid.uuid4())
    send_ack(ack_of(event_id), key=b"any-partition")
    assert second.wait_for(event_id, 10) is not None
    assert first.wait_for(event_id, 10) is not None


def test_the_wait_times_out_without_an_ack(listeners):
    assert listeners().wait_for(str(uuid.uuid4()), 0.2) is None


def test_an_unreadable_ack_is_skipped(listeners, send_ack):
    listener = listeners()
    event_id = str(uuid.uuid4())
    send_ack(b"not json")
    send_ack(b'{"status": "exploded"}')
    send_ack(ack_of(event_id, "rejected"))
    ack = listener.wait_for(event_id, 10)
    assert ack is not None and ack.status == "rejected"
    assert listener.is_alive()


def test_after_an_error_the_listener_resumes_where_it_stopped(listeners, send_ack, monkeypatch):
    """ACKs sent while the listener reconnects after an error are still delivered (it
    resumes at its next offsets instead of jumping to the end)."""
    failed = threading.Event()
    handle = AckListener._handle

    def handle_failing_once(self, record):
        if not failed.is_set():
            failed.set()
            raise RuntimeError("the connection broke")
        handle(self, record)

    monkeypatch.setattr(AckListener, "_handle", handle_failing_once)
    listener = listeners()
    first, during = str(uuid.uuid4()), str(uuid.uuid4())
    send_ack(ack_of(first))  # its handling fails: the listener drops its consumer
    assert failed.wait(10)
    send_ack(ack_of(during, "updated"))  # sent while the listener waits to reconnect
    assert listener.wait_for(first, 15) is not None
    ack = listener.wait_for(during, 15)
    assert ack is not None and ack.status == "updated"


def test_a_listener_is_not_ready_while_it_reconnects(listeners, send_ack, monkeypatch):
    """After an error the listener is unready until it is positioned again: no request
    waits on a reader that is not reading (ack_wait_gate.py)."""
    handle = AckListener._handle
    make = ack_listener_module.make_consumer
    failed, reconnect = threading.Event(), threading.Event()

    def handle_failing_once(self, record):
        if not failed.is_set():
            failed.set()
            raise RuntimeError("the connection broke")
        handle(self, record)

    def make_once_allowed(**options):
        if failed.is_set():
            assert reconnect.wait(30)
        return make(**options)

    monkeypatch.setattr(AckListener, "_handle", handle_failing_once)
    monkeypatch.setattr(ack_listener_module, "make_consumer", make_once_allowed)
    listener = listeners()
    assert listener.positioned_once
    send_ack(ack_of(str(uuid.uuid4())))
    assert failed.wait(10)
    assert eventually(lambda: not listener.ready.is_set(), timeout=10)
    assert listener.positioned_once  # a reconnect, not a start
    reconnect.set()
    assert listener.ready.wait(15)


def test_the_listener_notes_when_it_last_read_an_ack(listeners, send_ack):
    listener = listeners()
    assert listener.last_ack_at == float("-inf")
    before = time.monotonic()
    event_id = str(uuid.uuid4())
    send_ack(ack_of(event_id))
    assert listener.wait_for(event_id, 15) is not None
    assert before <= listener.last_ack_at <= time.monotonic()


@pytest.fixture
def polls(monkeypatch):
    """Every poll of the listeners started in this test."""
    recorded = []
    make = ack_listener_module.make_consumer
    monkeypatch.setattr(
        ack_listener_module, "make_consumer", lambda **kw: CountingPolls(make(**kw), recorded)
    )
    return recorded


def test_with_nobody_waiting_the_listener_reads_only_every_idle_interval(
    listeners, send_ack, polls, settings
):
    settings.ACK_LISTENER_IDLE_POLL_MS = 300
    listener = listeners()
    idle = polls_after(polls, time.monotonic(), 4)
    # Each read waits the idle interval first: a slow machine makes the gaps longer, never
    # shorter (an idle poll takes one fetch; without the pause they would follow at once).
    assert shortest_gap(idle) >= 0.3 * 0.95, idle
    assert {poll.timeout_ms for poll in idle} == {one_fetch_timeout_ms()}
    # ...yet it reads every ACK: a replayed request finds it among the recent ones.
    event_id = str(uuid.uuid4())
    send_ack(ack_of(event_id, "updated"))
    eventually(lambda: listener.recent(event_id), message="the ACK is read while idle")


def test_a_wait_wakes_an_idle_listener_and_keeps_it_polling(listeners, send_ack, polls, settings):
    """The listener's clock is the test's and its hot window an hour of it: the listener
    stays "just after a wait" until the test moves the clock on, however slow the
    machine."""
    settings.ACK_LISTENER_IDLE_POLL_MS = 600_000  # asleep for the whole test unless woken
    clock, wake = OffsetClock(), WatchedEvent()
    listener = listeners(clock=clock.monotonic, hot_seconds=3600.0, wake=wake)
    eventually(wake.sleeping.is_set, message="the listener is in its idle sleep")
    event_id = str(uuid.uuid4())
    got = {}
    waiter = threading.Thread(target=lambda: got.update(ack=listener.wait_for(event_id, 60)))
    waiter.start()
    send_ack(ack_of(event_id))
    waiter.join(90)
    assert got["ack"] is not None and got["ack"].event_id == event_id
    assert wake.woken == [True], "the idle sleep was not cut short by the wait"
    # Right after a wait it polls without pause (the next waiting request is not delayed):
    # asleep, it would not poll again for ten minutes.
    hot = polls_after(polls, time.monotonic(), 3)
    assert {poll.timeout_ms for poll in hot} == {200}
    assert wake.woken == [True], "it slept again right after the wait"
    # The hot window after the wait began, with no new wait, it goes back to its idle sleep.
    clock.advance(listener.hot_seconds + 1)
    eventually(wake.sleeping.is_set, message="the listener sleeps again")


@pytest.mark.parametrize(
    "bad",
    [
        b'{"event_id": ["x"], "status": "created"}',
        b'{"event_id": {"a": 1}, "order_id": 5, "status": "created"}',
        b'{"event_id": "e", "status": "created", "error": ["no"]}',
    ],
)
def test_an_invalid_ack_is_skipped_and_the_next_one_still_delivered(
    listeners, send_ack, bad, caplog
):
    """One bad ACK on the topic must not stop ACK delivery for the whole process (the
    listener used to fail on it, reconnect at the same offset and fail again forever)."""
    listener = listeners()
    send_ack(bad, key=b"one-partition")  # the good ACK comes after it, on its partition
    event_id = str(uuid.uuid4())
    send_ack(ack_of(event_id), key=b"one-partition")
    ack = listener.wait_for(event_id, 10)
    assert ack is not None and ack.event_id == event_id
    assert "ignoring unreadable ACK" in caplog.text
    assert "failed; reconnecting" not in caplog.text


# -- error paths -------------------------------------------------------------------------


@pytest.mark.parametrize("event_id", ["absent", None, ""])
def test_an_ack_without_an_event_id_is_skipped(listeners, send_ack, event_id, caplog):
    """It answers no request: it wakes no one, takes no place among the recent ACKs, and
    the ACK after it on its partition is delivered as usual."""
    listener = listeners()
    bad = {"order_id": str(uuid.uuid4()), "status": "created", "processed_at": "2026-01-01"}
    if event_id != "absent":
        bad["event_id"] = event_id
    send_ack(json.dumps(bad).encode(), key=b"one-partition")
    good = str(uuid.uuid4())
    send_ack(ack_of(good), key=b"one-partition")
    assert listener.wait_for(good, 15) is not None  # read after the bad one: in order
    assert listener.recent(None) is None
    assert listener.recent("") is None
    assert listener.is_alive()
    assert "failed; reconnecting" not in caplog.text


def test_the_recent_acks_keep_the_newest_when_they_overflow(listeners, send_ack):
    """The table of recent ACKs is bounded (`recent_limit`, RECENT_ACKS by default): the
    oldest ACKs go first, an ACK read again (a redelivery) counts as new, and a request
    already waiting still gets its ACK when the table overflows past it before the
    request wakes."""
    listener = listeners(recent_limit=3)
    oldest, older, again, waited = (str(uuid.uuid4()) for _ in range(4))
    got = {}
    waiter = threading.Thread(target=lambda: got.update(ack=listener.wait_for(waited, 60)))
    waiter.start()
    eventually(lambda: listener.waiting(waited), message="the request waits")
    newest = [str(uuid.uuid4()) for _ in range(2)]
    for event_id in [oldest, again, waited, older, again, *newest]:
        send_ack(ack_of(event_id), key=b"one-partition")
    eventually(lambda: listener.recent(newest[-1]), message="the last ACK is read")
    kept = [e for e in [oldest, older, waited, again, *newest] if listener.recent(e)]
    assert kept == [again, *newest]
    waiter.join(90)
    assert got["ack"] is not None and got["ack"].event_id == waited
    # A request that comes after its ACK left the table waits for it like any other: with
    # nothing to wait for, it times out (the view answers 202, or the worker's result).
    assert listener.wait_for(oldest, 0) is None


@pytest.fixture
def listener_on_a_missing_topic(unique_topics, caplog):
    """A listener started before its ACK topic exists, once it said it waits for it."""
    unique_topics.ORDERS_ACK_TOPIC += ".created-late"
    listener = AckListener()
    listener.start()
    eventually(
        lambda: f"ACK topic {unique_topics.ORDERS_ACK_TOPIC} not found yet" in caplog.text,
        timeout=30,
        message="the listener retries the missing topic",
    )
    yield listener
    listener.stop()


def test_a_listener_started_before_its_topic_exists_reads_it_once_created(
    listener_on_a_missing_topic, unique_topics, send_ack
):
    listener = listener_on_a_missing_topic
    assert not listener.ready.is_set()  # a request does not wait for it meanwhile
    ensure_topics({unique_topics.ORDERS_ACK_TOPIC: 2})
    assert listener.ready.wait(60), "the listener did not position itself on the new topic"
    event_id = str(uuid.uuid4())
    send_ack(ack_of(event_id))
    ack = listener.wait_for(event_id, 30)
    assert ack is not None and ack.event_id == event_id


def test_stop_ends_a_listener_that_waits_for_its_topic(listener_on_a_missing_topic):
    """The stop flag set while the listener retries: its thread ends, never positioned."""
    listener = listener_on_a_missing_topic
    listener.stop(timeout=30)
    assert not listener.is_alive(), "the listener kept retrying after stop()"
    assert not listener.ready.is_set()
