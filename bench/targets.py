"""The performance targets, as ratios within one run (pure arithmetic, unit-tested).

- non-waiting creates and GET /orders/{id}: the project's requests/s over the bare-DRF
  baseline's at the same concurrency, both measured in the same run (`TARGET_THROUGHPUT`);
- a synchronous create: p50 within 1.3 × and p99 within 3 × the sum of the run's Kafka
  round-trip floor p50 and the baseline's sequential create p50;
- the worker: its batched rate over the ceiling 1/(1/K + 1/P), K the Kafka-only loop's
  rate and P the raw PostgreSQL rate of its writes (`TARGET_WORKER`);
- the worker's CPU time per event applied under live load (`TARGET_CPU_MS_PER_EVENT`);
- sustained creates (`make bench-capacity`): the highest open-loop rate of non-waiting
  creates the whole pipeline sustains, over the baseline's (`TARGET_CAPACITY`).
"""

from __future__ import annotations

from statistics import fmean

TARGET_THROUGHPUT = 0.8
TARGET_SYNC_P50 = 1.3
TARGET_SYNC_P99 = 3.0
TARGET_WORKER = 0.85
# The worker's ratio is read from the medians of this many interleaved rounds of the
# worker, K and P (`bench.worker.bench_worker_run`).
WORKER_ROUNDS = 3
TARGET_CPU_MS_PER_EVENT = 0.4
# A rate is sustained when, over the whole run, the answers' p99 (counted from when each
# request was due) stays under CAPACITY_P99_MS and the outbox's oldest unpublished row
# under CAPACITY_OUTBOX_AGE_S (the relay keeps up); the baseline has only the first.
TARGET_CAPACITY = 0.8
CAPACITY_P99_MS = 100.0
CAPACITY_OUTBOX_AGE_S = 1.0


def ratio(numerator: float | None, denominator: float | None, digits: int = 3) -> float | None:
    """numerator / denominator, rounded; None when either is missing or the denominator 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, digits)


def level_ratios(project_runs: list[dict], baseline_runs: list[dict]) -> list[dict]:
    """Per concurrency level: the mean req/s of the project's and the baseline's runs at
    that level (interleaved runs, so several of each), and their ratio."""
    levels = sorted({run["concurrency"] for run in project_runs + baseline_runs})
    rows = []
    for level in levels:
        project = [r["rps"] for r in project_runs if r["concurrency"] == level]
        baseline = [r["rps"] for r in baseline_runs if r["concurrency"] == level]
        project_rps = round(fmean(project), 1) if project else None
        baseline_rps = round(fmean(baseline), 1) if baseline else None
        rows.append(
            {
                "concurrency": level,
                "project_rps": project_rps,
                "baseline_rps": baseline_rps,
                "ratio": ratio(project_rps, baseline_rps),
                "meets_target": _at_least(ratio(project_rps, baseline_rps), TARGET_THROUGHPUT),
            }
        )
    return rows


def sync_create_targets(*, sync_ms: dict, floor_ms: dict, baseline_create_ms: dict) -> dict:
    """The synchronous create against floor p50 + baseline create p50 (both at c = 1)."""
    if not (floor_ms.get("p50") and baseline_create_ms.get("p50") and sync_ms.get("p50")):
        return {"sum_ms": None}
    total = round(floor_ms["p50"] + baseline_create_ms["p50"], 2)
    p50_ratio, p99_ratio = ratio(sync_ms["p50"], total), ratio(sync_ms["p99"], total)
    return {
        "sum_ms": total,
        "p50_limit_ms": round(TARGET_SYNC_P50 * total, 2),
        "p99_limit_ms": round(TARGET_SYNC_P99 * total, 2),
        "p50_over_sum": p50_ratio,
        "p99_over_sum": p99_ratio,
        "meets_target": _at_most(p50_ratio, TARGET_SYNC_P50)
        and _at_most(p99_ratio, TARGET_SYNC_P99),
    }


def worker_ceiling(kafka_only_per_s: float, postgres_per_s: float) -> float:
    """Events/s of a worker that does the Kafka-only loop's work and the database's work
    one after the other: 1 / (1/K + 1/P)."""
    if kafka_only_per_s <= 0 or postgres_per_s <= 0:
        return 0.0
    return 1 / (1 / kafka_only_per_s + 1 / postgres_per_s)


def cpu_ms_per_event(cpu_seconds: float, events: int) -> float | None:
    return round(cpu_seconds * 1000 / events, 4) if events else None


def _at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def _at_most(value: float | None, target: float) -> bool | None:
    return None if value is None else value <= target
