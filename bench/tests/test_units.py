"""Unit tests of the benchmark's pure parts: wrk's scripts and summary, the targets'
arithmetic, the pacing schedule, /proc parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import targets
from bench.cpu_time import stat_cpu_seconds, thread_cpu_seconds, thread_group
from bench.pacing import lateness_summary, paced_run, send_times
from bench.wrk import (
    WrkResult,
    get_script,
    post_script,
    wrk_summary_parse,
    wrk_threads,
)
from testkit.helpers import script_module

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = (
    '{"requests": 1000, "duration_us": 2000000, "bytes": 5, "connect_errors": 0, '
    '"read_errors": 1, "write_errors": 0, "status_errors": 9, "timeouts": 0, '
    '"p50_us": 1500, "p90_us": 3000, "p99_us": 9000, "max_us": 12000, "mean_us": 1800.5}'
)


def test_the_summary_line_is_found_among_wrks_own_output():
    output = f"Running 2s test @ http://127.0.0.1:1\n2 threads\nWRK_JSON {SUMMARY}\nReq/s: 500\n"
    summary = wrk_summary_parse(output)
    assert (summary["requests"], summary["p99_us"], summary["status_errors"]) == (1000, 9000, 9)


def test_an_output_without_a_summary_says_so():
    with pytest.raises(ValueError, match="no WRK_JSON line"):
        wrk_summary_parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_a_runs_rate_counts_answers_without_errors_and_its_cpu_share_is_cpu_over_wall():
    result = WrkResult(wrk_summary_parse(f"WRK_JSON {SUMMARY}"), wall_seconds=2.5, cpu_seconds=0.5)
    assert result.errors == 10
    assert result.rps == pytest.approx(495.0)  # (1000 - 10) / 2 s
    assert result.cpu_share == pytest.approx(0.2)
    row = result.as_dict(16)
    assert row["concurrency"] == 16
    assert row["latency_ms"]["p50"] == 1.5
    assert row["wrk_cpu_share"] == 0.2


def test_wrk_uses_no_more_threads_than_cores_or_connections():
    assert wrk_threads(1, cores=2) == 1
    assert wrk_threads(32, cores=2) == 2
    assert wrk_threads(4, cores=8) == 4


def test_the_scripts_carry_their_path_and_ids_as_lua_strings():
    post = post_script("/orders?wait=false", seed=7)
    assert 'PATH = "/orders?wait=false"' in post and "SEED = 7" in post
    assert 'wrk.format("POST"' in post
    get = get_script("/orders/", ["a-1", "b-2"])
    assert 'IDS = {"a-1", "b-2"}' in get
    with pytest.raises(ValueError):
        get_script("/orders/", [])


def _run(concurrency: int, rps: float) -> dict:
    return {"concurrency": concurrency, "rps": rps}


def test_level_ratios_average_the_rounds_of_each_level():
    project = [_run(1, 80.0), _run(1, 100.0), _run(16, 300.0)]
    baseline = [_run(1, 100.0), _run(1, 120.0), _run(16, 500.0)]
    rows = targets.level_ratios(project, baseline)
    assert [r["concurrency"] for r in rows] == [1, 16]
    assert (rows[0]["project_rps"], rows[0]["baseline_rps"], rows[0]["ratio"]) == (
        90.0,
        110.0,
        0.818,
    )
    assert rows[0]["meets_target"] is True
    assert (rows[1]["ratio"], rows[1]["meets_target"]) == (0.6, False)


def test_a_level_measured_on_one_side_only_has_no_ratio():
    rows = targets.level_ratios([_run(4, 10.0)], [])
    assert rows == [
        {
            "concurrency": 4,
            "project_rps": 10.0,
            "baseline_rps": None,
            "ratio": None,
            "meets_target": None,
        }
    ]


def test_the_synchronous_create_is_held_to_floor_plus_baseline():
    result = targets.sync_create_targets(
        sync_ms={"p50": 13.0, "p99": 40.0},
        floor_ms={"p50": 6.0},
        baseline_create_ms={"p50": 4.0},
    )
    assert result["sum_ms"] == 10.0
    assert (result["p50_limit_ms"], result["p99_limit_ms"]) == (13.0, 30.0)
    assert (result["p50_over_sum"], result["p99_over_sum"]) == (1.3, 4.0)
    assert result["meets_target"] is False  # p50 on the limit, p99 over it


def test_without_samples_there_is_no_sum():
    assert targets.sync_create_targets(sync_ms={"n": 0}, floor_ms={}, baseline_create_ms={}) == {
        "sum_ms": None
    }


def test_the_worker_ceiling_is_the_harmonic_sum_of_k_and_p():
    assert targets.worker_ceiling(10_000, 10_000) == pytest.approx(5_000)
    assert targets.worker_ceiling(6_000, 12_000) == pytest.approx(4_000)
    assert targets.worker_ceiling(0, 12_000) == 0.0


def test_ratios_and_cpu_per_event():
    assert targets.ratio(1, 3) == 0.333
    assert targets.ratio(None, 3) is None and targets.ratio(1, 0) is None
    assert targets.cpu_ms_per_event(0.8, 2000) == 0.4
    assert targets.cpu_ms_per_event(0.8, 0) is None


def test_the_schedule_spaces_requests_evenly_from_zero():
    times = send_times(200, 10)
    assert len(times) == 2000
    assert times[0] == 0.0 and times[1] == pytest.approx(0.005)
    assert times[-1] == pytest.approx(9.995)
    assert send_times(0, 10) == [] and send_times(200, 0) == []


def test_lateness_is_summarised_from_the_sorted_delays():
    summary = lateness_summary([float(n) for n in range(100, 0, -1)])
    assert (summary["n"], summary["p50"], summary["p99"], summary["max"]) == (
        100,
        51.0,
        100.0,
        100.0,
    )
    assert lateness_summary([]) == {"n": 0}


def test_a_paced_run_sends_the_whole_schedule_through_its_senders():
    sent = []

    def make_sender():
        return lambda: sent.append(1) or 201

    result = paced_run(rate=100, seconds=0.3, senders=3, make_sender=make_sender)
    assert result["sent"] == len(sent) == 30
    assert result["statuses"] == {"201": 30}
    assert result["seconds"] >= 0.29  # the last request leaves at 0.29 s, not sooner


def test_cpu_time_is_read_after_the_command_name_even_with_spaces_and_parentheses():
    line = "4242 (gunicorn: worker (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 99"
    assert stat_cpu_seconds(line, ticks=100) == 3.0


def test_librdkafkas_threads_are_told_apart_by_their_names():
    assert [thread_group(n) for n in ("rdk:main", "rdk:broker-1", "python3", "rdkafka")] == [
        "librdkafka",
        "librdkafka",
        "python",
        "python",
    ]


def test_a_threads_cpu_is_counted_under_the_group_of_its_name():
    """A thread named as librdkafka names its own (prctl PR_SET_NAME) spins for a while:
    its CPU time shows under `librdkafka`, this thread's under `python`."""
    import ctypes
    import threading
    import time

    named, done = threading.Event(), threading.Event()

    def spin() -> None:
        ctypes.CDLL(None).prctl(15, b"rdk:bench-test", 0, 0, 0)  # PR_SET_NAME
        named.set()
        while time.thread_time() < 0.3:  # this thread's own CPU time
            pass
        done.wait(10)

    thread = threading.Thread(target=spin)
    thread.start()
    named.wait(10)
    deadline = time.monotonic() + 30
    while thread_cpu_seconds(os.getpid()).get("librdkafka", 0.0) < 0.2:
        assert time.monotonic() < deadline, "the named thread's CPU time never showed"
        time.sleep(0.05)
    groups = thread_cpu_seconds(os.getpid())
    done.set()
    thread.join(10)
    assert groups["librdkafka"] >= 0.2 and groups["python"] > 0


def test_the_baseline_is_served_by_the_apis_server_without_an_ack_listener(monkeypatch, tmp_path):
    """The baseline runs `make run`'s server (its workers and threads) on the benchmark's
    port, with its own settings, which start no ACK listener in its processes."""
    from bench import baseline_settings, servers

    started = {}

    class Recorded:
        def __init__(self, name, command, *, log_dir, env):
            started.update(name=name, command=command, env=env)

    monkeypatch.setattr(servers, "Process", Recorded)
    monkeypatch.setattr(servers, "wait_healthy", lambda url, process: started.update(url=url))
    servers.start_baseline(18999, tmp_path)
    assert started["command"] == servers.api_command()
    assert started["env"] == {
        "DJANGO_SETTINGS_MODULE": servers.BASELINE_SETTINGS,
        "API_PORT": "18999",
    }
    assert started["url"] == "http://127.0.0.1:18999"
    assert baseline_settings.API_PROCESS_LISTENER is None


def test_the_bench_stack_leaves_the_ports_of_make_run_alone(monkeypatch):
    """`make bench` beside `make run`: its own databases and broker, and its relay and
    worker serve their metrics as under `make run` but on free ports (make run's would
    be taken: they exited)."""
    local_stack = script_module(ROOT / "scripts/local_stack.py")
    monkeypatch.setenv("API_POSTGRES_DSN", "postgres://u@127.0.0.1:5432/api?sslmode=disable")
    monkeypatch.setenv("WORKER_POSTGRES_DSN", "postgres://u@127.0.0.1:5432/worker")
    monkeypatch.setenv("KAFKA_BROKERS", "127.0.0.1:29092")
    monkeypatch.setenv("RELAY_METRICS_PORT", "9102")
    monkeypatch.setenv("WORKER_METRICS_PORT", "9101")

    local_stack.bench_environment()

    assert os.environ["API_POSTGRES_DSN"] == "postgres://u@127.0.0.1:5432/api_bench?sslmode=disable"
    assert os.environ["WORKER_POSTGRES_DSN"] == "postgres://u@127.0.0.1:5432/worker_bench"
    assert os.environ["KAFKA_BROKERS"] != "127.0.0.1:29092"
    ports = {int(os.environ[name]) for name in ("RELAY_METRICS_PORT", "WORKER_METRICS_PORT")}
    assert len(ports) == 2 and not ports & {0, 9101, 9102}
