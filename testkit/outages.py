"""Services that go away and come back, for the tests of outages: a TCP proxy a test
can cut and restore, and a database alias reached through one."""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import threading
from collections.abc import Iterator

import pytest

from devstack.ports import free_port


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


@contextlib.contextmanager
def database_outage(alias: str) -> Iterator[PausableProxy]:
    """The database `alias` of threads that connect from now on (a loop's thread: start
    it inside the block) reached through a proxy the test can cut (`.pause()`) and
    restore. The calling thread keeps its direct connection.

    Django builds a thread's connection from `connections.settings[alias]`, the very dict
    the existing connections hold as `settings_dict`: the entry is replaced by a copy,
    never edited in place, and put back on exit.
    """
    from django.db import connections

    direct = connections[alias]  # this thread's wrapper, created before the swap
    original = connections.settings[alias]
    if (original["HOST"] or "").startswith("/"):
        pytest.skip(f"the {alias} database is reached through a Unix socket, not TCP")
    proxy = PausableProxy((original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432)))
    proxy.start()
    proxied = copy.deepcopy(original)
    proxied["HOST"], proxied["PORT"] = "127.0.0.1", str(proxy.port)
    connections.settings[alias] = proxied
    try:
        yield proxy
    finally:
        connections.settings[alias] = original
        proxy.pause()
    assert connections[alias] is direct
    assert connections.settings[alias] is original
    assert direct.settings_dict is original


@contextlib.contextmanager
def broker_frozen(broker) -> Iterator[None]:
    """The session's broker stopped (SIGSTOP) inside, every node of a cluster at once; it
    goes on (SIGCONT) on exit. A node frozen is a broker that keeps its connections but
    answers nothing: the hardest outage for a client to notice."""
    pids = [node.process.pid for node in getattr(broker, "nodes", [broker])]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
