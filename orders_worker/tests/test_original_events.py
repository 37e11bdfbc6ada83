"""Unit tests: the Go original's events (no event id, no version, no key) under the
worker's rules and handler, read from the fixtures written from its structs."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders_worker.handler import _parsed
from orders_worker.rules import UpsertOutcome, order_event_decide
from orderstream.messages import OrderEvent
from orderstream.original_format import original_event_id
from orderstream.statuses import AckStatus, ProcessedStatus
from orderstream.timestamps import rfc3339
from testkit.helpers import Record
from testkit.original_messages import GO_ACK_FIELDS, as_go_reads, go_time, original_message

from .support import EARLIER, NOW, event_for, stored_state


def original_event(name: str = "event_update", **values: str) -> OrderEvent:
    raw = original_message(
        name,
        **(
            {
                "order_id": str(uuid.uuid4()),
                "user_id": str(uuid.uuid4()),
                "timestamp": go_time(NOW, nanoseconds=5),
            }
            | values
        ),
    )
    return OrderEvent.from_bytes(raw, event_id_if_missing=str(uuid.uuid4()))


def of_state(state, name: str = "event_update", *, at) -> OrderEvent:
    return original_event(name, order_id=state.order_id, user_id=state.user_id, timestamp=at)


# ---------------------------------------------------------------- the rules, by timestamp
def test_a_first_sight_event_without_version_creates_the_order_at_version_1():
    event = original_event("event_create")
    decision = order_event_decide(stored=None, event=event, processed_at=NOW)
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.APPLIED, AckStatus.CREATED)
    assert (decision.state.version, decision.state.amount) == (1, 5)
    assert decision.state.updated_at == NOW


def test_a_later_event_without_version_updates_and_moves_the_version_on():
    stored = stored_state(version=7, updated_at=EARLIER)
    decision = order_event_decide(
        stored=stored, event=of_state(stored, at=go_time(NOW)), processed_at=NOW
    )
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.APPLIED, AckStatus.UPDATED)
    assert (decision.state.version, decision.state.payload["note"]) == (8, "second")


@pytest.mark.parametrize("age", [timedelta(0), timedelta(microseconds=1), timedelta(days=1)])
def test_an_event_without_version_no_later_than_the_stored_one_is_stale(age):
    stored = stored_state(version=7, updated_at=NOW)
    event = of_state(stored, at=go_time(NOW - age, nanoseconds=999))
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.STALE, AckStatus.UPDATED)
    assert decision.state is stored


def test_the_originals_delete_soft_deletes_and_a_later_update_keeps_it_deleted():
    stored = stored_state(updated_at=EARLIER)
    deleted = order_event_decide(
        stored=stored, event=of_state(stored, "event_delete", at=go_time(NOW)), processed_at=NOW
    )
    assert (deleted.ack_status, deleted.state.status) == (
        AckStatus.DELETED,
        ProcessedStatus.DELETED,
    )
    later = of_state(stored, at=go_time(NOW + timedelta(seconds=1)))
    after = order_event_decide(stored=deleted.state, event=later, processed_at=NOW)
    assert (after.outcome, after.ack_status) == (UpsertOutcome.UNCHANGED, AckStatus.DELETED)


def test_a_versioned_event_is_still_ordered_by_version_not_time():
    stored = stored_state(version=3, updated_at=NOW)
    older_in_time = event_for(stored, status="updated", version=4, timestamp=rfc3339(EARLIER))
    decision = order_event_decide(stored=stored, event=older_in_time, processed_at=NOW)
    assert (decision.outcome, decision.state.version) == (UpsertOutcome.APPLIED, 4)


@given(
    st.lists(st.integers(0, 10**9), min_size=1, max_size=8, unique=True),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_events_without_version_in_any_arrival_order_end_on_the_newest(offsets, delete, rnd):
    """Unkeyed events of one order reach the worker in any order (any partition): whatever
    the order, the order ends on the state of its newest event by timestamp (a delete, the
    last thing the original's API publishes for an order, included)."""
    order_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    times = sorted(EARLIER + timedelta(microseconds=o) for o in offsets)
    events = []
    for i, moment in enumerate(times):
        name = "event_delete" if delete and i == len(times) - 1 else "event_update"
        raw = original_message(
            name, order_id=order_id, user_id=user_id, timestamp=go_time(moment)
        ).replace(b'"second"', f'"{i}"'.encode())
        events.append(OrderEvent.from_bytes(raw, event_id_if_missing=str(uuid.uuid4())))
    newest = events[-1]
    rnd.shuffle(events)
    state = None
    for event in events:
        state = order_event_decide(stored=state, event=event, processed_at=NOW).state
    assert state.payload == newest.payload
    assert state.updated_at == times[-1]
    expected = ProcessedStatus.DELETED if delete else ProcessedStatus.DONE
    assert state.status == expected


# ---------------------------------------------------------------- the handler's reading
def test_a_record_without_event_id_gets_the_id_of_its_coordinates():
    raw = original_message(
        "event_create",
        order_id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        timestamp=go_time(NOW),
    )
    event = _parsed(Record("orders.events", 3, 8, None, raw))
    assert event.event_id == original_event_id(topic="orders.events", partition=3, offset=8)
    again = _parsed(Record("orders.events", 3, 8, None, raw))
    assert again.event_id == event.event_id  # a redelivery: a duplicate


def test_an_invalid_original_event_keeps_its_order_and_derived_id_for_the_ack():
    raw = original_message(
        "event_create", order_id=str(uuid.uuid4()), user_id="nope", timestamp=go_time(NOW)
    )
    rejected = _parsed(Record("orders.events", 0, 4, None, raw))
    assert rejected.reason == "user_id: not a valid uuid"
    assert rejected.event_id == original_event_id(topic="orders.events", partition=0, offset=4)
    assert rejected.order_id == json.loads(raw)["order_id"]


def test_go_reads_the_fields_it_knows_of_our_ack():
    """Our ACK is a superset of the original's: Go's struct finds all its fields."""
    from orderstream.messages import OrderAck

    ack = OrderAck(str(uuid.uuid4()), str(uuid.uuid4()), "created", rfc3339(NOW))
    assert as_go_reads(ack.to_bytes(), GO_ACK_FIELDS)["status"] == "created"
