"""The rules of `processing`: which outcome an order's ACKs come to, and what GET shows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders_api.ack_outcomes import (
    Outcome,
    Recorded,
    order_processing,
    outcome_of_ack,
    recorded_merge,
)
from orderstream.statuses import AckStatus, Processing

from .support import merged


def ack(status: str, version: int, error: str | None = None) -> Outcome:
    return outcome_of_ack(status=status, version=version, error=error)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("created", "done"), ("updated", "done"), ("deleted", "deleted"), ("rejected", "rejected")],
)
def test_each_ack_status_stands_for_one_outcome(status, outcome):
    assert outcome_of_ack(status=status, version=4, error=None) == Outcome(4, outcome, "")


def test_only_a_rejection_keeps_the_workers_reason():
    assert ack("rejected", 1, "amount: too big").reason == "amount: too big"
    assert ack("created", 1, "ignored").reason == ""


def test_an_order_no_ack_answered_yet_is_pending_with_no_version():
    assert order_processing(version=1, recorded=Recorded()) == ("pending", None)


def test_the_outcome_of_the_rows_version_is_shown():
    assert order_processing(version=1, recorded=merged(ack("created", 1))) == ("done", None)
    assert order_processing(version=2, recorded=merged(ack("deleted", 2))) == ("deleted", None)
    rejected = merged(ack("rejected", 3, "amount: too big"))
    assert order_processing(version=3, recorded=rejected) == ("rejected", "amount: too big")


def test_an_outcome_of_an_older_version_is_pending_for_the_newer_one():
    """The API accepted version 2; the worker has answered version 1 only."""
    assert order_processing(version=2, recorded=merged(ack("created", 1))) == ("pending", None)
    rejected = merged(ack("rejected", 1, "bad"))
    assert order_processing(version=2, recorded=rejected) == ("pending", None)


def test_a_rejection_then_an_applied_newer_version_is_done_and_applied_versions_are_kept():
    recorded = merged(ack("created", 1), ack("rejected", 2, "bad"), ack("updated", 3))
    assert order_processing(version=3, recorded=recorded) == ("done", None)
    assert recorded.applied_version == 3
    after_rejection = merged(ack("created", 1), ack("rejected", 2, "bad"))
    assert after_rejection.applied_version == 1  # the rejected version was not applied
    assert order_processing(version=2, recorded=after_rejection) == ("rejected", "bad")


def test_an_older_ack_arriving_last_changes_nothing():
    newer_first = merged(ack("deleted", 2), ack("created", 1))
    assert newer_first == Recorded(Outcome(2, "deleted"), 2)


def test_for_one_version_an_application_beats_a_rejection_and_a_delete_beats_done():
    assert merged(ack("created", 1), ack("rejected", 1, "x")).outcome == Outcome(1, "done")
    assert merged(ack("deleted", 5), ack("updated", 5)).outcome == Outcome(5, "deleted")


acks = st.builds(
    outcome_of_ack,
    status=st.sampled_from(AckStatus.values),
    version=st.integers(1, 6),
    error=st.sampled_from([None, "a", "b"]),
)


@given(outcomes=st.lists(acks, max_size=12), data=st.data())
def test_the_recorded_state_is_the_same_whatever_order_or_repetition_the_acks_come_in(
    outcomes, data
):
    shuffled = data.draw(st.permutations(outcomes))
    repeated = shuffled + data.draw(st.lists(st.sampled_from(outcomes))) if outcomes else []
    assert merged(*shuffled) == merged(*outcomes) == merged(*repeated)


@given(outcomes=st.lists(acks, min_size=1, max_size=12), late=acks)
def test_the_recorded_state_never_moves_backwards(outcomes, late):
    """Whatever ACK comes next, the recorded outcome and the applied version only grow."""
    before = merged(*outcomes)
    after = recorded_merge(recorded=before, outcome=late)
    assert after.outcome.order_key >= before.outcome.order_key
    assert (after.applied_version or 0) >= (before.applied_version or 0)
    version = max(o.version for o in outcomes)
    if order_processing(version=version, recorded=before)[0] != Processing.PENDING:
        assert order_processing(version=version, recorded=after)[0] != Processing.PENDING
