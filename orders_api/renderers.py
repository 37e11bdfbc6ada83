"""JSON answers whose Decimals are numbers with exactly their digits.

DRF's `JSONRenderer` goes through the standard library's encoder, which can only write a
Decimal through a float: 999999999999999999.99 came out as 1e+18 and 70368744177664.01
as 70368744177664.02. `ExactJSONRenderer` keeps DRF's rendering (indentation, compact
separators, strict floats, \\u2028 escapes, the browsable API's content) and hands the
encoding to simplejson, which writes a Decimal as its own text (`Decimal("5.00")` is
`5.00`); every other value is encoded as DRF does.
"""

from __future__ import annotations

import simplejson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class ExactJSONEncoder(JSONEncoder):
    """DRF's encoder, with Decimals written as JSON numbers that keep all their digits."""

    def encode(self, o) -> str:
        return simplejson.dumps(
            o,
            skipkeys=self.skipkeys,
            ensure_ascii=self.ensure_ascii,
            check_circular=self.check_circular,
            allow_nan=self.allow_nan,
            sort_keys=self.sort_keys,
            indent=self.indent,
            separators=(self.item_separator, self.key_separator),
            default=self.default,  # DRF's: dates, UUIDs, lazy strings, querysets...
            use_decimal=True,
            namedtuple_as_object=False,  # a tuple is an array, as with the standard library
        )


class ExactJSONRenderer(JSONRenderer):
    """`application/json` with exact Decimals (REST_FRAMEWORK's default renderer)."""

    encoder_class = ExactJSONEncoder
