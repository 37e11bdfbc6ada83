"""Waiting for a condition with a deadline: the one poll loop of the local stack's
servers, the scripts and the tests (testkit's `eventually` and `wait_until` say how a
test fails; this only waits)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(condition: Callable[[], T], timeout: float, *, interval: float = 0.05) -> T:
    """Call `condition` every `interval` seconds until it returns something truthy, and
    return that; after `timeout` seconds return its last (falsy) result. `condition` may
    raise to stop the wait early (the process waited for has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)
