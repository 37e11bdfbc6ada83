"""Schemathesis hooks for the fuzz test (test_schema_fuzz.py loads them in `st run`).

- The schema's own string format `json-object` (payload_json given as text): Schemathesis
  cannot guess what it means, so it gets JSON objects written as strings.
- GET /orders: a `page` past the last page is a 400 (README, "HTTP API"), and a schema
  cannot say how many pages a list has, so a page number above 1 is dropped before the request
  (the lists the fuzzer asks for hold a page or none); so is an `offset` above 0 (past the
  end), or one beside a `page` (a 400: the schema cannot say "one of the two").

Kept free of Django so the CLI can import it alone.
"""

import json

import schemathesis
from hypothesis import strategies as st

# Text PostgreSQL stores (no NUL, no unpaired surrogates), as the API requires.
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)

schemathesis.openapi.format(
    "json-object", st.dictionaries(TEXT, VALUES, max_size=4).map(json.dumps)
)


def _whole_number_above(value, least: int) -> bool:
    text = str(value)
    return text.isascii() and text.isdigit() and int(text) > least


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """Drop a whole-number `page` above 1 from GET /orders (a 400 past the last page), in
    every phase (the coverage phase asks for page=2 as the minimum plus one), and an
    `offset` above 0 or beside a `page`."""
    if (case.method.upper(), case.path) != ("GET", "/orders") or not case.query:
        return
    if _whole_number_above(case.query.get("page", ""), 1):
        case.query = {name: value for name, value in case.query.items() if name != "page"}
    offset = case.query.get("offset")
    if offset is not None and (_whole_number_above(offset, 0) or "page" in case.query):
        case.query = {name: value for name, value in case.query.items() if name != "offset"}
