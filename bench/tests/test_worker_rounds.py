"""The worker benchmark's interleaved rounds (bench/worker.py): every part is
measured first, second and third once in three rounds, and each reports its median run."""

from __future__ import annotations

from bench.worker import ROUND_PARTS, BenchRun, median_run, round_order


def test_in_three_rounds_every_part_is_measured_once_at_each_place():
    orders = [round_order(index) for index in range(3)]

    assert all(sorted(order) == sorted(ROUND_PARTS) for order in orders)
    for place in range(3):
        assert sorted(order[place] for order in orders) == sorted(ROUND_PARTS)


def test_the_median_run_is_the_middle_rate_not_the_first_or_the_fastest():
    runs = [BenchRun("k", 1000, seconds, 2) for seconds in (0.05, 0.2, 0.1)]

    assert median_run(runs).per_second == 10_000
    assert median_run(runs[:1]) is runs[0]
