"""Unit tests of the benchmark's arithmetic and table (the runs themselves need a live stack)."""

from __future__ import annotations

import pytest

from orders_api.bench import Client, format_table, percentiles


def test_percentiles_pick_from_the_sorted_samples():
    stats = percentiles([float(n) for n in range(100, 0, -1)])  # 100 .. 1, unsorted
    assert (stats["n"], stats["p50"], stats["p95"], stats["p99"]) == (100, 51.0, 96.0, 100.0)
    assert (stats["mean"], stats["max"]) == (50.5, 100.0)


def test_percentiles_of_no_samples_say_so():
    assert percentiles([]) == {"n": 0}


def _run(concurrency: int, rps: float) -> dict:
    return {
        "concurrency": concurrency,
        "requests": 10,
        "ok": 9,
        "rps": rps,
        "latency_ms": percentiles([1.0, 2.0, 3.0]),
    }


def test_the_table_shows_each_run_its_errors_and_the_ratio_to_the_baseline():
    report = {
        "kafka_round_trip_floor_ms": percentiles([5.0, 6.0, 7.0]),
        "sync_create_ms": percentiles([12.0, 13.0, 14.0]),
        "sync_create_statuses": {"200": 3},
        "sync_create_p50_over_floor_p50": 2.17,
        "nowait_create": [_run(16, 300.0)],
        "get_order": [_run(16, 500.0)],
        "health": [_run(16, 1200.0)],
        "nowait_create_over_health": [0.25],
    }
    table = format_table(report)
    assert "POST ?wait=false @ concurrency 16" in table
    assert "GET /health (baseline) @ concurrency 16" in table
    row = next(line for line in table.splitlines() if line.startswith("GET /orders/{id}"))
    assert row.split()[-4:] == ["500.0", "2.0", "3.0", "1"]
    assert "non-waiting POST req/s / GET /health req/s: 0.25 at c=16" in table


def test_the_load_generator_refuses_anything_but_loopback():
    with pytest.raises(SystemExit, match="loopback only"):
        Client("http://example.com:8080")
