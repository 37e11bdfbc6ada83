"""The assignment watch: how long a member has held no partitions, when it warns, and
when its liveness check fails (orderstream/kafka/assignment.py). A worker that the group
leaves without partitions: orders_worker/tests/test_assignment.py."""

from __future__ import annotations

from orderstream.kafka.assignment import AssignmentWatch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_new_member_counts_as_unassigned_from_its_start():
    clock = FakeClock()
    watch = AssignmentWatch(warn_after=10, fail_after=30, clock=clock)
    clock.now += 10
    assert watch.unassigned_for() == 10
    assert not watch.stalled()  # a rebalance may take this long
    clock.now += 0.5
    assert watch.stalled()
    assert watch.alive()
    clock.now += 20
    assert not watch.alive()


def test_holding_a_partition_resets_the_watch_and_losing_all_starts_it_again():
    clock = FakeClock()
    watch = AssignmentWatch(warn_after=1, fail_after=2, clock=clock)
    clock.now += 5
    watch.update({0, 3})
    assert watch.partitions == {0, 3}
    assert watch.unassigned_for() == 0 and watch.alive() and not watch.stalled()
    clock.now += 100
    assert watch.alive()  # time with partitions never counts
    watch.update(set())
    clock.now += 1.5
    assert watch.unassigned_for() == 1.5
    assert watch.stalled() and watch.alive()
    watch.update(set())  # a second revoke does not restart the clock
    clock.now += 1
    assert not watch.alive()


def test_fail_after_zero_never_fails_liveness():
    clock = FakeClock()
    watch = AssignmentWatch(warn_after=1, fail_after=0, clock=clock)
    clock.now += 10_000
    assert watch.stalled()
    assert watch.alive()
