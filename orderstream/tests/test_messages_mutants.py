"""The message schema's exact behaviour: error reasons, ids kept, encoding corners (tests
that kill the mutants `make mutation` found surviving in `orderstream.messages`)."""

from __future__ import annotations

import json
import time
import uuid
from collections import namedtuple
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from orderstream.exact_json import InexactNumber, dumps, exact_float, loads
from orderstream.messages import InvalidMessage, OrderAck, OrderEvent, OrderResult
from orderstream.timestamps import event_time, rfc3339, utc_now

EVENT_ID = str(uuid.uuid4())
ORDER_ID = str(uuid.uuid4())


def event_fields(**changes) -> dict:
    fields = {
        "event_id": EVENT_ID,
        "order_id": ORDER_ID,
        "user_id": str(uuid.uuid4()),
        "payload": {"amount": 1},
        "status": "created",
        "version": 1,
        "timestamp": "2026-01-02T03:04:05Z",
    }
    return fields | changes


def invalid_event(raw: bytes | None) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as raised:
        OrderEvent.from_bytes(raw)
    return raised.value


# ---------------------------------------------------------------- times
def test_utc_now_is_aware_utc():
    assert utc_now().tzinfo is UTC


def test_rfc3339_writes_utc_with_z_whatever_the_process_time_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        paris = timezone(timedelta(hours=2))
        assert rfc3339(datetime(2026, 1, 2, 5, 4, 5, tzinfo=paris)) == "2026-01-02T03:04:05Z"
        assert (
            rfc3339(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02T03:04:05.000006Z"
        )
    finally:
        monkeypatch.undo()
        time.tzset()


# ---------------------------------------------------------------- JSON
def test_dumps_writes_datetimes_uuids_decimals_and_namedtuples_as_json():
    point = namedtuple("Point", "x y")(1, 2)
    value = {"t": datetime(2026, 1, 2, tzinfo=UTC), "u": uuid.UUID(int=1), "p": point}
    assert dumps(value | {"n": Decimal("5.00")}) == (
        b'{"t":"2026-01-02T00:00:00Z","u":"00000000-0000-0000-0000-000000000001",'
        b'"p":[1,2],"n":5.00}'
    )


def test_dumps_refuses_what_json_has_no_form_for():
    with pytest.raises(TypeError, match="^object is not JSON serialisable"):
        dumps({"x": object()})


def test_a_lone_surrogate_falls_back_to_ascii_escapes_keeping_exact_decimals():
    assert dumps({"a": "\ud800é", "n": Decimal("5.00")}) == b'{"a":"\\ud800\\u00e9","n":5.00}'


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_loads_refuses_nan_and_infinity(constant):
    with pytest.raises(ValueError, match=f"^{constant} is not a valid JSON number$"):
        loads(f"[{constant}]")


def test_a_number_beyond_any_float_is_refused_by_name():
    with pytest.raises(ValueError, match="^1e400 is too large for a finite JSON number$"):
        exact_float("1e400")


def test_an_inexact_number_keeps_its_text():
    with pytest.raises(InexactNumber) as raised:
        exact_float("70368744177664.01")
    assert raised.value.text == "70368744177664.01"


# ---------------------------------------------------------------- events
def test_an_event_with_an_inexact_number_is_rejected_with_its_ids_and_the_advice():
    raw = json.dumps(event_fields()).replace('"amount": 1', '"amount": 70368744177664.01')
    error = invalid_event(raw.encode())
    assert error.reason == (
        "number 70368744177664.01 has more digits than a JSON number keeps here (a float "
        "holds about 15 significant digits exactly): send it as a string"
    )
    assert (error.order_id, error.event_id) == (ORDER_ID, EVENT_ID)


@pytest.mark.parametrize(
    "ids", [{"order_id": 5, "event_id": 6}, {"order_id": "x", "event_id": "y"}]
)
def test_ids_that_are_not_uuid_strings_are_left_out_of_the_error(ids):
    """Both when the ids make the event invalid and when it holds an inexact number."""
    raw = json.dumps(event_fields(**ids, payload={"n": 0.1 + 0.2}))
    for event in (raw, raw.replace("0.30000000000000004", "70368744177664.01")):
        error = invalid_event(event.encode())
        assert (error.order_id, error.event_id) == (None, None)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"user_id": "nope"}, "user_id: not a valid uuid"),
        ({"payload": []}, "payload: required JSON object"),
        ({"version": 0}, "version: must be a positive integer (or absent)"),
        ({"timestamp": 1}, "timestamp: required RFC 3339 string"),
        ({"timestamp": "soon"}, "timestamp: not an RFC 3339 date-time"),
        ({"external_id": 5}, "external_id: must be a string or null"),
    ],
)
def test_an_invalid_event_is_rejected_with_its_reason_and_ids(changes, reason):
    error = invalid_event(json.dumps(event_fields(**changes)).encode())
    assert error.reason == reason
    assert (error.order_id, error.event_id) == (ORDER_ID, EVENT_ID)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "message has no value"),
        (b"[1]", "message is not a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON: nested too deeply"),
    ],
)
def test_an_unreadable_event_is_rejected_with_its_reason(raw, reason):
    assert invalid_event(raw).reason == reason


# ---------------------------------------------------------------- ACKs and results
@pytest.mark.parametrize("name", ["event_id", "order_id", "error"])
def test_an_ack_field_that_is_not_a_string_is_refused_by_name(name):
    raw = json.dumps({"status": "rejected", "processed_at": "t", name: 5}).encode()
    with pytest.raises(InvalidMessage) as raised:
        OrderAck.from_bytes(raw)
    assert raised.value.reason == f"{name}: must be a string, got int"


def test_an_ack_without_processed_at_reads_as_empty():
    ack = OrderAck.from_bytes(b'{"status": "created"}')
    assert (ack.processed_at, ack.event_id, ack.order_id, ack.error) == ("", None, None, None)


def test_a_result_without_a_numeric_amount_is_refused():
    with pytest.raises(InvalidMessage) as raised:
        OrderResult.from_bytes(b'{"amount": "5"}')
    assert raised.value.reason == "amount: required JSON number"


@pytest.mark.parametrize(
    "text",
    ["2026-01-02T03:04:05Z", "2026-01-02t03:04:05z", "2026-01-02T04:04:05.000+01:00"],
)
def test_rfc3339_timestamps_in_either_case_are_read(text):
    """RFC 3339 (section 5.6) allows a lowercase `t` and `z`."""
    assert event_time(text) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["20260102T030405Z", "2026-01-02", "2026-01-02T03:04:05", "2026-01-02T03:04Z", "2026-W01-5"],
)
def test_iso_8601_forms_that_are_not_rfc_3339_are_refused(text):
    with pytest.raises(ValueError):
        event_time(text)
