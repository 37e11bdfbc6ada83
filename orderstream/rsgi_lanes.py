"""A WSGI application (Django's handler) served to granian's RSGI interface in two lanes.

- **Reads** (GET and HEAD: the orders, /health, /ready, /metrics, /docs) run on the worker's
  event-loop thread itself, one after another, as soon as they arrive.
- **Everything else** (POST, PUT, DELETE...) runs on a pool of `write_threads` threads.

Why: a read is cheapest on the thread that received it. Handing every request to a pool
thread, as WSGI servers do, costs more CPU than the read itself. A POST, though, waits up
to ORDER_ACK_WAIT_TIMEOUT for its ACK on its pool thread. It never holds the loop, so reads
and /health never queue behind waiting writes, even with the pipeline down (the ACK-wait
gate keeps the waits to half the pool, so writes that do not wait still get a thread).
docs/decisions/api-server-lanes.md has the measurements.

Two things make Django run on the loop's thread as it does on a WSGI thread:

- Django's connections are kept per asyncio task while a loop runs (asgiref's Local),
  which would open a new database connection for every read. The read lane runs every
  call in one `contextvars.Context` of its own, so its connections last across reads, as
  a WSGI thread's do.
- Django refuses blocking calls on a thread whose loop runs (SynchronousOnlyOperation),
  to keep coroutines from sharing a connection. Here each call runs to its end before
  the loop goes on, so none can: DJANGO_ALLOW_ASYNC_UNSAFE turns that check off.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD"})
# A thread waiting for the GIL gets it after at most this long (Python's default: 5 ms):
# the loop's reads take the GIL a dozen times each, beside write threads that keep it busy.
GIL_SWITCH_SECONDS = 0.001
SERVER_ERROR_BODY = b'{"detail":"internal server error"}'

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]
Response = tuple[int, list[tuple[str, str]], bytes]


def wsgi_environ(scope: Any, body: bytes) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an RSGI HTTP `scope` whose body is `body`.

    RSGI gives the path percent-decoded, as text; WSGI wants its UTF-8 bytes as latin-1
    text (Django decodes them back). Repeated headers are joined with commas.
    """
    host, _, port = scope.server.rpartition(":")
    client_host, _, client_port = scope.client.rpartition(":")
    environ = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": scope.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": host,
        "SERVER_PORT": port,
        "REMOTE_ADDR": client_host,
        "REMOTE_PORT": client_port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def wsgi_call(app: WsgiApp, environ: dict[str, Any]) -> Response:
    """Status, headers and whole body of `app`'s answer to `environ` (its iterable closed,
    which ends Django's request: connections given back, request_finished sent)."""
    started: list = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
        started[:] = [int(status[:3]), headers]

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    return status, headers, body


def has_body(scope: Any) -> bool:
    headers = scope.headers
    return "content-length" in headers or "transfer-encoding" in headers


async def read_body(proto: Any, limit: int) -> bytes:
    """The request's body, cut after `limit` bytes (the rest is not read): a body over the
    API's limit reaches the parsers one byte too long, and is refused there (413)."""
    chunks, size = [], 0
    async for chunk in proto:
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)[: limit + 1]


class RsgiLanes:
    """The RSGI application (granian `--interface rsgi`): `wsgi_app` in two lanes.

    `started` and `stopping` run in each worker process, before it serves and after it
    stops (the API's ACK listener); `max_body` bounds what is read of a request body.
    """

    def __init__(
        self,
        wsgi_app: WsgiApp,
        *,
        write_threads: int,
        max_body: int,
        started: Callable[[], None] = lambda: None,
        stopping: Callable[[], None] = lambda: None,
    ):
        self.wsgi_app = wsgi_app
        self.write_threads = write_threads
        self.max_body = max_body
        self.started = started
        self.stopping = stopping
        self.read_context = contextvars.Context()
        self.write_pool: ThreadPoolExecutor | None = None

    def __rsgi_init__(self, loop) -> None:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # see the module
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        self.write_pool = ThreadPoolExecutor(self.write_threads, thread_name_prefix="writes")
        self.started()

    def __rsgi_del__(self, loop) -> None:
        try:
            self.stopping()
        finally:
            self.write_pool.shutdown(wait=False, cancel_futures=True)

    async def __rsgi__(self, scope, proto) -> None:
        try:
            if scope.method in READ_METHODS:
                body = await read_body(proto, self.max_body) if has_body(scope) else b""
                answer = self.read_context.run(self._answer, scope, body)
            else:
                body = await read_body(proto, self.max_body)
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(self.write_pool, self._answer, scope, body)
        except Exception:
            logger.exception("%s %s: no answer from the application", scope.method, scope.path)
            answer = 500, [("Content-Type", "application/json")], SERVER_ERROR_BODY
        status, headers, body = answer
        proto.response_bytes(status, headers, b"" if scope.method == "HEAD" else body)

    def _answer(self, scope, body: bytes) -> Response:
        return wsgi_call(self.wsgi_app, wsgi_environ(scope, body))
