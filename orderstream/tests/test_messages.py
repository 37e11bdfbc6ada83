"""Unit tests of the shared message schema: UTF-8 serialisation, sizes and the Redis result."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest
from kafka import KafkaProducer
from kafka.record.default_records import DefaultRecordBatchBuilder

from orders_api.relay.loop import relay_producer
from orderstream.exact_json import dumps, loads
from orderstream.kafka import clients as project_kafka
from orderstream.messages import MAX_EVENT_BYTES, InvalidMessage, OrderAck, OrderEvent, OrderResult
from orderstream.timestamps import event_time

CYRILLIC = "Привет, мир! "


def an_event(payload: dict) -> OrderEvent:
    return OrderEvent(
        event_id=str(uuid.uuid4()),
        order_id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        payload=payload,
        status="created",
        version=1,
        timestamp="2026-01-02T03:04:05Z",
    )


def a_result(**changes) -> OrderResult:
    values = {
        "order_id": str(uuid.uuid4()),
        "status": "updated",
        "processed_at": "2026-01-02T03:04:05Z",
        "order_status": "done",
        "user_id": str(uuid.uuid4()),
        "amount": Decimal("4.50"),
        "payload": {"note": CYRILLIC, "version": 99},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-02T03:04:05Z",
        "bucket": 2,
        "version": 7,
    }
    return OrderResult(**(values | changes))


def test_dumps_writes_non_ascii_text_as_utf8_not_escapes():
    raw = dumps({"note": "Привет ☃ 😀"})
    assert raw == '{"note":"Привет ☃ 😀"}'.encode()
    assert b"\\u" not in raw


def test_a_600_kb_cyrillic_payload_fits_in_one_event():
    """300 000 Cyrillic letters are 600 KB of UTF-8; as \\uXXXX escapes they were 1.8 MB."""
    body = "ж" * 300_000
    event = an_event({"body": body})
    raw = event.to_bytes()
    assert len(body.encode()) <= len(raw) < MAX_EVENT_BYTES
    assert OrderEvent.from_bytes(raw) == event


def test_the_largest_event_fits_the_request_size_of_the_producer_that_publishes_it(
    monkeypatch,
):
    """An event of MAX_EVENT_BYTES keyed by its order id passes the size check of the
    relay's producer: kafka-python's own estimate of the record against the
    max_request_size the project builds it with. So the API's 413 is the only refusal."""
    configs = []
    capture = lambda **config: configs.append(config)  # noqa: E731 (either driver's class)
    drivers = SimpleNamespace(KafkaProducer=capture, ConfluentProducer=capture)
    monkeypatch.setattr(project_kafka, "driver_module", lambda: drivers)
    relay_producer()
    (config,) = configs
    limit = config.get("max_request_size", KafkaProducer.DEFAULT_CONFIG["max_request_size"])
    key = str(uuid.uuid4()).encode()
    record = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"x" * MAX_EVENT_BYTES, [])
    assert record <= limit


def test_every_message_round_trips_non_ascii_text():
    event = an_event({"id": "Заказ-1", "items": [{"name": "чай", "price": "2.50"}]})
    assert OrderEvent.from_bytes(event.to_bytes()) == event
    ack = OrderAck(event.event_id, event.order_id, "rejected", "2026-01-02T03:04:05Z", "ошибка")
    assert OrderAck.from_bytes(ack.to_bytes()) == ack
    result = a_result()
    assert OrderResult.from_bytes(result.to_bytes()) == result
    assert CYRILLIC.encode() in result.to_bytes()  # readable as is in RedisInsight


def test_a_lone_surrogate_falls_back_to_ascii_escapes_and_still_parses():
    """`"\\ud800"` is valid JSON but has no UTF-8 form: the document is escaped instead."""
    payload = json.loads('{"note": "a\\ud800b", "name": "чай"}')
    raw = an_event(payload).to_bytes()
    assert b"\\ud800" in raw
    raw.decode("ascii")  # all escaped, so valid UTF-8 too
    assert OrderEvent.from_bytes(raw).payload == payload


def test_the_result_value_starts_with_its_version():
    """The worker's compare-and-set script reads the version from the value's prefix; a
    `version` key inside the payload does not confuse it."""
    raw = a_result(version=7).to_bytes()
    assert raw.startswith(b'{"version":7,')
    assert json.loads(raw)["version"] == 7


def test_a_result_written_before_versions_reads_as_version_0():
    data = json.loads(a_result().to_bytes())
    del data["version"]
    assert OrderResult.from_bytes(json.dumps(data)).version == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-04T05:06:07+02:00", "2026-03-04T03:06:07+00:00"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"),
        ("9998-12-31T23:59:59Z", "9998-12-31T23:59:59+00:00"),
    ],
)
def test_event_time_is_utc(text, expected):
    assert event_time(text).isoformat() == expected


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "9999-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2026-01-01T00:00:00",
    ],
)
def test_event_time_refuses_naive_and_out_of_range_moments(text):
    with pytest.raises(ValueError):
        event_time(text)


def test_an_event_with_an_out_of_range_timestamp_is_invalid():
    data = json.loads(an_event({}).to_bytes()) | {"timestamp": "9999-12-31T23:59:59-01:00"}
    with pytest.raises(InvalidMessage, match="timestamp: out of range") as info:
        OrderEvent.from_bytes(json.dumps(data))
    assert info.value.order_id == data["order_id"]


# -- Amounts are exact decimals (contract.md) --------------------------------------------

# 2**46 + 0.01: a float holds it as 70368744177664.015625, shown as 70368744177664.02.
BEYOND_FLOAT = "70368744177664.01"
LARGEST_AMOUNT = "999999999999999999.99"  # the columns' numeric(20, 2) maximum


@pytest.mark.parametrize("amount", [BEYOND_FLOAT, LARGEST_AMOUNT, "-" + LARGEST_AMOUNT, "5.00"])
def test_a_result_carries_its_amount_as_a_number_with_exactly_its_digits(amount):
    """Redis holds the amount as a JSON number with the column's two places, and reads it
    back as that very Decimal (it was a float: 70368744177664.02, 1e+18, 5)."""
    result = a_result(amount=Decimal(amount))
    raw = result.to_bytes()
    assert b',"amount":' + amount.encode() + b"," in raw
    read = OrderResult.from_bytes(raw)
    assert str(read.amount) == amount
    assert read == result


def test_a_result_reads_every_number_as_an_exact_decimal():
    raw = a_result(payload={"price": Decimal(BEYOND_FLOAT)}).to_bytes()
    assert b'"payload":{"price":' + BEYOND_FLOAT.encode() + b"}" in raw
    payload = OrderResult.from_bytes(raw).payload
    assert payload == {"price": Decimal(BEYOND_FLOAT)}
    assert isinstance(payload["price"], Decimal)


@pytest.mark.parametrize("amount", ['"12.50"', "null", "true", "[]"])
def test_a_result_whose_amount_is_no_json_number_is_invalid(amount):
    raw = a_result().to_bytes().replace(b'"amount":4.50', b'"amount":' + amount.encode())
    with pytest.raises(InvalidMessage, match="amount"):
        OrderResult.from_bytes(raw)


def test_dumps_refuses_a_decimal_json_cannot_hold():
    for value in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError):
            dumps({"amount": Decimal(value)})


@pytest.mark.parametrize(
    "number", [BEYOND_FLOAT, LARGEST_AMOUNT, "1e-400", "0.1000000000000000001"]
)
def test_an_event_number_no_float_holds_exactly_is_invalid_not_changed(number):
    """The worker's stores keep payload numbers as floats: a number a float would change
    (70368744177664.01 became 70368744177664.02) is rejected, naming it, never altered."""
    event = an_event({"amount": "AMOUNT"})
    raw = event.to_bytes().replace(b'"AMOUNT"', number.encode())
    with pytest.raises(InvalidMessage, match="send it as a string") as info:
        OrderEvent.from_bytes(raw)
    assert number in info.value.reason
    assert info.value.order_id == event.order_id


@pytest.mark.parametrize(
    ("number", "value"),
    [("9.9", 9.9), ("5.00", 5.0), ("1e300", 1e300), ("0.30000000000000004", 0.1 + 0.2)],
)
def test_an_event_keeps_the_numbers_a_float_holds_exactly(number, value):
    raw = an_event({"amount": "AMOUNT"}).to_bytes().replace(b'"AMOUNT"', number.encode())
    assert OrderEvent.from_bytes(raw).payload == {"amount": value}


def test_an_event_carries_a_string_amount_as_sent():
    event = an_event({"amount": BEYOND_FLOAT})
    assert b'"payload":{"amount":"' + BEYOND_FLOAT.encode() + b'"}' in event.to_bytes()
    assert OrderEvent.from_bytes(event.to_bytes()) == event


@pytest.mark.parametrize("form", [str.upper, lambda text: text.replace("-", ""), "{{{}}}".format])
def test_an_event_reads_its_ids_in_any_uuid_form_as_the_canonical_one(form):
    event = an_event({"id": "A-1"})
    raw = json.loads(event.to_bytes())
    raw |= {name: form(raw[name]) for name in ("event_id", "order_id", "user_id")}

    read = OrderEvent.from_bytes(json.dumps(raw).encode())

    assert (read.event_id, read.order_id, read.user_id) == (
        event.event_id,
        event.order_id,
        event.user_id,
    )


def _outcome(read, raw):
    try:
        return read(raw)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize(
    "raw",
    [
        '{"a": "é"}'.encode("utf-16"),
        '{"a": "é"}'.encode("utf-32"),
        b'"\xed\xa0\x80"',  # a lone surrogate, as json.dumps escapes it, in UTF-8 bytes
        '\ufeff{"a": 1}',  # text that starts with a byte order mark
        b"\xff",
        12,
    ],
    ids=["utf-16", "utf-32", "surrogate bytes", "text with a BOM", "no JSON", "no text"],
)
def test_loads_reads_and_refuses_what_json_loads_does(raw):
    assert _outcome(loads, raw) == _outcome(json.loads, raw)


def test_loads_reads_fractions_as_exact_decimals():
    assert loads('{"a": [1.5, 2]}'.encode("utf-16")) == {"a": [Decimal("1.5"), 2]}
