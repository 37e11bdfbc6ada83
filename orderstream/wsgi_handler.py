"""The API's WSGI handler: Django's, asking a fast path first.

settings.API_FAST_PATH names the fast path as MIDDLEWARE names middleware (the core
imports no app): `orders_api.fast_reads.FastReads`, which answers GET /orders/{order_id}
byte for byte as DRF would, without the middleware chain and DRF. Every request it does
not answer goes through them.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.utils.module_loading import import_string

from orderstream.charset import TextCharsetWSGIHandler
from orderstream.http_metrics import request_record


class ApiWSGIHandler(TextCharsetWSGIHandler):
    """TextCharsetWSGIHandler, asking the fast path first (see the module).

    The fast path has `build()`, None when it is off, and of what it builds
    `answer(request)`, a response or None, and `view_name`, the metrics' label of what it
    answers."""

    fast_reads = None

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async)
        self.fast_reads = import_string(settings.API_FAST_PATH).build()

    def get_response(self, request):
        if self.fast_reads is not None:
            started = time.perf_counter()
            response = self.fast_reads.answer(request)
            if response is not None:
                response._resource_closers.append(request.close)  # as Django's does
                view = self.fast_reads.view_name
                request_record(view, request.method, response.status_code, started)
                return response
        return super().get_response(request)
