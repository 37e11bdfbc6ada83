"""Helpers for the test suites of both apps."""

import time

import pytest


def eventually(check, *, timeout: float = 15.0, interval: float = 0.05, message: str = ""):
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {timeout}s: {message or check}")
        time.sleep(interval)
