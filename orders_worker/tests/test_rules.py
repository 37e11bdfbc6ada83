"""Unit tests of the worker's pure upsert rules and of odd messages."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orders_worker.rules import (
    MAX_VERSION,
    UpsertOutcome,
    order_event_decide,
)
from orderstream.messages import InvalidMessage, OrderEvent
from orderstream.order_fields import order_bucket
from orderstream.statuses import ProcessedStatus
from testkit.factories import OrderEventFactory

from .support import EARLIER, NOW, event_for, stored_state


# ---------------------------------------------------------------- order_event_decide
@pytest.mark.parametrize("status", ["created", "updated"])
def test_first_sight_creates_the_order_and_reports_created(status):
    """An unseen order is created from the event: done, amount computed, ACK created."""
    event = event_for(status=status, version=3, payload={"id": 1, "items": [{"price": 2}]})
    decision = order_event_decide(stored=None, event=event, processed_at=NOW)
    assert decision.outcome is UpsertOutcome.APPLIED
    assert decision.changed
    assert decision.ack_status == "created"
    state = decision.state
    assert (state.order_id, state.user_id) == (event.order_id, event.user_id)
    assert (state.status, state.amount, state.version) == (ProcessedStatus.DONE, Decimal("2.00"), 3)
    assert state.payload == event.payload
    assert state.created_at == state.updated_at == datetime.fromisoformat(event.timestamp)
    assert state.bucket == order_bucket(event.order_id)
    assert (state.last_event_id, state.last_status) == (event.event_id, "created")
    assert state.processed_at == NOW


def test_first_sight_delete_stores_a_soft_deleted_order_and_reports_deleted():
    event = event_for(status="deleted", payload={"amount": "3"})
    decision = order_event_decide(stored=None, event=event, processed_at=NOW)
    assert decision.outcome is UpsertOutcome.APPLIED
    assert decision.ack_status == "deleted"
    assert (decision.state.status, decision.state.amount) == (
        ProcessedStatus.DELETED,
        Decimal("3.00"),
    )


def test_newer_update_replaces_payload_recomputes_amount_and_reports_updated():
    stored = stored_state()
    event = event_for(stored, status="updated", version=3, payload={"id": "new", "amount": "1.1"})
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.APPLIED, "updated")
    state = decision.state
    assert (state.payload, state.amount, state.status) == (event.payload, Decimal("1.10"), "done")
    assert state.created_at == EARLIER  # kept
    assert state.updated_at == datetime.fromisoformat(event.timestamp)
    assert (state.version, state.last_event_id, state.last_status) == (3, event.event_id, "updated")


def test_newer_created_event_for_a_known_order_is_an_update():
    stored = stored_state()
    event = event_for(stored, status="created", version=5)
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.APPLIED, "updated")


def test_update_keeps_the_stored_user():
    stored = stored_state()
    event = event_for(stored, status="updated", version=3, user_id=str(uuid.uuid4()))
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert decision.state.user_id == stored.user_id


def test_delete_is_a_soft_delete_that_keeps_the_data_its_event_carries():
    """The delete's event carries the order's full state as the API kept it (its last
    accepted payload), which may be newer than the worker's: an update that the delete
    overtook (held back in the relay) is then skipped as stale."""
    stored = stored_state(version=1)
    event = event_for(stored, status="deleted", version=3, payload={"id": "new", "amount": 999})
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.APPLIED, "deleted")
    state = decision.state
    assert state.status == ProcessedStatus.DELETED
    assert (state.payload, state.amount) == (event.payload, Decimal("999.00"))
    assert (state.version, state.last_status) == (3, "deleted")
    late_update = event_for(stored, status="updated", version=2, payload={"amount": 5})
    late = order_event_decide(stored=state, event=late_update, processed_at=NOW)
    assert (late.outcome, late.ack_status) == (UpsertOutcome.STALE, "deleted")


@pytest.mark.parametrize("status", ["created", "updated", "deleted"])
def test_any_newer_event_for_a_deleted_order_changes_nothing_and_reports_deleted(status):
    stored = stored_state(status=ProcessedStatus.DELETED, last_status="deleted")
    event = event_for(stored, status=status, version=9, payload={"amount": 1})
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.UNCHANGED, "deleted")
    assert not decision.changed
    assert decision.state is stored


@pytest.mark.parametrize("version", [1, 2])
def test_an_event_not_newer_than_the_stored_version_is_skipped_as_stale(version):
    """Older (or same version, other event): skipped, ACK with the current state."""
    stored = stored_state(version=2)
    event = event_for(stored, status="updated", version=version, payload={"amount": 1})
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.STALE, "updated")
    assert decision.state is stored
    assert not decision.changed


def test_a_stale_event_for_a_deleted_order_reports_deleted():
    stored = stored_state(status=ProcessedStatus.DELETED, last_status="deleted", version=4)
    event = event_for(stored, status="created", version=1)
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.STALE, "deleted")


def test_the_last_applied_event_delivered_again_reports_its_original_status():
    stored = stored_state(version=1, last_status="created")
    event = event_for(stored, event_id=stored.last_event_id, version=1)
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.DUPLICATE, "created")
    assert decision.state is stored


@pytest.mark.parametrize("stored", [None, stored_state()])
def test_an_amount_that_cannot_be_computed_rejects_the_event(stored):
    """Whatever is stored, an unusable amount makes the event invalid (with its ids)."""
    event = event_for(stored, status="updated", version=3, payload={"amount": "ten"})
    with pytest.raises(InvalidMessage) as info:
        order_event_decide(stored=stored, event=event, processed_at=NOW)
    assert info.value.order_id == event.order_id
    assert info.value.event_id == event.event_id
    assert "amount" in info.value.reason


def test_a_version_beyond_the_column_range_rejects_the_event():
    event = event_for(version=MAX_VERSION + 1)
    with pytest.raises(InvalidMessage, match="version"):
        order_event_decide(stored=None, event=event, processed_at=NOW)


# ---------------------------------------------------------------- odd messages
def valid_fields() -> dict:
    return json.loads(OrderEventFactory().to_bytes())


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"a string"', "not a JSON object"),
        (b"1" * 5000, "not valid JSON"),  # beyond Python's int digit limit
        (None, "no value"),
    ],
)
def test_unreadable_messages_are_invalid_without_ids(raw, reason):
    with pytest.raises(InvalidMessage, match=reason) as info:
        OrderEvent.from_bytes(raw)
    assert info.value.order_id is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": "archived"}, "status"),
        ({"status": None}, "status"),
        ({"payload": "a string"}, "payload"),
        ({"payload": [1, 2]}, "payload"),
        ({"payload": None}, "payload"),
        ({"version": "2"}, "version"),
        ({"version": 0}, "version"),
        ({"version": True}, "version"),
        ({"version": 1.5}, "version"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2026-01-01T00:00:00"}, "timestamp"),
        ({"timestamp": "9999-12-31T23:59:59-01:00"}, "timestamp"),  # year 10000 in UTC
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp"),  # year 0 in UTC
        ({"timestamp": "9999-12-31T23:59:59Z"}, "timestamp"),
        ({"timestamp": "1969-12-31T23:59:59Z"}, "timestamp"),
        ({"user_id": "nope"}, "user_id"),
        ({"event_id": 12}, "event_id"),
        ({"external_id": {"a": 1}}, "external_id"),
    ],
)
def test_invalid_fields_are_named_and_the_ids_kept(changes, reason):
    """A readable event with a bad field names it and keeps order_id/event_id for the ACK."""
    fields = valid_fields() | changes
    with pytest.raises(InvalidMessage, match=reason) as info:
        OrderEvent.from_bytes(json.dumps(fields))
    assert info.value.order_id == fields["order_id"]


@pytest.mark.parametrize(
    "missing", ["order_id", "event_id", "user_id", "payload", "status", "timestamp"]
)
def test_missing_fields_make_the_event_invalid(missing):
    """Every field but `version` (absent in the Go original's events: ordered by time)."""
    fields = valid_fields()
    del fields[missing]
    with pytest.raises(InvalidMessage, match=missing):
        OrderEvent.from_bytes(json.dumps(fields))


def test_the_event_timestamp_is_stored_in_utc():
    event = OrderEventFactory(timestamp="2026-03-04T05:06:07+02:00")
    state = order_event_decide(stored=None, event=event, processed_at=NOW).state
    assert state.created_at == state.updated_at == datetime(2026, 3, 4, 3, 6, 7, tzinfo=UTC)
    assert state.created_at.tzinfo is UTC


def test_an_event_built_in_code_with_an_out_of_range_timestamp_is_rejected_by_the_rules():
    """Not only parsing guards the range: `order_event_decide` refuses it too (never a crash)."""
    event = OrderEventFactory(timestamp="9999-12-31T23:59:59-01:00")
    with pytest.raises(InvalidMessage, match="timestamp") as info:
        order_event_decide(stored=None, event=event, processed_at=NOW)
    assert info.value.order_id == event.order_id


def test_nested_garbage_in_the_payload_is_kept_as_data():
    """Odd but valid JSON inside the payload is stored as is; only amount/items matter."""
    payload = {"id": None, "items": [{"price": "1", "qty": 3, "x": [[[{}]]]}], "\u00e9": "\u2603"}
    event = OrderEvent.from_bytes(json.dumps(valid_fields() | {"payload": payload}))
    decision = order_event_decide(stored=None, event=event, processed_at=NOW)
    assert decision.state.payload == payload
    assert decision.state.amount == Decimal("3.00")
