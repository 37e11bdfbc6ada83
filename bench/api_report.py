"""The API benchmark's report (bench/api.py): the figures of one run, their ratios
to the baseline and the targets (bench/targets.py), and its text table."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

from bench import targets

if TYPE_CHECKING:
    from bench.api import BenchConfig


def percentiles(samples_ms: list[float]) -> dict:
    if not samples_ms:
        return {"n": 0}
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "n": len(ordered),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "mean": round(statistics.fmean(ordered), 2),
        "max": round(ordered[-1], 2),
    }


def api_report(
    config: BenchConfig,
    sequential: dict,
    runs: dict[str, list[dict]],
    live: dict | None,
    profiles: dict[str, str] | None = None,
) -> dict:
    floor = percentiles(sequential["floor"])
    sync = percentiles(sequential["sync"])
    baseline_create = percentiles(sequential["baseline"])
    return {
        "base_url": config.base_url,
        "baseline_url": config.baseline_url,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kafka_round_trip_floor_ms": floor,
        "sync_create_ms": sync,
        "sync_create_statuses": sequential["sync_statuses"],
        "baseline_create_c1_ms": baseline_create,
        "baseline_create_statuses": sequential["baseline_statuses"],
        "sync_create_targets": targets.sync_create_targets(
            sync_ms=sync, floor_ms=floor, baseline_create_ms=baseline_create
        ),
        "samples_ms": {
            "floor": [round(s, 3) for s in sequential["floor"]],
            "sync_create": [round(s, 3) for s in sequential["sync"]],
            "baseline_create": [round(s, 3) for s in sequential["baseline"]],
        },
        "throughput_runs": runs,
        "creates_over_baseline": targets.level_ratios(
            runs["nowait_create"], runs["baseline_create"]
        ),
        "sync_creates_over_baseline": [
            {**row, "meets_target": None}
            for row in targets.level_ratios(runs.get("sync_create", []), runs["baseline_create"])
            if row["project_rps"] is not None
        ],
        "reads_over_baseline": targets.level_ratios(runs["get_order"], runs["baseline_get"]),
        "live_load": live,
        "profiles": profiles or {},
    }


def _cell(value) -> str:
    return "-" if value is None else str(value)


def format_table(report: dict) -> str:
    """The API part of the report as a text table."""
    floor, sync = report["kafka_round_trip_floor_ms"], report["sync_create_ms"]
    base = report["baseline_create_c1_ms"]
    lines = [
        "",
        f"{'latency, concurrency 1 (ms)':44} {'p50':>8} {'p95':>8} {'p99':>8} {'n':>7}",
    ]
    for name, row in (
        ("Kafka round-trip floor", floor),
        ("baseline create (bare DRF)", base),
        ("synchronous POST create", sync),
    ):
        lines.append(
            f"{name:44} {_cell(row.get('p50')):>8} {_cell(row.get('p95')):>8} "
            f"{_cell(row.get('p99')):>8} {row.get('n', 0):>7}"
        )
    sums = report["sync_create_targets"]
    lines.append(
        f"  statuses: sync {report['sync_create_statuses']}, baseline "
        f"{report['baseline_create_statuses']}"
    )
    lines.append(
        f"  floor p50 + baseline p50 = {_cell(sums.get('sum_ms'))} ms; sync p50 / sum = "
        f"{_cell(sums.get('p50_over_sum'))} (target <= {targets.TARGET_SYNC_P50}), "
        f"p99 / sum = {_cell(sums.get('p99_over_sum'))} (target <= {targets.TARGET_SYNC_P99})"
    )
    lines += [
        "",
        f"{'throughput (wrk), mean of rounds':32} {'c':>4} {'project':>9} {'baseline':>9} "
        f"{'ratio':>7} {'target':>7}",
    ]
    for name, rows in (
        ("POST ?wait=false / bare create", report["creates_over_baseline"]),
        ("POST (waits) / bare create", report.get("sync_creates_over_baseline", [])),
        ("GET /orders/{id} / bare GET", report["reads_over_baseline"]),
    ):
        for row in rows:
            met = {True: "met", False: "MISSED", None: "-"}[row["meets_target"]]
            lines.append(
                f"{name:32} {row['concurrency']:>4} {_cell(row['project_rps']):>9} "
                f"{_cell(row['baseline_rps']):>9} {_cell(row['ratio']):>7} {met:>7}"
            )
    shares = [r["wrk_cpu_share"] for rs in report["throughput_runs"].values() for r in rs]
    errors = sum(r["errors"] for rs in report["throughput_runs"].values() for r in rs)
    if shares:
        lines.append(
            f"  wrk CPU share (CPU time / wall time): {min(shares)}-{max(shares)}; "
            f"errors in all runs: {errors}"
        )
    busy = sum(not r.get("drained", True) for rs in report["throughput_runs"].values() for r in rs)
    if busy:
        lines.append(f"  {busy} runs left a backlog that did not drain in time: next began busy")
    live = report.get("live_load")
    if live:
        load = live["load"]
        lines += [
            "",
            f"live load: {load['sent']} creates in {load['seconds']}s "
            f"({load['rate_sent']}/s asked {load['rate_asked']}/s, lateness p99 "
            f"{load['lateness_ms'].get('p99')} ms), statuses {load['statuses']}",
            f"  worker: {live['events_applied']} events applied, "
            f"{live['worker_cpu_seconds']} s CPU = {_cell(live['cpu_ms_per_event'])} ms/event "
            f"(target <= {targets.TARGET_CPU_MS_PER_EVENT}); CPU share {live['worker_cpu_share']}",
        ]
    for name, where in report.get("profiles", {}).items():
        lines.append(f"profile {name}: {where}")
    return "\n".join(lines) + "\n"
