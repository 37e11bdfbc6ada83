"""Requests that name a charset which is no text encoding (`base64`, `hex`, `zlib`) get a 415.

Django takes any charset Python's codecs know as the request's encoding, and sets it while
building the request: a bytes-to-bytes codec then fails decoding the query string (a 500)
before any middleware runs. So the WSGI entry point (orderstream/wsgi.py) builds its
requests with `TextCharsetRequest`, which leaves such a charset out and remembers it, and
the API's `orders_api.charset.RefuseNonTextCharsetMiddleware` answers 415 in its error
shape.
"""

from __future__ import annotations

import codecs

from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.utils.http import parse_header_parameters


def is_text_encoding(name: str) -> bool:
    try:
        return codecs.lookup(name)._is_text_encoding
    except LookupError:
        return True  # unknown names are ignored by Django (it decodes as UTF-8)


class TextCharsetRequest(WSGIRequest):
    """A WSGIRequest that ignores a non-text charset (kept in `refused_charset`)."""

    refused_charset: str | None = None

    def _set_content_type_params(self, meta):
        _, params = parse_header_parameters(meta.get("CONTENT_TYPE", ""))
        charset = params.get("charset")
        if charset and not is_text_encoding(charset):
            self.refused_charset = charset
            meta["CONTENT_TYPE"] = meta["CONTENT_TYPE"].split(";", 1)[0]
        super()._set_content_type_params(meta)


class TextCharsetWSGIHandler(WSGIHandler):
    request_class = TextCharsetRequest
