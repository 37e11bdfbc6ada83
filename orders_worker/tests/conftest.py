"""Fixtures of the worker tests: a producer for events, readers of ACKs and dead letters,
a proxy that makes Redis or the worker's PostgreSQL unavailable on demand, and failures
no check foresees, for one order."""

from __future__ import annotations

import contextlib
import copy
import socket
import threading
from urllib.parse import urlparse

import pytest
from django.conf import settings

from orders_worker import results, services
from orderstream.devstack.ports import free_port
from orderstream.kafka import make_producer
from orderstream.messages import OrderEvent
from orderstream.tests.topics import TopicReader


@pytest.fixture
def send_events(unique_topics):
    """`send_events(*events_or_raw_bytes)`: produce to the test's event topic and flush."""
    producer = make_producer()

    def send(*messages, key: bytes | None = None) -> None:
        for message in messages:
            if isinstance(message, OrderEvent):
                producer.send(settings.ORDERS_EVENTS_TOPIC, message.to_bytes(), key=message.key)
            else:
                producer.send(settings.ORDERS_EVENTS_TOPIC, message, key=key)
        producer.flush(timeout=10)

    yield send
    producer.close(timeout=5)


@pytest.fixture
def ack_reader(unique_topics):
    reader = TopicReader(settings.ORDERS_ACK_TOPIC)
    yield reader
    reader.close()


@pytest.fixture
def dlq_reader(unique_topics):
    reader = TopicReader(settings.ORDERS_DLQ_TOPIC)
    yield reader
    reader.close()


class PausableProxy:
    """A TCP forwarder to `target` on a loopback port that can refuse service and return."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0  # connections forwarded since start

    def start(self) -> PausableProxy:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # closed by pause()
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def pause(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._server.close()
            self._server = None
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def resume(self) -> None:
        self.start()


@pytest.fixture
def redis_outage(settings):
    """Redis reached through a proxy the test can cut (`.pause()`) and restore."""
    url = urlparse(settings.REDIS_URL)
    proxy = PausableProxy((url.hostname, url.port or 6379)).start()
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = f"redis://127.0.0.1:{proxy.port}{url.path or '/0'}"
    settings.CACHES = caches
    yield proxy
    proxy.pause()


@pytest.fixture
def worker_db_outage():
    """The `worker` database of threads that connect from now on (the `running_worker`
    thread: request this fixture before it) reached through a proxy the test can cut
    (`.pause()`) and restore. The calling thread keeps its direct connection.

    Django builds a thread's connection from `connections.settings[alias]`, the very dict
    the existing connections hold as `settings_dict`: the entry is replaced by a copy,
    never edited in place, and put back on teardown.
    """
    from django.db import connections

    direct = connections["worker"]  # this thread's wrapper, created before the swap
    original = connections.settings["worker"]
    if (original["HOST"] or "").startswith("/"):
        pytest.skip("the worker database is reached through a Unix socket, not TCP")
    proxy = PausableProxy((original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432)))
    proxy.start()
    proxied = copy.deepcopy(original)
    proxied["HOST"], proxied["PORT"] = "127.0.0.1", str(proxy.port)
    connections.settings["worker"] = proxied
    try:
        yield proxy
    finally:
        connections.settings["worker"] = original
        proxy.pause()
    assert connections["worker"] is direct
    assert connections.settings["worker"] is original
    assert direct.settings_dict is original


@pytest.fixture
def rules_fail_for(monkeypatch):
    """`rules_fail_for(order_id)`: deciding an event of that order raises
    `RuntimeError("boom")`, an error no check foresaw; other orders are decided as usual."""

    def fail_for(order_id: str) -> None:
        decide = services.order_event_decide

        def decide_failing(*, stored, event, processed_at):
            if event.order_id == order_id:
                raise RuntimeError("boom")
            return decide(stored=stored, event=event, processed_at=processed_at)

        monkeypatch.setattr(services, "order_event_decide", decide_failing)

    return fail_for


@pytest.fixture
def redis_result_fails_for(monkeypatch):
    """`redis_result_fails_for(order_id)`: building that order's Redis result raises
    `OverflowError` (after the database step succeeded); other orders are written."""

    def fail_for(order_id: str) -> None:
        result_of = results.order_result_of

        def result_of_failing(state):
            if state.order_id == order_id:
                raise OverflowError("date value out of range")
            return result_of(state)

        monkeypatch.setattr(results, "order_result_of", result_of_failing)

    return fail_for
