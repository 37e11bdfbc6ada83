"""Requests by view, method and status, and their latency: the API's HTTP metrics.

`RequestMetricsMiddleware` (first in MIDDLEWARE, so it times everything the server does
for a request) adds two updates per request: a counter and a histogram observation.
django-prometheus was not used: its middleware pair updates about a dozen metrics per
request, each a locked file write in multiprocess mode, for figures the API does not need.

Labels stay few whatever clients send: `view` is the URL pattern's name (`orders-list`,
`orders-detail`, `health`, `metrics`, `admin:...`), `unmatched` for a path that matches
none (404s, and static files WhiteNoise answers before the URLs are resolved); a method
outside METHODS is `other`.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

http_requests = Counter(
    "orderstream_http_requests",
    "HTTP requests answered, by view, method and status",
    ["view", "method", "status"],
)
http_request_duration = Histogram(
    "orderstream_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by view and method",
    ["view", "method"],
    # Up to the ACK wait (ORDER_ACK_WAIT_TIMEOUT, 10 s by default) and a little beyond.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
)


class RequestMetricsMiddleware:
    """Counts and times every request (see the module)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        view = match.view_name if match is not None else UNMATCHED
        request_record(view, request.method, response.status_code, started)
        return response


def request_record(view: str, method: str, status: int, started: float) -> None:
    """Count and time one request to `view` that started at `started` (perf_counter)."""
    elapsed = time.perf_counter() - started
    method = method if method in METHODS else "other"
    http_requests.labels(view, method, str(status)).inc()
    http_request_duration.labels(view, method).observe(elapsed)
