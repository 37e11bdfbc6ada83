"""The upsert rules field by field: what an applied event writes, and the ids an invalid
one is rejected with (tests that kill the mutants `make mutation` found surviving)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orders_worker.rules import UpsertOutcome, order_event_decide
from orderstream.messages import InvalidMessage

from .support import NOW, event_for, stored_state

HAPPENED = "2026-02-03T04:05:06Z"


@pytest.mark.parametrize(
    ("status", "ack", "order_status"),
    [("deleted", "deleted", "deleted"), ("updated", "updated", "done")],
)
def test_an_applied_event_writes_its_time_id_status_and_processing_time(status, ack, order_status):
    """Soft delete and update alike: updated_at is the event's time, the event is the last
    applied one with its ACK status (even after a `created`), processed_at is now."""
    stored = stored_state(last_status="created")
    event = event_for(stored, status=status, version=3, timestamp=HAPPENED)
    decision = order_event_decide(stored=stored, event=event, processed_at=NOW)
    state = decision.state
    assert (decision.outcome, decision.ack_status) == (UpsertOutcome.APPLIED, ack)
    assert state.updated_at == datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert state.created_at == stored.created_at
    assert (state.last_event_id, state.last_status) == (event.event_id, ack)
    assert (state.status, state.processed_at, state.version) == (order_status, NOW, 3)


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        ("9999-06-01T00:00:00Z", "timestamp: year 9999 is outside 1970..9998"),
        ("9999-12-31T23:59:59-01:00", "timestamp: date out of range"),
        ("1969-12-31T23:59:59Z", "timestamp: year 1969 is outside 1970..9998"),
        ("0001-01-01T00:00:00+01:00", "timestamp: date out of range"),
        ("2026-01-01T00:00:00", "timestamp: not an RFC 3339 date-time with a time offset"),
    ],
)
def test_an_event_with_an_unusable_timestamp_is_rejected_with_its_ids(timestamp, reason):
    event = event_for(timestamp=timestamp)
    with pytest.raises(InvalidMessage) as raised:
        order_event_decide(stored=None, event=event, processed_at=NOW)
    assert raised.value.reason == reason
    assert (raised.value.order_id, raised.value.event_id) == (event.order_id, event.event_id)
