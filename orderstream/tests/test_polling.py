"""The one poll loop (devstack/polling.py) and a local server's wait for its first answer."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from devstack.polling import poll_until
from devstack.server import ChildServer


def test_poll_until_returns_the_first_truthy_result():
    results = iter([None, 0, [], "ready", "later"])
    assert poll_until(lambda: next(results), timeout=5, interval=0) == "ready"


def test_poll_until_returns_the_last_falsy_result_after_the_timeout():
    calls = []
    started = time.monotonic()
    assert poll_until(lambda: calls.append(1) or [], timeout=0.2, interval=0.01) == []
    assert time.monotonic() - started >= 0.2
    assert len(calls) > 1


def test_a_condition_that_raises_ends_the_wait():
    def exited():
        raise RuntimeError("gone")

    with pytest.raises(RuntimeError, match="gone"):
        poll_until(exited, timeout=30)


class Sleeper(ChildServer):
    """A child process that never answers, or exits at once with code 3."""

    def __init__(self, code: str):
        self.process = subprocess.Popen([sys.executable, "-c", code])
        self.log_path = "server.log"


def test_a_server_that_exits_before_answering_fails_at_once_with_its_code():
    server = Sleeper("import sys; sys.exit(3)")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"^sleeper exited with code 3; see server.log$"):
        server.wait_answering(lambda: False, timeout=60, what="sleeper")
    assert time.monotonic() - started < 30
    assert server.process is None


def test_a_server_that_never_answers_is_stopped_after_the_timeout():
    server = Sleeper("import time; time.sleep(60)")
    process = server.process
    with pytest.raises(RuntimeError, match=r"^sleeper did not answer in 0.3s; see server.log$"):
        server.wait_answering(lambda: False, timeout=0.3, what="sleeper")
    assert process.poll() is not None
    assert server.process is None
