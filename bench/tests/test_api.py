"""Unit tests of the benchmark's arithmetic and table (the runs themselves need a live stack)."""

from __future__ import annotations

import pytest

from bench.api import BenchConfig, Client
from bench.api_report import api_report, format_table, percentiles


def test_percentiles_pick_from_the_sorted_samples():
    stats = percentiles([float(n) for n in range(100, 0, -1)])  # 100 .. 1, unsorted
    assert (stats["n"], stats["p50"], stats["p95"], stats["p99"]) == (100, 51.0, 96.0, 100.0)
    assert (stats["mean"], stats["max"]) == (50.5, 100.0)


def test_percentiles_of_no_samples_say_so():
    assert percentiles([]) == {"n": 0}


def _wrk_run(concurrency: int, rps: float, share: float = 0.1) -> dict:
    return {
        "concurrency": concurrency,
        "requests": 10,
        "errors": 1,
        "rps": rps,
        "latency_ms": {"p50": 2.0, "p99": 3.0},
        "wrk_cpu_share": share,
    }


def _report(live: dict | None = None, profiles: dict | None = None) -> dict:
    sequential = {
        "floor": [5.0, 6.0, 7.0],
        "sync": [12.0, 13.0, 14.0],
        "baseline": [3.0, 4.0, 5.0],
        "ids": ["x"],
        "sync_statuses": {"200": 3},
        "baseline_statuses": {"201": 3},
    }
    runs = {
        "nowait_create": [_wrk_run(16, 300.0), _wrk_run(16, 340.0)],
        "baseline_create": [_wrk_run(16, 400.0), _wrk_run(16, 400.0, share=0.3)],
        "get_order": [_wrk_run(16, 500.0)],
        "baseline_get": [_wrk_run(16, 1000.0)],
    }
    return api_report(BenchConfig(), sequential, runs, live, profiles)


def test_the_report_holds_the_ratios_of_the_run_to_its_baseline():
    report = _report()
    assert report["sync_create_targets"]["sum_ms"] == 10.0  # floor p50 6 + baseline p50 4
    assert report["sync_create_targets"]["p50_over_sum"] == 1.3
    creates = report["creates_over_baseline"][0]
    assert (creates["project_rps"], creates["baseline_rps"], creates["ratio"]) == (
        320.0,
        400.0,
        0.8,
    )
    assert report["reads_over_baseline"][0]["ratio"] == 0.5
    assert report["samples_ms"]["sync_create"] == [12.0, 13.0, 14.0]


def test_the_table_shows_each_level_its_ratio_and_wrks_cpu_share():
    table = format_table(_report())
    row = next(line for line in table.splitlines() if line.startswith("POST ?wait=false"))
    assert row.split()[-5:] == ["16", "320.0", "400.0", "0.8", "met"]
    row = next(line for line in table.splitlines() if line.startswith("GET /orders/{id}"))
    assert row.split()[-2:] == ["0.5", "MISSED"]
    assert "floor p50 + baseline p50 = 10.0 ms; sync p50 / sum = 1.3" in table
    assert "wrk CPU share (CPU time / wall time): 0.1-0.3; errors in all runs: 6" in table


def test_the_table_says_how_many_runs_began_on_a_backlog_and_only_then():
    report = _report()
    assert "did not drain" not in format_table(report)

    for run in report["throughput_runs"]["nowait_create"]:
        run["drained"] = False
    assert "2 runs left a backlog that did not drain in time" in format_table(report)


def test_the_table_shows_the_live_load_when_measured():
    live = {
        "load": {
            "sent": 2000,
            "seconds": 10.0,
            "rate_sent": 200.0,
            "rate_asked": 200.0,
            "lateness_ms": {"p99": 3.0},
            "statuses": {"202": 2000},
        },
        "events_applied": 2000,
        "worker_cpu_seconds": 0.6,
        "worker_cpu_share": 0.06,
        "cpu_ms_per_event": 0.3,
    }
    table = format_table(_report(live, {"worker": "/tmp/profile-worker-live.json"}))
    assert "2000 events applied, 0.6 s CPU = 0.3 ms/event (target <= 0.4)" in table
    assert "profile worker: /tmp/profile-worker-live.json" in table


def test_the_load_generator_refuses_anything_but_loopback():
    with pytest.raises(SystemExit, match="loopback only"):
        Client("http://example.com:8080")


def test_make_runs_default_post_waits_and_has_a_row_of_its_own():
    """POST /orders without ?wait=false (make run's default: it waits for the ACK) against
    the same baseline runs, shown without a target (issue 25 item 1)."""
    from bench.api import load_shapes

    creates = load_shapes(BenchConfig(), ["x"])[0]
    assert [(s.key, s.path) for s in creates] == [
        ("baseline_create", "/orders"),
        ("nowait_create", "/orders?wait=false"),
        ("sync_create", "/orders"),
    ]
    report = _report()
    report_runs = {**report["throughput_runs"], "sync_create": [_wrk_run(16, 200.0)]}
    sequential = {"floor": [], "sync": [], "baseline": [], "ids": []}
    sequential |= {"sync_statuses": {}, "baseline_statuses": {}}
    report = api_report(BenchConfig(), sequential, report_runs, None)
    row = report["sync_creates_over_baseline"][0]
    assert (row["ratio"], row["meets_target"]) == (0.5, None)
    table = format_table(report)
    line = next(line for line in table.splitlines() if line.startswith("POST (waits)"))
    assert line.split()[-5:] == ["16", "200.0", "400.0", "0.5", "-"]
