"""The pacer that lets batches fill up under load and never delays a quiet system."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orderstream.batch_pacing import RATE_WINDOW_SECONDS, BatchPacer, PacingConfig

CONFIG = PacingConfig(max_linger=0.05, target_batch=10, min_rate=100.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pacer_after(batches: list[int], *, every: float, config: PacingConfig = CONFIG):
    """A pacer that saw `batches` (item counts) start `every` seconds apart."""
    clock = Clock()
    pacer = BatchPacer(config, clock=clock)
    for count in batches:
        pacer.started()
        pacer.handled(count)
        clock.now += every
    clock.now -= every  # back to the start of the last batch
    return pacer, clock


def test_a_quiet_system_never_waits():
    # 50 items in the last second: below min_rate.
    pacer, _ = pacer_after([1] * 50, every=0.02)
    assert pacer.rate() == 50
    assert pacer.linger() == 0


def test_under_load_it_waits_for_about_target_batch_items():
    # 200 items/s, the last batch of two: 10 items take 50 ms, the cap.
    pacer, _ = pacer_after([1] * 198 + [2], every=0.005)
    assert pacer.rate() == 200
    assert pacer.linger() == 0.05


def test_one_item_at_a_time_never_waits_however_fast():
    # One client, one request after another: each batch holds its one event.
    pacer, _ = pacer_after([1] * 400, every=0.0025)
    assert pacer.rate() == 400
    assert not pacer.crowded()
    assert pacer.linger() == 0


def test_after_a_burst_only_the_next_batch_waits():
    """The rate remembers a burst for a second; the lone items after it do not wait."""
    pacer, clock = pacer_after([40] * 18, every=0.05)  # 720 items/s
    assert pacer.linger() > 0  # the batch right after the burst still waits
    clock.now += 0.06
    pacer.started()
    pacer.handled(1)  # it held one item: the burst is over
    clock.now += 0.01
    assert pacer.rate() >= CONFIG.min_rate
    assert pacer.linger() == 0
    pacer.started()
    pacer.handled(1)
    assert pacer.linger() == 0


def test_faster_arrivals_wait_less():
    # 1,000 items/s: 10 items take 10 ms.
    pacer, _ = pacer_after([10] * 100, every=0.01)
    assert pacer.rate() == 1000
    assert abs(pacer.linger() - 0.01) < 1e-9


def test_the_wait_counts_from_the_start_of_the_previous_batch():
    pacer, clock = pacer_after([1] * 198 + [2], every=0.005)
    clock.now += 0.03  # the batch took 30 ms
    assert abs(pacer.linger() - 0.02) < 1e-9
    clock.now += 0.03
    assert pacer.linger() == 0


def test_the_rate_forgets_what_is_older_than_its_window():
    pacer, clock = pacer_after([2] * 100, every=0.005)
    clock.now += RATE_WINDOW_SECONDS + 0.01
    assert pacer.rate() == 0
    assert not pacer.crowded()
    assert pacer.linger() == 0


def test_empty_batches_do_not_count():
    pacer, _ = pacer_after([0] * 500, every=0.001)
    assert pacer.rate() == 0


def test_no_wait_when_pacing_is_off():
    pacer, _ = pacer_after([2] * 500, every=0.002, config=PacingConfig.off())
    assert pacer.rate() == 1000
    assert pacer.linger() == 0


@given(
    batches=st.lists(st.integers(min_value=0, max_value=500), max_size=300),
    every=st.floats(min_value=0.0001, max_value=0.5),
    later=st.floats(min_value=0, max_value=2),
)
def test_the_wait_is_never_negative_nor_beyond_the_cap(batches, every, later):
    pacer, clock = pacer_after(batches, every=every)
    clock.now += later
    assert 0 <= pacer.linger() <= CONFIG.max_linger
