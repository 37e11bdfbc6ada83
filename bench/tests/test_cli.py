"""`python -m bench api|worker` (bench/cli.py, was `manage.py bench_api|bench_worker`) and
its way in from `make bench-api|bench-worker` (scripts/local_stack.py `bench api|worker`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.api import BenchConfig
from bench.cli import parse_args
from bench.session import parse_args as session_args
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


def test_make_bench_compares_both_drivers_in_three_rounds_unless_told_otherwise():
    args = session_args([])
    assert (args.drivers, args.driver_rounds) == (["kafka-python", "confluent"], 3)
    assert session_args(["--drivers", "confluent", "--driver-rounds", "1"]).drivers == ["confluent"]
    assert session_args(["--drivers", ""]).drivers == []  # no comparison: a quick run


def test_make_bench_refuses_a_driver_it_does_not_know(capsys):
    with pytest.raises(SystemExit):
        session_args(["--drivers", "kafka-python,librdkafka"])
    assert "unknown Kafka driver librdkafka" in capsys.readouterr().err


def _stack_run(driver: str, round_number: int) -> dict:
    sync = [10.0, 12.0] if driver == "kafka-python" else [5.0, 6.0]
    return {
        "driver": driver,
        "round": round_number,
        "floor_ms": [2.0],
        "sync_ms": sync,
        "sync_statuses": {"200": 2},
        "live_load": {
            "cpu_ms_per_event": 0.3,
            "load": {"rate_sent": 200.0, "lateness_ms": {"p99": 1.0}},
        },
    }


def test_make_bench_measures_the_drivers_between_its_phases_and_writes_their_ratios(
    monkeypatch, tmp_path
):
    """The drivers' stacks after the API phase (its stack stopped), their drains after the
    worker phase (the drain database is then the worker alias's); JSON and plot get both."""
    from django.conf import settings
    from django.db import connections

    from bench import drivers, plot, session

    calls = []
    monkeypatch.setattr(session, "api_phase", lambda args, out: calls.append("api") or {})

    def worker_phase(args, database):  # as bench_database_use: the alias on that database
        monkeypatch.setitem(connections["worker"].settings_dict, "NAME", database)
        calls.append(("worker", database))
        return {}

    monkeypatch.setattr(session, "worker_phase", worker_phase)

    def stack_rounds(order, shares, *, log_dir, out):
        calls.append(("stacks", order, shares.sync_requests, shares.floor_samples))
        return [_stack_run(driver, n) for n, driver in order]

    def drain_rounds(order, *, events, batch_size, database, out):
        calls.append(("drains", order, events, database))
        return [{"driver": d, "round": n, "events_per_s": 100.0, "rebalances": 0} for n, d in order]

    monkeypatch.setattr(drivers, "stack_rounds", stack_rounds)
    monkeypatch.setattr(drivers, "drain_rounds", drain_rounds)
    monkeypatch.setattr(plot, "bench_plot", lambda report, path: calls.append("plot") or path)

    drain_db = f"{connections['worker'].settings_dict['NAME']}_drain"
    argv = ["--out", str(tmp_path), "--driver-rounds", "2", "--sync-requests", "50"]
    assert session.bench_session([*argv, "--events", "900"]) == 0

    order = [(1, "kafka-python"), (1, "confluent"), (2, "kafka-python"), (2, "confluent")]
    assert calls == [
        "api",
        ("stacks", order, 25, 150),
        ("worker", drain_db),
        ("drains", order, 900, drain_db),  # not <drain_db>_drain: asked before the worker's
        "plot",
    ]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["kafka_client"] == settings.KAFKA_CLIENT  # the driver of the rows before
    assert report["drivers"]["ratios"]["confluent"]["sync_create_p50_ms"] == 0.5


def test_make_bench_without_drivers_starts_no_drivers_round(monkeypatch, tmp_path):
    from bench import drivers, plot, session

    monkeypatch.setattr(session, "api_phase", lambda args, out: {})
    monkeypatch.setattr(drivers, "stack_rounds", None)  # called: a TypeError
    monkeypatch.setattr(drivers, "drain_rounds", None)
    monkeypatch.setattr(plot, "bench_plot", lambda report, path: path)

    argv = ["--out", str(tmp_path), "--drivers", "", "--skip-worker-bench"]
    assert session.bench_session(argv) == 0
    assert json.loads((tmp_path / "bench.json").read_text())["drivers"] is None


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
