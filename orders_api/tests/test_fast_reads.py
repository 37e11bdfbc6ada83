"""The fast path of GET /orders/{order_id} (orders_api/fast_reads.py): the answers it gives
are those of DRF and the middleware chain, byte for byte, and it leaves every other
request to them."""

from __future__ import annotations

import contextlib
import io
import json
import re
import uuid

import pytest
from django.core import signals
from django.db import DatabaseError, close_old_connections
from django.urls import Resolver404
from django_redis import get_redis_connection
from prometheus_client import REGISTRY

from orders_api import fast_reads
from orders_api.fast_reads import FastReads
from orderstream.messages import OrderResult
from orderstream.wsgi_handler import ApiWSGIHandler
from testkit.factories import OrderFactory

from .support import USER
from .test_views import a_result_of

pytestmark = pytest.mark.django_db

TOKEN = "fast-read-token"
CSRF_TOKEN = re.compile(rb'"csrfToken": "[^"]*"|name="csrfmiddlewaretoken" value="[^"]*"')


@contextlib.contextmanager
def in_the_test_transaction():
    """As Django's test client: the request signals do not close the test's connection."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def environ(path: str, method: str = "GET", **headers) -> dict:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost:8080",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    env.update(headers)
    return env


def served(handler, env: dict) -> tuple[str, list, bytes]:
    """Status line, headers (Set-Cookie's random token left out) and body."""
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=headers)

    with in_the_test_transaction():
        response = handler(dict(env), start_response)
        try:
            body = b"".join(response)
        finally:
            response.close()
    headers = [(name, value) for name, value in started["headers"] if name != "Set-Cookie"]
    return started["status"], headers, CSRF_TOKEN.sub(b"", body)


@pytest.fixture
def handlers():
    """(fast, full): the API's handler, and the same without its fast path."""
    fast, full = ApiWSGIHandler(), ApiWSGIHandler()
    full.fast_reads = None
    assert fast.fast_reads is not None
    return fast, full


def answered_fast(handler, env: dict) -> bool:
    request = handler.request_class(dict(env))
    with in_the_test_transaction():
        return handler.fast_reads.answer(request) is not None


@pytest.fixture
def result_order():
    """An order with the worker's result in Redis (which overrides status and amount)."""
    order = OrderFactory(user_id=USER, payload={"id": "F-1", "amount": 10, "note": "é\u2028"})
    result = a_result_of(order, payload={"id": "F-1", "amount": 10.5, "note": "é\u2028"})
    redis = get_redis_connection("default")
    key = OrderResult.redis_key(str(order.order_id))
    redis.set(key, result.to_bytes(), ex=60)
    yield order
    redis.delete(key)


def test_an_order_with_a_result_is_answered_fast_byte_for_byte(handlers, result_order):
    fast, full = handlers
    env = environ(f"/orders/{result_order.order_id}", HTTP_ACCEPT="application/json")
    assert answered_fast(fast, env)
    answer = served(fast, env)
    assert answer == served(full, env)
    status, headers, body = answer
    assert status == "200 OK"
    assert dict(headers)["Content-Type"] == "application/json"
    assert json.loads(body)["order"]["status"] == "done"


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ACCEPT": "application/json"},
        {"HTTP_ACCEPT": "*/*"},
        {},  # no Accept
        {"HTTP_AUTHORIZATION": "Bearer ignored-while-api-tokens-is-empty"},
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_order_without_a_result_is_answered_fast_byte_for_byte(handlers, method, headers):
    fast, full = handlers
    order = OrderFactory(user_id=USER, payload={"id": "F-2", "items": [{"price": 9.5}]})
    env = environ(f"/orders/{order.order_id}", method, **headers)
    assert answered_fast(fast, env)
    assert served(fast, env) == served(full, env)


def test_an_upper_case_uuid_is_answered_fast_byte_for_byte(handlers):
    fast, full = handlers
    order = OrderFactory(user_id=USER)
    env = environ(f"/orders/{str(order.order_id).upper()}")
    assert answered_fast(fast, env)
    assert served(fast, env) == served(full, env)


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/orders/{unknown}", {}, "404 Not Found"),
        ("/orders/not-a-uuid", {}, "400 Bad Request"),
        ("/orders/{id}", {"HTTP_ACCEPT": "text/html"}, "200 OK"),  # the browsable API
        ("/orders/{id}", {"HTTP_ACCEPT": "application/json; indent=4"}, "200 OK"),
        ("/orders/{id}", {"QUERY_STRING": "format=api"}, "200 OK"),
        ("/orders/{id}", {"HTTP_COOKIE": "sessionid=nothing"}, "200 OK"),
        ("/orders/{id}", {"CONTENT_TYPE": "application/json"}, "200 OK"),
        ("/orders/{id}", {"HTTP_HOST": "elsewhere.example"}, "400 Bad Request"),
        ("/orders/{id}/", {}, "404 Not Found"),
    ],
)
def test_other_requests_are_left_to_drf(handlers, path, headers, status):
    fast, full = handlers
    order = OrderFactory(user_id=USER)
    env = environ(path.format(id=order.order_id, unknown=uuid.uuid4()), **headers)
    assert not answered_fast(fast, env)
    answer = served(fast, env)
    assert answer[0] == status, answer
    assert answer == served(full, env)


@pytest.mark.parametrize(
    ("authorization", "fast_path", "status"),
    [
        (f"Bearer {TOKEN}", True, "200 OK"),
        ("Bearer wrong-token", False, "401 Unauthorized"),
        (None, False, "401 Unauthorized"),
    ],
)
def test_with_api_tokens_only_a_valid_token_is_answered_fast(
    handlers, settings, authorization, fast_path, status
):
    settings.API_TOKENS = ["another-token", TOKEN]
    fast, full = handlers
    order = OrderFactory(user_id=USER)
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    env = environ(f"/orders/{order.order_id}", **headers)
    assert answered_fast(fast, env) is fast_path
    answer = served(fast, env)
    assert answer[0] == status, answer
    assert answer == served(full, env)


def test_fast_answers_are_counted_as_the_route_is(handlers):
    fast, _ = handlers
    order = OrderFactory(user_id=USER)
    labels = {"view": "orders-detail", "method": "GET", "status": "200"}
    before = REGISTRY.get_sample_value("orderstream_http_requests_total", labels) or 0
    served(fast, environ(f"/orders/{order.order_id}"))
    assert REGISTRY.get_sample_value("orderstream_http_requests_total", labels) == before + 1


def test_the_fast_path_is_off_with_a_middleware_it_does_not_know(settings, caplog):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "testkit.unknown.Middleware"]
    assert FastReads.build() is None
    assert "testkit.unknown.Middleware" in caplog.text


def test_api_fast_reads_0_turns_the_fast_path_off(settings):
    settings.API_FAST_READS = False
    assert FastReads.build() is None
    assert ApiWSGIHandler().fast_reads is None


def test_a_redirect_of_the_security_middleware_is_left_to_django(settings):
    settings.SECURE_SSL_REDIRECT = True
    fast, full = ApiWSGIHandler(), ApiWSGIHandler()
    full.fast_reads = None
    env = environ(f"/orders/{OrderFactory(user_id=USER).order_id}")
    assert not answered_fast(fast, env)
    answer = served(fast, env)
    assert answer[0] == "301 Moved Permanently", answer
    assert answer == served(full, env)


def test_a_database_error_is_left_to_django(handlers, monkeypatch):
    """DRF answers it in the API's error shape (a 500); the fast path does not swallow it."""
    fast, _ = handlers

    def broken(**kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(fast_reads, "order_row", broken)
    assert not answered_fast(fast, environ(f"/orders/{uuid.uuid4()}"))


def test_the_fast_path_is_off_without_the_route(monkeypatch, caplog):
    def no_route(path):
        raise Resolver404(path)

    monkeypatch.setattr(fast_reads, "resolve", no_route)
    assert FastReads.build() is None
    assert "no such route" in caplog.text
