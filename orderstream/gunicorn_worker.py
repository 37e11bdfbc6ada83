"""The API's gunicorn worker: gthread with a lane of its own for reads.

gthread hands every request to one thread pool, first come first served, behind an
unbounded queue. Under a flood of POSTs (each a database write, some waiting for their ACK)
a `GET /health` from a load balancer, a `GET /ready` or a read of an order waits behind all
of them, and the API looks down exactly while it absorbs writes. Here a request whose first
bytes say `GET ` or `HEAD ` (peeked at, not read: the request is parsed as usual) goes to a
pool of GUNICORN_READ_THREADS threads that only reads use; everything else to gthread's
pool of GUNICORN_THREADS.
"""

from __future__ import annotations

import os
import socket
from concurrent import futures

from gunicorn.workers.gthread import ThreadWorker

READ_METHODS = (b"GET ", b"HEAD ")
# gunicorn passes unknown settings to nobody: the worker reads its own variable.
READ_THREADS_ENV = "GUNICORN_READ_THREADS"


def read_threads() -> int:
    return max(int(os.environ.get(READ_THREADS_ENV, "4")), 1)


def is_read(sock: socket.socket) -> bool:
    """Whether the request waiting on `sock` starts with GET or HEAD (False while none of
    it has arrived yet: gthread's pool then waits for it, as it does for every request)."""
    try:
        head = sock.recv(len(READ_METHODS[-1]), socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return False  # a broken connection: gthread's own handling closes it
    return head.startswith(READ_METHODS)


class ApiThreadWorker(ThreadWorker):
    """gthread, with GET and HEAD requests served by a pool of their own (see the module)."""

    def init_process(self):
        # Before gthread's: its init_process ends in the worker's loop and never returns.
        self.read_pool = futures.ThreadPoolExecutor(
            max_workers=read_threads(), thread_name_prefix="reads"
        )
        super().init_process()

    def enqueue_req(self, conn):
        pool = self.read_pool if is_read(conn.sock) else self.tpool
        done = pool.submit(self.handle, conn)
        done.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def run(self):
        try:
            super().run()
        finally:
            self.read_pool.shutdown(wait=False)
