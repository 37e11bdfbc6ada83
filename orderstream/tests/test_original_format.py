"""Unit tests of the Go original's message format: derived event ids, status words,
ACK times, and its events read from the fixtures written from its structs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderstream.messages import InvalidMessage, OrderEvent
from orderstream.original_format import ack_processed_at, event_operation, original_event_id
from orderstream.statuses import Operation
from testkit.original_messages import ORIGINAL_EVENT_STATUSES, go_time, original_message

ORDER_ID = "0b6f3c1e-6a4f-4a7e-9d53-2f0e8c3b9a10"
USER_ID = "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
STAMP = "2026-12-07T10:30:00.123456789Z"

coordinates = st.tuples(
    st.text(min_size=1, max_size=30), st.integers(0, 10_000), st.integers(0, 2**62)
)


@given(coordinates)
def test_a_derived_event_id_is_a_uuid_and_the_same_for_the_same_record(where):
    topic, partition, offset = where
    first = original_event_id(topic=topic, partition=partition, offset=offset)
    assert str(uuid.UUID(first)) == first
    assert original_event_id(topic=topic, partition=partition, offset=offset) == first


@given(coordinates, coordinates)
def test_two_records_never_share_a_derived_event_id(one, other):
    ids = {original_event_id(topic=t, partition=p, offset=o) for t, p, o in {one, other}}
    assert len(ids) == len({one, other})


def test_derived_ids_do_not_change_between_releases():
    """Records handled before an upgrade must stay duplicates after it."""
    assert original_event_id(topic="orders.events", partition=3, offset=8) == str(
        uuid.uuid5(uuid.UUID("5b0f3a52-6a43-4b8e-9f0c-0c2d6c1e7a11"), "orders.events\x003\x008")
    )


@pytest.mark.parametrize(
    ("status", "operation"),
    [
        ("new", Operation.UPDATED),
        ("processing", Operation.UPDATED),
        ("done", Operation.UPDATED),
        ("cancelled", Operation.UPDATED),
        ("deleted", Operation.DELETED),
        ("created", Operation.CREATED),
        ("updated", Operation.UPDATED),
    ],
)
def test_status_words_of_both_formats_map_to_operations(status, operation):
    assert event_operation(status) == operation


@given(st.one_of(st.text(), st.integers(), st.none()))
def test_any_other_status_word_maps_to_nothing(status):
    if status not in set(ORIGINAL_EVENT_STATUSES) | set(Operation.values):
        assert event_operation(status) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (STAMP, datetime(2026, 12, 7, 10, 30, 0, 123456, tzinfo=UTC)),
        ("2026-12-07T10:30:00Z", datetime(2026, 12, 7, 10, 30, tzinfo=UTC)),
        ("2026-12-07T13:30:00.5+03:00", datetime(2026, 12, 7, 10, 30, 0, 500000, tzinfo=UTC)),
        ("", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_ack_times_are_read_as_go_writes_them(text, expected):
    assert ack_processed_at(text) == expected


@given(st.datetimes(min_value=datetime(1971, 1, 1), timezones=st.just(UTC)), st.integers(0, 999))
def test_go_times_read_back_cut_to_microseconds(moment, nanoseconds):
    assert ack_processed_at(go_time(moment, nanoseconds=nanoseconds)) == moment


def fixture_event(name: str, **values) -> bytes:
    return original_message(
        name, **({"order_id": ORDER_ID, "user_id": USER_ID, "timestamp": STAMP} | values)
    )


@pytest.mark.parametrize(
    ("name", "status"),
    [("event_create", "updated"), ("event_update", "updated"), ("event_delete", "deleted")],
)
def test_the_originals_events_are_read_with_the_derived_id_and_no_version(name, status):
    derived = original_event_id(topic="orders.events", partition=3, offset=8)
    event = OrderEvent.from_bytes(fixture_event(name), event_id_if_missing=derived)
    assert (event.event_id, event.order_id, event.user_id) == (derived, ORDER_ID, USER_ID)
    assert (event.status, event.version, event.external_id) == (status, None, "A-1")
    assert event.timestamp == STAMP


def test_without_an_event_id_to_give_the_originals_event_stays_invalid():
    """The message layer alone cannot invent one: the id comes from the record."""
    with pytest.raises(InvalidMessage, match="event_id: required uuid string") as info:
        OrderEvent.from_bytes(fixture_event("event_create"))
    assert info.value.order_id == ORDER_ID


def test_an_event_id_of_its_own_wins_over_the_derived_one():
    own = str(uuid.uuid4())
    raw = fixture_event("event_create").replace(
        b'{"order_id"', f'{{"event_id":"{own}","order_id"'.encode()
    )
    assert OrderEvent.from_bytes(raw, event_id_if_missing=str(uuid.uuid4())).event_id == own


def test_an_unknown_status_word_is_named_in_the_rejection():
    raw = fixture_event("event_create").replace(b'"status":"new"', b'"status":"shipped"')
    with pytest.raises(InvalidMessage, match="status: must be one of .*'cancelled'.*'shipped'"):
        OrderEvent.from_bytes(raw, event_id_if_missing=str(uuid.uuid4()))
