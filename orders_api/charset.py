"""415 for a request whose charset is no text encoding, in the API's error shape.

The WSGI entry point's `orderstream.charset.TextCharsetRequest` leaves such a charset out
(Django would fail decoding with it, a 500) and keeps it in `refused_charset`; this
middleware answers for it.
"""

from __future__ import annotations

from orders_api.exceptions import json_error


class RefuseNonTextCharsetMiddleware:
    """415 for a request whose charset TextCharsetRequest left out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        charset = getattr(request, "refused_charset", None)
        if charset:
            return json_error(415, "Content-Type", f"unsupported charset {charset!r}: send UTF-8")
        return self.get_response(request)
