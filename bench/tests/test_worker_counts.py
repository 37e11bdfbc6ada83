"""The worker benchmark's rebalance counts (bench/worker.py): the join is not a
rebalance, a change before the first batch is counted apart from one during the drain."""

from __future__ import annotations

from bench.worker import CountingAssignments, _NoRebalanceWork


class Probe(CountingAssignments, _NoRebalanceWork):
    def __init__(self):
        super().__init__()
        self.draining = False

    def _draining(self) -> bool:
        return self.draining


def test_the_join_alone_is_no_rebalance():
    probe = Probe()
    probe.on_partitions_assigned(set())
    assert (probe.rebalances, probe.rebalances_at_join) == (0, 0)


def test_changes_before_the_first_batch_and_during_the_drain_are_told_apart():
    probe = Probe()
    probe.on_partitions_assigned(set())
    probe.on_partitions_assigned(set())  # a rejoin right after the join
    probe.draining = True
    probe.on_partitions_lost(set())
    probe.on_partitions_assigned(set())
    assert (probe.rebalances, probe.rebalances_at_join) == (2, 1)
