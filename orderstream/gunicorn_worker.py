"""The API's gunicorn worker (gunicorn.conf.py's worker_class): gthread with a lane of its
own for reads (GET and HEAD, peeked at, go to GUNICORN_READ_THREADS threads of their own,
so /health never queues behind POSTs), and a quit that runs once and cannot hang on the
pool's lock. Why: docs/decisions/gunicorn-read-lane-and-quit.md.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from concurrent import futures

from gunicorn.workers import gthread
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker

READ_METHODS = (b"GET ", b"HEAD ")
# gunicorn passes unknown settings to nobody: the worker reads its own variable.
READ_THREADS_ENV = "GUNICORN_READ_THREADS"
GIL_SWITCH_SECONDS = 0.001
# A handled connection's outcome that tells gthread's `finish_request` to wait on the
# poller for the connection's first bytes.
DEFERRED: futures.Future = futures.Future()
DEFERRED.set_result(gthread._DEFER)


def read_threads() -> int:
    return max(int(os.environ.get(READ_THREADS_ENV, "4")), 1)


def first_bytes(sock: socket.socket) -> bytes | None:
    """The first bytes of the request waiting on `sock`, left there to be parsed; None while
    none has arrived (b"" once the client closed or the connection broke)."""
    try:
        return sock.recv(len(READ_METHODS[-1]), socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""  # a broken connection: gthread's own handling closes it


def starts_a_read(head: bytes | None) -> bool:
    """Whether a request's first bytes (`first_bytes`) start with GET or HEAD (False while
    none of it has arrived yet)."""
    return (head or b"").startswith(READ_METHODS)


class ApiThreadWorker(ThreadWorker):
    """gthread, with GET and HEAD requests served by a pool of their own, and a quit that
    runs once (see the module)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A lock, not a flag: acquiring it is one call, which no signal handler can split
        # between a test and a set.
        self._quit_once = threading.Lock()

    def handle_quit(self, sig, frame):
        if not self._quit_once.acquire(blocking=False):
            return  # a quit is under way (this signal interrupted it): it exits the worker
        Worker.handle_quit(self, sig, frame)  # worker_int, then sys.exit(0)

    def init_process(self):
        # A thread waiting for the GIL gets it after at most this long (Python's default:
        # 5 ms). A read takes the GIL a dozen times (each socket and database call gives it
        # back); behind POST threads that keep it busy, each of those waits took up to 5 ms.
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        # Before gthread's: its init_process ends in the worker's loop and never returns.
        self.read_pool = futures.ThreadPoolExecutor(
            max_workers=read_threads(), thread_name_prefix="reads"
        )
        super().init_process()

    def enqueue_req(self, conn):
        head = first_bytes(conn.sock)  # one peek chooses both the wait and the lane
        if head is None and not conn.initialized and self.alive:
            # Accepted before the client's first byte: no lane can be chosen yet. gthread's
            # own wait for it (a deferred connection: on the poller, no thread held) hands
            # it back here once it is readable. (Sent to a pool now, a GET queued behind
            # the waiting POSTs.)
            self.finish_request(conn, DEFERRED)
            return
        pool = self.read_pool if starts_a_read(head) else self.tpool
        done = pool.submit(self.handle, conn)
        done.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def run(self):
        try:
            super().run()
        finally:
            self.read_pool.shutdown(wait=False)
