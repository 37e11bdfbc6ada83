"""GET /orders/{order_id} for JSON clients without DRF: the hot read's fast path.

The API's WSGI handler (`orderstream/wsgi_handler.py`) asks `FastReads.answer` first;
on None the request goes through Django's middleware and DRF as any other. It answers
only a request whose answer it knows to be the same as theirs, byte for byte (status,
headers and their order, body; tests/test_fast_reads.py compares the two):

- GET or HEAD of `/orders/<uuid in its canonical form>`, no query string (`?format=`
  chooses a renderer), no body and no Content-Type, no Cookie (a session: the browsable
  API, a staff login, CSRF), an Accept DRF answers with JSON as it is (`*/*`,
  `application/json`, or none);
- allowed in: API_TOKENS empty, or a valid bearer token (anything else, DRF's 401/403);
- an order that exists (an unknown one gets DRF's 404), read without a database error
  (DRF's 500).

Its body is the view DRF's `retrieve` answers (the same selectors and renderer). Its
headers come from the same code as theirs: DRF's Vary and Allow, and every middleware of
settings.MIDDLEWARE run as Django would, or known to do nothing for such a request
(`MIDDLEWARE_ROLES`). A middleware missing from that table turns the fast path off (a
warning at start), until someone says what it does here. API_FAST_READS=0 turns it off.

Why: through DRF and the full middleware chain, about three quarters of a GET's Python CPU
went to them, not to the query, the Redis GET and the rendering; without them a GET
costs about 0.6 x the CPU (docs/benchmarks.md, "GET /orders/{id} alone").
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.cache import patch_vary_headers
from django.utils.module_loading import import_string
from rest_framework.authentication import get_authorization_header

from orders_api.authentication import token_known
from orders_api.renderers import ExactJSONRenderer
from orders_api.selectors import order_result_get, order_row, order_view

logger = logging.getLogger(__name__)

ORDER_PATH = re.compile(r"/orders/([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})", re.ASCII)
READ_METHODS = frozenset({"GET", "HEAD"})
# Accept headers DRF's negotiation answers with ExactJSONRenderer, without parameters
# (`application/json; indent=4` would indent); an absent Accept is `*/*` to DRF.
JSON_ACCEPTS = frozenset({"*/*", "application/json"})
# DRF's headers of OrderViewSet's detail route (`APIView.default_response_headers`):
# two renderers, so Vary: Accept; the methods the route maps (HEAD as GET), and OPTIONS.
ALLOW = "GET, HEAD, OPTIONS"
MEDIA_TYPE = ExactJSONRenderer.media_type
RENDERER = ExactJSONRenderer()

RUN = "run"  # its process_request and process_response, as Django runs them
SESSION_READ = "session read"  # SessionAuthentication read the session: Vary: Cookie
INERT = "inert"  # does nothing for a request the fast path answers
# What each middleware does to a request the fast path answers (see the module).
MIDDLEWARE_ROLES = {
    # The handler counts and times the fast answers itself.
    "orderstream.http_metrics.RequestMetricsMiddleware": INERT,
    # Acts on a refused Content-Type charset: the fast path takes no Content-Type.
    "orders_api.charset.RefuseNonTextCharsetMiddleware": INERT,
    "django.middleware.security.SecurityMiddleware": RUN,
    # Serves STATIC_URL's files only.
    "whitenoise.middleware.WhiteNoiseMiddleware": INERT,
    # No cookie: an empty session, never saved; read by DRF's SessionAuthentication
    # while API_TOKENS is empty (not behind a valid token), which adds Vary: Cookie.
    "django.contrib.sessions.middleware.SessionMiddleware": SESSION_READ,
    "django.middleware.common.CommonMiddleware": RUN,
    # A GET: no check; no token asked for, so no cookie set.
    "django.middleware.csrf.CsrfViewMiddleware": INERT,
    # A lazy user nobody reads.
    "django.contrib.auth.middleware.AuthenticationMiddleware": INERT,
    # Admin pages only.
    "orderstream.admin_messages.AdminMessageMiddleware": INERT,
    "django.middleware.clickjacking.XFrameOptionsMiddleware": RUN,
}

ResponseStep = Callable[[HttpRequest, HttpResponse, bool], HttpResponse]


def _not_called(request):
    raise AssertionError("the fast path calls the middleware's phases, not the chain")


def _session_vary(request: HttpRequest, response: HttpResponse, session_read: bool):
    if session_read:
        patch_vary_headers(response, ("Cookie",))
    return response


def order_body(*, order_id: uuid.UUID) -> bytes | None:
    """DRF's JSON body of GET /orders/{order_id} (`OrderViewSet.retrieve`), or None when
    there is no such order. One query and one Redis GET."""
    order = order_row(order_id=order_id)
    if order is None:
        return None
    view = order_view(order=order, result=order_result_get(order_id=order_id))
    return RENDERER.render({"order": view}, MEDIA_TYPE, {})


class FastReads:
    """The fast path of one handler: its middleware, made once (see the module)."""

    def __init__(self, request_steps: list, response_steps: list[ResponseStep], view_name: str):
        self.request_steps = request_steps  # process_request methods, in MIDDLEWARE order
        self.response_steps = response_steps  # in reverse, as Django runs responses
        self.view_name = view_name  # the metrics' label, as RequestMetricsMiddleware's

    @classmethod
    def build(cls) -> FastReads | None:
        """The fast path for settings.MIDDLEWARE, or None when it is off."""
        if not settings.API_FAST_READS:
            return None
        unknown = [path for path in settings.MIDDLEWARE if path not in MIDDLEWARE_ROLES]
        if unknown:
            logger.warning(
                "fast path of GET /orders/{id} off: what %s does to it is not known "
                "(orders_api/fast_reads.py MIDDLEWARE_ROLES)",
                ", ".join(unknown),
            )
            return None
        try:
            view_name = resolve(f"/orders/{uuid.UUID(int=0)}").view_name
        except Resolver404:
            logger.warning("fast path of GET /orders/{id} off: the URLconf has no such route")
            return None
        request_steps, response_steps = [], []
        for path in settings.MIDDLEWARE:
            role = MIDDLEWARE_ROLES[path]
            if role == RUN:
                middleware = import_string(path)(_not_called)
                if hasattr(middleware, "process_request"):
                    request_steps.append(middleware.process_request)
                if hasattr(middleware, "process_response"):
                    response_steps.append(_without_flag(middleware.process_response))
            elif role == SESSION_READ:
                response_steps.append(_session_vary)
        response_steps.reverse()
        return cls(request_steps, response_steps, view_name)

    def answer(self, request: HttpRequest) -> HttpResponse | None:
        """The answer to `request`, or None when Django and DRF answer it."""
        meta = request.META
        if (
            request.method not in READ_METHODS
            or meta.get("QUERY_STRING")
            or meta.get("HTTP_ACCEPT", "*/*") not in JSON_ACCEPTS
            or "HTTP_COOKIE" in meta
            or meta.get("CONTENT_TYPE")
            or meta.get("CONTENT_LENGTH", "0") not in ("", "0")
            or "HTTP_TRANSFER_ENCODING" in meta
        ):
            return None
        match = ORDER_PATH.fullmatch(request.path_info)
        if match is None:
            return None
        session_read = _session_read(request)
        if session_read is None:
            return None
        try:
            for step in self.request_steps:
                if step(request) is not None:  # a redirect (SECURE_SSL_REDIRECT, www)
                    return None
            body = order_body(order_id=uuid.UUID(match[1]))
        except (DisallowedHost, PermissionDenied, DatabaseError):
            return None  # Django answers it again, with its error and its logging
        if body is None:
            return None
        response = HttpResponse(body, content_type=MEDIA_TYPE)
        patch_vary_headers(response, ("Accept",))
        response["Allow"] = ALLOW
        for step in self.response_steps:
            response = step(request, response, session_read)
        return response


def _without_flag(process_response) -> ResponseStep:
    def step(request: HttpRequest, response: HttpResponse, session_read: bool):
        return process_response(request, response)

    return step


def _session_read(request: HttpRequest) -> bool | None:
    """Whether DRF would read the session for `request` (True while API_TOKENS is empty:
    BearerTokenAuthentication passes, SessionAuthentication reads it; False behind a
    valid bearer token); None when DRF would refuse it."""
    if not settings.API_TOKENS:
        return True
    parts = get_authorization_header(request).split()
    if len(parts) == 2 and parts[0].lower() == b"bearer" and token_known(parts[1]):
        return False
    return None
