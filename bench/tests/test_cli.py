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
    def __init__(self, data_dir, throwaway):
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
