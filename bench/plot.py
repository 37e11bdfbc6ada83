"""The benchmark's PNG: throughput against concurrency (project and baseline, creates and
reads), the latency distribution of synchronous creates against the floor, and, when the
Kafka drivers were compared, their ratios (bench/drivers_report.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.drivers_report import MEASURES


@dataclass(frozen=True)
class DriverBar:
    """One measure's bar: the ratio of a driver's value to the reference driver's."""

    label: str
    ratio: float
    note: str  # reference value → this driver's
    driver: str


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(r["concurrency"], r[key]) for r in rows if r[key] is not None]
    return [c for c, _ in points], [v for _, v in points]


def _cdf(samples: list[float]) -> tuple[list[float], list[float]]:
    ordered = sorted(samples)
    return ordered, [(n + 1) / len(ordered) for n in range(len(ordered))]


def driver_bars(drivers: dict | None) -> list[DriverBar]:
    """The bars of the drivers' panel: per other driver, one per measure with a ratio."""
    if not drivers:
        return []
    reference = drivers["figures"][drivers["reference"]]["values"]
    return [
        DriverBar(
            measure.label,
            ratios[measure.key],
            f"{reference[measure.key]} → {drivers['figures'][driver]['values'][measure.key]}",
            driver,
        )
        for driver, ratios in drivers["ratios"].items()
        for measure in MEASURES
        if ratios[measure.key] is not None
    ]


def _drivers_panel(axis, drivers: dict, bars: list[DriverBar]) -> None:
    """Horizontal bars of the ratios, each noting both values; 1 is a dotted line."""
    others = list(drivers["ratios"])
    rows = range(len(bars))
    axis.barh(rows, [bar.ratio for bar in bars], color="tab:cyan")
    labels = [bar.label + (f"\n{bar.driver}" if len(others) > 1 else "") for bar in bars]
    axis.set_yticks(rows, labels, fontsize=8)
    axis.invert_yaxis()  # the measures in the table's order, top down
    axis.set_xlim(0, max(1.0, *(bar.ratio for bar in bars)) * 1.7)  # room for the notes
    for row, bar in zip(rows, bars, strict=True):
        axis.annotate(
            f"{bar.ratio} ({bar.note})",
            (bar.ratio, row),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axis.axvline(1.0, color="black", linestyle=":")
    axis.set_xlabel("ratio (time: lower is better; events/s: higher is better)")
    axis.set_title(
        f"Kafka drivers: {', '.join(others)} / {drivers['reference']} ({drivers['rounds']} rounds)"
    )
    axis.grid(True, axis="x", alpha=0.3)


def bench_plot(report: dict, path: Path) -> Path:
    """Draw the API part of `report` (see bench/api_report.api_report) into `path`."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt

    api = report["api"]
    bars = driver_bars(report.get("drivers"))
    panels = 3 if bars else 2
    figure, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 5))
    throughput, latency = axes[:2]
    for rows, what, colour in (
        (api["creates_over_baseline"], "create", "tab:blue"),
        (api["reads_over_baseline"], "GET by id", "tab:green"),
    ):
        x, y = _series(rows, "project_rps")
        throughput.plot(x, y, "o-", color=colour, label=f"project {what}")
        x, y = _series(rows, "baseline_rps")
        throughput.plot(x, y, "s--", color=colour, alpha=0.6, label=f"bare DRF {what}")
    throughput.set_xscale("log", base=2)
    levels = sorted({r["concurrency"] for r in api["creates_over_baseline"]})
    throughput.set_xticks(levels, [str(level) for level in levels])
    throughput.set_xlabel("concurrency (wrk connections)")
    throughput.set_ylabel("requests/s (mean of rounds)")
    throughput.set_title("Throughput: project against the bare-DRF baseline")
    throughput.legend()
    throughput.grid(True, alpha=0.3)

    samples = api["samples_ms"]
    for key, label, colour in (
        ("sync_create", "synchronous create", "tab:red"),
        ("baseline_create", "bare-DRF create", "tab:gray"),
        ("floor", "Kafka round-trip floor", "tab:purple"),
    ):
        if samples.get(key):
            x, y = _cdf(samples[key])
            latency.plot(x, y, color=colour, label=label)
    sums = api["sync_create_targets"]
    if sums.get("sum_ms"):
        latency.axvline(sums["sum_ms"], color="black", linestyle=":", label="floor + baseline p50")
        latency.axvline(sums["p50_limit_ms"], color="tab:orange", linestyle="--", label="p50 limit")
        latency.axvline(sums["p99_limit_ms"], color="tab:brown", linestyle="--", label="p99 limit")
    latency.set_xscale("log")
    latency.set_xlabel("ms (log)")
    latency.set_ylabel("fraction of requests")
    latency.set_title("Sequential latency (concurrency 1), CDF")
    latency.legend(loc="lower right")
    latency.grid(True, alpha=0.3)
    if bars:
        _drivers_panel(axes[2], report["drivers"], bars)
    figure.suptitle(f"OrderStream bench, broker {report.get('broker')}, {api.get('at')}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
