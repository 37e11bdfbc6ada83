"""Strict JSON for the API: a body parser with a size bound, and `json_loads_strict`.

DRF's parsers read the request stream directly, which bypasses Django's
DATA_UPLOAD_MAX_MEMORY_SIZE check; `BoundedJSONParser` checks Content-Length up front and
counts what it reads, so chunked bodies without a length are bounded too (413).
`json_loads_strict` (the body, and a `payload_json` string) refuses what PostgreSQL or
the event encoding would choke on later: NaN and Infinity, numbers too large for a float
(1e400, which Python reads as infinity), and nesting deeper than JSON_MAX_DEPTH (which
would otherwise end in a RecursionError somewhere). A Content-Type charset that is no
text encoding (`base64`, `hex`, `zlib`) is a 415.

Numbers are kept exactly or refused, never changed: a payload is stored (and sent to the
worker) as JSON written from Python floats, so a number with a fraction or an exponent is
accepted only when a float holds it exactly (`orderstream.exact_json.exact_float`);
70368744177664.01 or 999999999999999999.99 sent as JSON numbers are 400s that say to send
them as strings, which are exact at any size.
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser

from orders_api.exceptions import PayloadTooLarge
from orderstream.exact_json import InexactNumber, exact_float

# Deepest nesting of arrays and objects accepted in a body or a payload_json string.
JSON_MAX_DEPTH = 100


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


def _too_deep(value, limit: int) -> bool:
    """Whether `value` nests arrays/objects more than `limit` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def json_loads_strict(text: str):
    """`json.loads` with exact, finite numbers only (no NaN, Infinity, 1e400, or a number
    a float would change) and at most JSON_MAX_DEPTH levels deep.

    Raises ValueError (with the reason; `InexactNumber` for a number a float would
    change) for anything it refuses.
    """
    too_deep = ValueError(f"nested deeper than {JSON_MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=exact_float)
    except RecursionError:
        raise too_deep from None
    if _too_deep(value, JSON_MAX_DEPTH):
        raise too_deep
    return value


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")


class BoundedJSONParser(JSONParser):
    """JSON objects only, at most API_MAX_BODY_BYTES bytes."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise _too_large(limit)
        # Django keeps a charset Python knows (it ignores unknown names), even one that is
        # no text encoding: bytes.decode("base64") is a LookupError.
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except LookupError:
            raise UnsupportedMediaType(
                f"charset={encoding}", detail=f"unsupported charset {encoding!r}: send UTF-8"
            ) from None
        except UnicodeDecodeError as exc:
            raise ParseError(f"malformed JSON: {exc}") from None
        try:
            return json_loads_strict(text)
        except InexactNumber as exc:
            raise ParseError(str(exc)) from None
        except ValueError as exc:
            raise ParseError(f"malformed JSON: {exc}") from None
