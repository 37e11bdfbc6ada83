"""The API's two lanes (orderstream/rsgi_lanes.py), driven as granian drives them: reads on
the loop's thread, in one context; other requests on the write pool; a waiting write never
holds a read; the WSGI environ of an RSGI scope. (Through real granian processes:
test_degrade.py, test_server_limits.py and the other tests that start the API.)"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from types import SimpleNamespace

import pytest
from django.core.handlers.wsgi import WSGIRequest
from hypothesis import given
from hypothesis import strategies as st

from orderstream.rsgi_lanes import SERVER_ERROR_BODY, RsgiLanes, wsgi_environ


@pytest.fixture(autouse=True)
def worker_process_state(monkeypatch):
    """What a worker's start changes in its process (the environment, the GIL's switch
    interval), put back after each test."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "")
    monkeypatch.setattr(sys, "setswitchinterval", lambda seconds: None)


class Headers(dict):
    """RSGI's headers: a mapping of lower-case names, repeated ones as items."""

    def __init__(self, pairs=()):
        super().__init__(pairs)
        self.pairs = list(pairs)

    def items(self):
        return self.pairs


def scope(method="GET", path="/orders/1", headers=(), query_string=""):
    return SimpleNamespace(
        method=method,
        path=path,
        query_string=query_string,
        headers=Headers(headers),
        server="127.0.0.1:8080",
        client="127.0.0.1:50123",
        scheme="http",
        http_version="1.1",
    )


class Proto:
    """RSGI's HTTP protocol object: the body in chunks, and the response it is given."""

    def __init__(self, *chunks: bytes):
        self.chunks = list(chunks)
        self.read = 0
        self.response = None

    def __aiter__(self):
        return self._chunks()

    async def _chunks(self):
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    def response_bytes(self, status, headers, body):
        self.response = (status, headers, body)


def lanes(app, **kwargs) -> RsgiLanes:
    served = RsgiLanes(app, write_threads=kwargs.pop("write_threads", 4), max_body=100, **kwargs)
    served.__rsgi_init__(None)
    return served


def serve(served: RsgiLanes, *requests: tuple) -> list[Proto]:
    """Each (scope, proto) served as one task of one loop, all at once; their protos."""

    async def all_of_them():
        await asyncio.gather(*(served.__rsgi__(s, p) for s, p in requests))

    asyncio.run(all_of_them())
    return [proto for _, proto in requests]


def answering(body=b"{}", status="200 OK", seen=None):
    def app(environ, start_response):
        if seen is not None:
            seen.append((environ["REQUEST_METHOD"], threading.current_thread().name, environ))
        start_response(status, [("Content-Type", "application/json")])
        return [body]

    return app


def test_reads_run_on_the_loops_thread_and_writes_on_the_pool():
    seen = []
    served = lanes(answering(seen=seen))
    requests = [
        (scope("GET"), Proto()),
        (scope("HEAD"), Proto()),
        (scope("POST", headers=[("content-length", "2")]), Proto(b"{}")),
        (scope("DELETE"), Proto()),
    ]
    serve(served, *requests)
    threads = {method: name for method, name, _ in seen}
    assert threads["GET"] == threads["HEAD"] == threading.current_thread().name
    assert threads["POST"].startswith("writes") and threads["DELETE"].startswith("writes")
    assert [proto.response[0] for _, proto in requests] == [200, 200, 200, 200]


def test_a_head_answer_keeps_its_headers_and_drops_its_body():
    served = lanes(answering(b'{"order":1}'))
    (get,) = serve(served, (scope("GET"), Proto()))
    (head,) = serve(served, (scope("HEAD"), Proto()))
    assert get.response == (200, [("Content-Type", "application/json")], b'{"order":1}')
    assert head.response == (200, [("Content-Type", "application/json")], b"")


def test_a_waiting_write_holds_no_read():
    """A POST blocked on its pool thread (as one waiting for its ACK is): GETs are answered
    meanwhile, then the POST once it is let go."""
    released = threading.Event()
    order = []

    def app(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            assert released.wait(10)
        order.append(environ["REQUEST_METHOD"])
        start_response("200 OK", [])
        return [b""]

    served = lanes(app)

    async def both():
        write = asyncio.ensure_future(served.__rsgi__(scope("POST"), Proto(b"{}")))
        await asyncio.sleep(0.05)  # the POST holds its thread now
        for _ in range(3):
            await served.__rsgi__(scope("GET"), Proto())
        released.set()
        await write

    asyncio.run(both())
    assert order == ["GET", "GET", "GET", "POST"]


def test_reads_share_one_context_across_requests():
    """What one read keeps in a context variable (as asgiref keeps Django's connections
    while a loop runs), the next read finds: each read is its own task, whose context
    would otherwise be a fresh copy, and each read would open its own connections."""
    kept = contextvars.ContextVar("kept")
    found = []

    def app(environ, start_response):
        found.append(kept.get(None))
        kept.set("connection")
        start_response("200 OK", [])
        return [b""]

    served = lanes(app)
    serve(served, (scope("GET"), Proto()))
    serve(served, (scope("GET"), Proto()))
    assert found == [None, "connection"]


def test_a_body_is_read_up_to_one_byte_over_the_limit():
    seen = []
    served = lanes(answering(seen=seen))
    chunks = [b"x" * 60] * 5
    (proto,) = serve(served, (scope("POST", headers=[("content-length", "300")]), Proto(*chunks)))
    (_, _, environ) = seen[0]
    assert environ["wsgi.input"].read() == b"x" * 101  # the parser answers 413
    assert environ["CONTENT_LENGTH"] == "300"
    assert proto.read == 2  # the rest is never read


def test_a_get_with_no_body_reads_none_and_one_with_a_body_is_read():
    seen = []
    served = lanes(answering(seen=seen))
    empty, with_body = Proto(b"never read"), Proto(b"{}")
    serve(served, (scope("GET"), empty))
    serve(served, (scope("GET", headers=[("content-length", "2")]), with_body))
    assert (empty.read, with_body.read) == (0, 1)
    assert seen[1][2]["wsgi.input"].read() == b"{}"


def test_an_unhandled_failure_is_a_json_500():
    def broken(environ, start_response):
        raise RuntimeError("no start_response")

    (proto,) = serve(lanes(broken), (scope("POST"), Proto(b"{}")))
    assert proto.response == (500, [("Content-Type", "application/json")], SERVER_ERROR_BODY)


def test_each_worker_starts_and_stops_its_listener_around_serving():
    calls = []
    served = lanes(
        answering(), started=lambda: calls.append("started"), stopping=lambda: calls.append("off")
    )
    assert calls == ["started"]
    served.__rsgi_del__(None)
    assert calls == ["started", "off"]
    assert served.write_pool._shutdown


def test_the_environ_names_the_request_as_a_wsgi_server_would():
    environ = wsgi_environ(
        scope(
            "POST",
            "/orders",
            [
                ("content-type", "application/json"),
                ("content-length", "12"),
                ("accept", "text/html"),
                ("accept", "application/json"),
                ("idempotency-key", "k-1"),
            ],
            query_string="wait=false",
        ),
        b"{}",
    )
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "12"
    assert environ["HTTP_ACCEPT"] == "text/html,application/json"
    assert environ["HTTP_IDEMPOTENCY_KEY"] == "k-1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8080")
    assert (environ["REMOTE_ADDR"], environ["QUERY_STRING"]) == ("127.0.0.1", "wait=false")
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert "HTTP_CONTENT_TYPE" not in environ


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
def test_django_reads_back_the_path_granian_decoded(tail):
    """RSGI gives the path decoded, as text (an id with slashes, emoji, spaces): Django's
    request has exactly that path."""
    path = "/orders/by-external/" + tail
    request = WSGIRequest(wsgi_environ(scope("GET", path), b""))
    assert request.path == path
