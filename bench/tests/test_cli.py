"""`python -m bench api|worker` (bench/cli.py, was `manage.py bench_api|bench_worker`) and
its way in from `make bench-api|bench-worker` (scripts/local_stack.py `bench api|worker`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.api import BenchConfig
from bench.cli import parse_args
from bench.targets import WORKER_ROUNDS
from testkit.helpers import script_module

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_options_make_the_benchmarks_config():
    options = parse_args(
        ["api", "--url", "http://127.0.0.1:9", "--concurrency", "1, 8,", "--duration", "2"]
    )
    config = BenchConfig.from_options(options, base_url=options.url, api_pid=7)
    assert (config.base_url, config.concurrency, config.duration) == (
        "http://127.0.0.1:9",
        [1, 8],
        2.0,
    )
    assert (config.rounds, config.sync_requests, config.api_pid) == (2, 300, 7)


def test_the_worker_options_keep_their_defaults():
    options = parse_args(["worker"])
    assert (options.events, options.naive_events, options.rounds) == (20000, 3000, WORKER_ROUNDS)
    assert options.batch_size is None  # the setting WORKER_BATCH_SIZE, once Django is set up
    assert (options.json, options.use_brokers) == ("bench_worker.json", False)


def test_a_part_must_be_named():
    with pytest.raises(SystemExit):
        parse_args([])


class _Stack:
    def __init__(self, data_dir, throwaway, durable=None):
        self.throwaway = throwaway

    def stop(self):
        pass


@pytest.mark.parametrize("part", ["api", "worker"])
def test_local_stack_runs_a_bench_part_as_it_runs_manage(monkeypatch, part):
    """`make bench-api`: the local values (no throwaway stack, no bench databases), then
    `python -m bench api ARGS`."""
    local_stack = script_module(ROOT / "scripts/local_stack.py")
    calls = []
    monkeypatch.setattr(local_stack.signal, "signal", lambda *args: None)  # this process's
    monkeypatch.setattr(local_stack, "Stack", _Stack)
    monkeypatch.setattr(local_stack, "load_local_env", lambda: None)
    monkeypatch.setattr(local_stack, "bench_environment", lambda: calls.append("bench env"))
    monkeypatch.setattr(
        local_stack,
        "prepare",
        lambda stack, with_broker: calls.append((stack.throwaway, with_broker)),
    )
    monkeypatch.setattr(
        local_stack.subprocess, "call", lambda command, cwd: calls.append(command[1:]) or 0
    )
    assert local_stack.main(["bench", part, "--rounds", "1"]) == 0
    assert calls == [(False, False), ["-m", "bench", part, "--rounds", "1"]]


class _RecordingStack(_Stack):
    """A Stack double that keeps what the real one decides from its arguments."""

    def __init__(self, data_dir, throwaway, durable=None):
        super().__init__(data_dir, throwaway)
        self.durable = (not throwaway) if durable is None else durable


def test_make_bench_prepares_the_durable_stack_of_make_run(monkeypatch):
    """`make bench` measures what `make run` runs: its embedded PostgreSQL and Redis keep
    make run's durability (fsync, synchronous commit, Redis's append-only file), only
    their data is thrown away at the end (issue 25 item 1)."""
    local_stack = script_module(ROOT / "scripts/local_stack.py")
    stacks = []
    monkeypatch.setattr(local_stack.signal, "signal", lambda *args: None)
    monkeypatch.setattr(
        local_stack, "Stack", lambda *a, **k: stacks.append(_RecordingStack(*a, **k)) or stacks[-1]
    )
    monkeypatch.setattr(local_stack, "load_local_env", lambda: None)
    monkeypatch.setattr(local_stack, "bench_environment", lambda: None)
    monkeypatch.setattr(local_stack, "prepare", lambda stack, with_broker: None)
    monkeypatch.setattr(local_stack, "run_bench", lambda argv: 0)
    assert local_stack.main(["bench", "--rounds", "1"]) == 0
    assert [(s.throwaway, s.durable) for s in stacks] == [(True, True)]


def test_the_test_stack_stays_fast_and_make_runs_durable(tmp_path):
    """Durability is its own choice: a throwaway server may keep make run's settings."""
    from devstack.postgres import THROWAWAY_SETTINGS, EmbeddedPostgres
    from devstack.redis import EmbeddedRedis

    fast = EmbeddedPostgres(tmp_path / "a", 5, throwaway=True)
    durable = EmbeddedPostgres(tmp_path / "b", 5, throwaway=True, durable=True)
    assert THROWAWAY_SETTINGS.items() <= fast.server_settings().items()
    assert not set(THROWAWAY_SETTINGS) & set(durable.server_settings())
    assert "yes" in EmbeddedRedis(tmp_path / "c", 6, throwaway=True, durable=True).persistence()
    assert "no" in EmbeddedRedis(tmp_path / "d", 6, throwaway=True).persistence()
