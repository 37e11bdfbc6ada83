"""The Kafka drivers' comparison's report (bench/drivers.py): each driver's figures from
its rounds, the ratio of every other driver's to the first's, and its text table.

A driver's latencies pool the samples of its rounds (as the API benchmark pools its
halves); its worker CPU per event and drain rate are the medians of its rounds.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench import targets
from bench.api_report import percentiles


@dataclass(frozen=True)
class Measure:
    """One figure compared between the drivers."""

    key: str
    label: str
    higher_is_better: bool = False


MEASURES = (
    Measure("floor_p50_ms", "Kafka round-trip floor p50 (ms)"),
    Measure("sync_create_p50_ms", "synchronous create p50 (ms)"),
    Measure("sync_create_p99_ms", "synchronous create p99 (ms)"),
    Measure("worker_cpu_ms_per_event", "worker CPU per event, live load (ms)"),
    Measure("drain_events_per_s", "worker drain (events/s)", higher_is_better=True),
)


def _median(values: list) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 4) if present else None


def _merged(counts: list[dict]) -> dict:
    merged: dict[str, int] = {}
    for one in counts:
        for status, count in one.items():
            merged[str(status)] = merged.get(str(status), 0) + count
    return merged


def driver_figures(stack_runs: list[dict], drain_runs: list[dict]) -> dict:
    """One driver's figures from its rounds (in round order)."""
    floor = percentiles([s for run in stack_runs for s in run["floor_ms"]])
    sync = percentiles([s for run in stack_runs for s in run["sync_ms"]])
    per_round = {
        "worker_cpu_ms_per_event": [run["live_load"]["cpu_ms_per_event"] for run in stack_runs],
        "worker_cpu_ms_per_event_librdkafka": [
            run["live_load"].get("cpu_ms_per_event_by_threads", {}).get("librdkafka")
            for run in stack_runs
        ],
        "drain_events_per_s": [run["events_per_s"] for run in drain_runs],
    }
    return {
        "values": {
            "floor_p50_ms": floor.get("p50"),
            "sync_create_p50_ms": sync.get("p50"),
            "sync_create_p99_ms": sync.get("p99"),
            **{key: _median(values) for key, values in per_round.items()},
        },
        "floor_ms": floor,
        "sync_create_ms": sync,
        "sync_create_statuses": _merged([run["sync_statuses"] for run in stack_runs]),
        "per_round": per_round,
        "rebalances_in_drains": sum(run["rebalances"] or 0 for run in drain_runs),
    }


def drivers_report(
    drivers: list[str],
    *,
    rounds: int,
    live_rate: float,
    stack_runs: list[dict],
    drain_runs: list[dict],
) -> dict:
    """The comparison of `drivers` (the first is the reference of the ratios)."""
    figures = {
        driver: driver_figures(
            [run for run in stack_runs if run["driver"] == driver],
            [run for run in drain_runs if run["driver"] == driver],
        )
        for driver in drivers
    }
    reference = figures[drivers[0]]["values"] if drivers else {}
    return {
        "drivers": drivers,
        "reference": drivers[0] if drivers else None,
        "rounds": rounds,
        "live_rate": live_rate,
        "figures": figures,
        "ratios": {
            driver: {
                measure.key: targets.ratio(
                    figures[driver]["values"][measure.key], reference[measure.key]
                )
                for measure in MEASURES
            }
            for driver in drivers[1:]
        },
        "stack_runs": stack_runs,
        "drain_runs": drain_runs,
    }


def _cell(value) -> str:
    return "-" if value is None else str(value)


def _rounds_line(report: dict, key: str, shown) -> str:
    return "; ".join(
        f"{driver} " + ", ".join("-" if v is None else shown(v) for v in figures["per_round"][key])
        for driver, figures in report["figures"].items()
    )


def format_drivers_table(report: dict) -> str:
    """The drivers' comparison as a text table: each driver's value of every measure, and
    each other driver's ratio to the first."""
    drivers, reference = report["drivers"], report["reference"]
    others = drivers[1:]
    lines = [
        "",
        f"Kafka drivers side by side: {report['rounds']} interleaved rounds "
        f"({', '.join(drivers)}), live load {report['live_rate']:.0f}/s",
        f"{'measure':40}"
        + "".join(f" {driver:>13}" for driver in drivers)
        + "".join(f"  {other} / {reference}" for other in others),
    ]
    for measure in MEASURES:
        values = [report["figures"][driver]["values"][measure.key] for driver in drivers]
        ratios = [report["ratios"][other][measure.key] for other in others]
        better = "higher" if measure.higher_is_better else "lower"
        lines.append(
            f"{measure.label:40}"
            + "".join(f" {_cell(value):>13}" for value in values)
            + "".join(f"  {_cell(ratio):>9}" for ratio in ratios)
            + (f"  ({better} is better)" if others else "")
        )
    lines += [
        "  per round: worker CPU ms/event: " + _rounds_line(report, "worker_cpu_ms_per_event", str),
        "  per round: of it in librdkafka's threads: "
        + _rounds_line(report, "worker_cpu_ms_per_event_librdkafka", str),
        "  per round: drain events/s: "
        + _rounds_line(report, "drain_events_per_s", lambda rate: f"{rate:.0f}"),
        "  per round: live load sent/s (lateness p99 ms): "
        + "; ".join(
            f"{run_driver} "
            + ", ".join(
                f"{run['live_load']['load']['rate_sent']} "
                f"({run['live_load']['load']['lateness_ms'].get('p99')})"
                for run in report["stack_runs"]
                if run["driver"] == run_driver
            )
            for run_driver in drivers
        ),
        "  synchronous create statuses: "
        + "; ".join(
            f"{driver} {figures['sync_create_statuses']}"
            for driver, figures in report["figures"].items()
        ),
        "  rebalances in the drains: "
        + ", ".join(
            f"{driver} {figures['rebalances_in_drains']}"
            for driver, figures in report["figures"].items()
        ),
    ]
    return "\n".join(lines) + "\n"
