"""The Redis result of an order state, field by field, and the write and read corners
(tests that kill the mutants `make mutation` found surviving in `orders_worker.results`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orders_worker.results import order_result_of, order_results_write
from orderstream.messages import OrderResult
from testkit.results import stored_result

from .support import a_state


def test_the_result_of_a_state_holds_every_field_in_rfc3339():
    state = a_state(
        7,
        status="deleted",
        last_status="updated",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 2, tzinfo=UTC),
        processed_at=datetime(2026, 1, 3, tzinfo=UTC),
    )
    assert order_result_of(state) == OrderResult(
        order_id=state.order_id,
        status="updated",
        processed_at="2026-01-03T00:00:00Z",
        order_status="deleted",
        user_id=state.user_id,
        amount=Decimal(7),
        payload=state.payload,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-02T00:00:00Z",
        bucket=1,
        version=7,
    )


@pytest.mark.db  # Redis
def test_writing_no_state_writes_nothing_and_an_absent_result_reads_as_none():
    assert order_results_write(states=[], ttl=0) == 0
    assert stored_result(order_id=str(uuid.uuid4())) is None
