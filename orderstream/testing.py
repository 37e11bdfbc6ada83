"""Helpers for the test suites of both apps."""

import time

import pytest


def eventually(
    check, *, timeout: float = 15.0, interval: float = 0.05, message: str = "", fail: bool = True
):
    """Call `check` until it returns something truthy; after `timeout` seconds fail the
    test, or with `fail=False` return the last (falsy) result."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            if not fail:
                return result
            pytest.fail(f"not true within {timeout}s: {message or check}")
        time.sleep(interval)


class CountingPolls:
    """A Kafka consumer that records the monotonic time of each `poll` (each one a fetch
    round trip), for tests of how often a loop polls; everything else is the consumer's."""

    def __init__(self, consumer, times: list[float]):
        self._consumer = consumer
        self._times = times

    def poll(self, *args, **kwargs):
        self._times.append(time.monotonic())
        return self._consumer.poll(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._consumer, name)


def polls_during(times: list[float], seconds: float) -> int:
    """How many polls `times` gains in the next `seconds` (sleeps that long)."""
    start = time.monotonic()
    time.sleep(seconds)
    return sum(1 for t in times if t >= start)
