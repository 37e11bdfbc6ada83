"""The worker's liveness heartbeat: the file, its check, the healthcheck command, and a
running worker (idle, and backing off from a Redis outage) keeping the file fresh."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orderstream.heartbeat import Heartbeat, check, heartbeat_age
from testkit.factories import OrderEventFactory
from testkit.helpers import eventually

ROOT = Path(__file__).resolve().parent.parent.parent


def age_file(path: Path, seconds: float) -> None:
    """Set the file's mtime `seconds` in the past."""
    then = time.time() - seconds
    os.utime(path, (then, then))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_check(*args: str) -> subprocess.CompletedProcess:
    """The healthcheck as compose runs it, in a clean environment (no Django settings)."""
    return subprocess.run(
        [sys.executable, "-m", "orderstream.heartbeat", *args],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=30,
    )


# ------------------------------------------------------------------------------
# The file and its check
# ------------------------------------------------------------------------------
def test_a_fresh_file_passes_the_check(tmp_path):
    path = tmp_path / "worker.alive"
    Heartbeat(path).touch()
    assert path.exists()
    assert check(path, 5)
    assert heartbeat_age(path) < 5


def test_a_stale_file_fails_the_check(tmp_path):
    path = tmp_path / "worker.alive"
    path.touch()
    age_file(path, 100)
    assert not check(path, 60)
    assert check(path, 120)


def test_a_missing_file_fails_the_check(tmp_path):
    assert not check(tmp_path / "never-written", 60)
    assert heartbeat_age(tmp_path / "never-written") is None


def test_an_mtime_far_in_the_future_counts_as_stale(tmp_path):
    """The clock was set back while the loop stood still: not proof of a turning loop."""
    path = tmp_path / "worker.alive"
    path.touch()
    age_file(path, -3600)
    assert not check(path, 60)


def test_touch_updates_an_existing_file_at_most_once_per_interval(tmp_path):
    """The loop may call touch() every turn: only the first call of each second writes."""
    path = tmp_path / "worker.alive"
    clock = FakeClock()
    heartbeat = Heartbeat(path, min_interval=1.0, clock=clock)
    heartbeat.touch()
    age_file(path, 100)

    clock.now += 0.5
    heartbeat.touch()
    assert heartbeat_age(path) > 99, "touched again within the interval"

    clock.now += 0.5
    heartbeat.touch()
    assert heartbeat_age(path) < 5


def test_a_heartbeat_without_a_path_is_disabled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative "" path would land here
    heartbeat = Heartbeat("")
    heartbeat.touch()
    assert heartbeat.path is None
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_cannot_be_written_never_stops_the_loop_and_is_logged_once(tmp_path, caplog):
    clock = FakeClock()
    heartbeat = Heartbeat(tmp_path / "missing-dir" / "worker.alive", clock=clock)
    with caplog.at_level(logging.WARNING, logger="orderstream.heartbeat"):
        for _ in range(3):
            heartbeat.touch()
            clock.now += 2
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot touch the heartbeat file {heartbeat.path}: "
        f"[Errno 2] No such file or directory: '{heartbeat.path}'"
    ]


# ------------------------------------------------------------------------------
# The healthcheck command
# ------------------------------------------------------------------------------
def test_the_command_exits_0_and_says_nothing_when_fresh(tmp_path):
    path = tmp_path / "worker.alive"
    path.touch()
    result = run_check("--file", str(path), "--max-age", "60")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_command_exits_1_with_one_line_when_stale(tmp_path):
    path = tmp_path / "worker.alive"
    path.touch()
    age_file(path, 300)
    result = run_check("--file", str(path), "--max-age", "120")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"heartbeat {path} is stale: last touched 30")
    assert result.stderr.endswith("s ago (max 120s)\n")


def test_the_command_exits_1_with_one_line_when_missing(tmp_path):
    path = tmp_path / "worker.alive"
    result = run_check("--file", str(path), "--max-age", "120")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"heartbeat {path} is missing")


def test_the_check_loads_neither_django_nor_the_settings():
    """Fast and independent of the database: importing the module pulls in no Django."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, orderstream.heartbeat; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))",
        ],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


# ------------------------------------------------------------------------------
# A running worker
# ------------------------------------------------------------------------------
@pytest.fixture
def heartbeat_file(settings, tmp_path):
    """WORKER_HEARTBEAT_FILE of the `running_worker` (request this fixture before it)."""
    path = tmp_path / "worker.alive"
    settings.WORKER_HEARTBEAT_FILE = str(path)
    return path


def wait_for_a_new_beat(path: Path, timeout: float = 5.0) -> None:
    """Wait until `path` is touched again (its mtime moves on)."""
    before = path.stat().st_mtime_ns
    eventually(lambda: path.stat().st_mtime_ns > before, timeout=timeout, interval=0.1)


@pytest.mark.broker
@pytest.mark.django_db(transaction=True, databases=["default", "worker"])
def test_a_running_worker_keeps_its_heartbeat_fresh(heartbeat_file, unique_topics, running_worker):
    """Idle, the loop still turns: the file exists, passes a 2 s check and keeps moving."""
    eventually(heartbeat_file.exists, timeout=10)
    for _ in range(2):
        wait_for_a_new_beat(heartbeat_file)
        assert check(heartbeat_file, 2)


@pytest.mark.broker
@pytest.mark.django_db(transaction=True, databases=["default", "worker"])
def test_the_heartbeat_goes_on_while_the_worker_backs_off_from_an_outage(
    heartbeat_file, unique_topics, redis_outage, running_worker, send_events, ack_reader
):
    """A worker retrying a Redis outage is alive: the file keeps moving while nothing is
    processed, and the batch completes once Redis is back."""
    redis_outage.pause()
    send_events(OrderEventFactory())
    eventually(lambda: running_worker.stats.retries >= 2, timeout=20)
    for _ in range(2):
        wait_for_a_new_beat(heartbeat_file)
        assert check(heartbeat_file, 2)
    assert running_worker.stats.processed == 0, "Redis came back by itself?"

    redis_outage.resume()
    ack_reader.read_until(lambda recs: len(recs) >= 1)
    eventually(lambda: running_worker.stats.processed == 1, timeout=10)
