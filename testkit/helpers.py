"""Helpers for the test suites of both apps."""

import threading
import time
from typing import NamedTuple

import pytest

from devstack.polling import poll_until


def eventually(
    check, *, timeout: float = 15.0, interval: float = 0.05, message: str = "", fail: bool = True
):
    """Call `check` until it returns something truthy; after `timeout` seconds fail the
    test, or with `fail=False` return the last (falsy) result."""
    result = poll_until(check, timeout, interval=interval)
    if not result and fail:
        pytest.fail(f"not true within {timeout}s: {message or check}")
    return result


def print_now(text: str, capsys) -> None:
    """Print `text` past pytest's capture, at once: a test's report, shown when it passes too."""
    with capsys.disabled():
        print(text, flush=True)


class Record(NamedTuple):
    """What a handler reads of a Kafka record: a plain record for tests without a broker."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list = []


class Poll(NamedTuple):
    """One `poll` of a consumer: when it began (monotonic) and how long it might block."""

    at: float
    timeout_ms: int | None


class CountingPolls:
    """A Kafka consumer that records each `poll` (each one a fetch round trip) in `polls`,
    for tests of how a loop polls; everything else is the consumer's."""

    def __init__(self, consumer, polls: list[Poll]):
        self._consumer = consumer
        self._polls = polls

    def poll(self, timeout_ms=None, *args, **kwargs):
        self._polls.append(Poll(time.monotonic(), timeout_ms))
        return self._consumer.poll(timeout_ms, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._consumer, name)


def polls_after(polls: list[Poll], moment: float, count: int, *, timeout: float = 30.0):
    """The first `count` polls that began after the monotonic `moment`, waiting up to
    `timeout` seconds for them (a generous bound: a loaded machine only makes it slower)."""

    def found():
        after = [poll for poll in list(polls) if poll.at > moment]
        return after[:count] if len(after) >= count else None

    return eventually(found, timeout=timeout, message=f"{count} polls")


def shortest_gap(polls: list[Poll]) -> float:
    """The shortest time between the starts of two consecutive polls of `polls`."""
    return min(b.at - a.at for a, b in zip(polls, polls[1:], strict=False))


class OffsetClock:
    """A clock that runs with the real monotonic clock, plus whatever `advance()` added:
    pass its `monotonic` where a clock is taken (`AckListener(clock=...)`), or put it in
    place of a module's `time`, to move that notion of "now" forward without waiting."""

    def __init__(self):
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class WatchedEvent(threading.Event):
    """A threading.Event that tells when someone waits on it with a timeout and how the
    wait ended: `sleeping` is set while such a wait is under way, `timeouts` lists the
    timeouts asked for, `woken` the results of the waits that ended (True = set by another
    thread, False = timed out)."""

    def __init__(self):
        super().__init__()
        self.sleeping = threading.Event()
        self.timeouts: list[float] = []
        self.woken: list[bool] = []

    def wait(self, timeout=None):
        if timeout is None:
            return super().wait()
        self.timeouts.append(timeout)
        self.sleeping.set()
        try:
            result = super().wait(timeout)
        finally:
            self.sleeping.clear()
        self.woken.append(result)
        return result


def script_module(path):
    """The Python file at `path` (one of scripts/) imported as a module, for tests of its
    functions."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
