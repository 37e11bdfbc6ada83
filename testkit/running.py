"""Run a project loop (`OrderWorker`, `OutboxRelay`: `run()` until `stop()`) in a thread."""

from __future__ import annotations

import contextlib
import threading

import pytest

from testkit.helpers import eventually


@contextlib.contextmanager
def running(loop, *, ready, what: str, timeout: float = 30.0):
    """`loop.run()` in a daemon thread; yields the thread once `ready()` is true (else the
    test fails). On exit: `loop.stop()`, join, and fail the test if the loop raised or did
    not stop within `timeout` seconds."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop.run()
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"running-{what}", daemon=True)
    thread.start()
    try:
        if not eventually(ready, timeout=timeout, fail=False):
            pytest.fail(f"the {what} was not ready within {timeout} s: {errors}")
        yield thread
    finally:
        loop.stop()
        thread.join(timeout=timeout)
    assert not thread.is_alive(), f"the {what} did not stop within {timeout} s"
    assert not errors, f"the {what} crashed: {errors[0]!r}"
