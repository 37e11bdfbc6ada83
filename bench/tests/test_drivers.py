"""The Kafka drivers side by side (`make bench --drivers`): the rounds' order and the
processes' names (bench/driver_rounds.py), the check of a process's driver
(bench/drivers.py), the figures and ratios of a run (bench/drivers_report.py) and what
the plot draws of them (bench/plot.py)."""

from __future__ import annotations

import json

import pytest

from bench.driver_rounds import driver_names, interleaved, stack_names
from bench.drivers import driver_of_threads
from bench.drivers_report import drivers_report, format_drivers_table
from bench.plot import bench_plot, driver_bars

KNOWN = ("kafka-python", "confluent")


def test_the_rounds_alternate_the_drivers_round_by_round():
    assert interleaved(["kafka-python", "confluent"], 3) == [
        (1, "kafka-python"),
        (1, "confluent"),
        (2, "kafka-python"),
        (2, "confluent"),
        (3, "kafka-python"),
        (3, "confluent"),
    ]
    assert interleaved(["confluent"], 2) == [(1, "confluent"), (2, "confluent")]
    assert interleaved([], 3) == []


def test_the_drivers_option_names_known_drivers_once_each_in_its_order():
    assert driver_names("kafka-python,confluent", KNOWN) == ["kafka-python", "confluent"]
    assert driver_names(" confluent , kafka-python,", KNOWN) == ["confluent", "kafka-python"]
    assert driver_names("", KNOWN) == [] and driver_names("none", KNOWN) == []
    with pytest.raises(ValueError, match="unknown Kafka driver librdkafka"):
        driver_names("kafka-python,librdkafka", KNOWN)
    with pytest.raises(ValueError, match="twice"):
        driver_names("confluent,confluent", KNOWN)


def test_every_round_of_every_driver_has_topics_and_groups_of_its_own():
    """No group ever holds members of two drivers, none replays another round's events."""
    plans = [stack_names(driver, n) for n in (1, 2) for driver in KNOWN]
    assert set(plans[0]) == {
        "ORDERS_EVENTS_TOPIC",
        "ORDERS_ACK_TOPIC",
        "ORDERS_DLQ_TOPIC",
        "WORKER_GROUP",
        "ACK_RECORDER_GROUP",
    }
    names = [name for plan in plans for name in plan.values()]
    assert len(set(names)) == len(names) == 20
    assert not {"orders.events", "orders.ack", "order-workers"} & set(names)


def test_a_process_runs_librdkafka_when_it_has_its_threads():
    """How a round checks that its processes run the driver it named."""
    assert driver_of_threads(["python", "rdk:main", "rdk:broker-1"]) == "confluent"
    assert driver_of_threads(["python", "kafka-python-network-thread"]) == "kafka-python"
    assert driver_of_threads(["gunicorn: worker"]) == "kafka-python"


def _stack_run(driver: str, n: int, *, floor: list, sync: list, cpu: float | None) -> dict:
    return {
        "driver": driver,
        "round": n,
        "floor_ms": floor,
        "sync_ms": sync,
        "sync_statuses": {"200": len(sync)},
        "live_load": {
            "cpu_ms_per_event": cpu,
            "cpu_ms_per_event_by_threads": (
                {"librdkafka": 0.05, "python": cpu - 0.05}
                if driver == "confluent" and cpu
                else {"python": cpu}
            ),
            "events_applied": 10,
            "load": {"rate_sent": 199.5 - n, "lateness_ms": {"p99": 10.0 * n}},
        },
    }


def _drain_run(driver: str, n: int, rate: float, rebalances: int = 0) -> dict:
    return {"driver": driver, "round": n, "events_per_s": rate, "rebalances": rebalances}


def _report(drivers=KNOWN) -> dict:
    stacks = [
        _stack_run("kafka-python", 1, floor=[4.0, 5.0], sync=[10.0, 12.0], cpu=0.30),
        _stack_run("confluent", 1, floor=[2.0, 3.0], sync=[8.0, 9.0], cpu=0.20),
        _stack_run("kafka-python", 2, floor=[6.0, 7.0], sync=[14.0, 40.0], cpu=0.26),
        _stack_run("confluent", 2, floor=[1.0, 2.5], sync=[7.0, 30.0], cpu=None),
    ]
    drains = [
        _drain_run("kafka-python", 1, 8000.0),
        _drain_run("confluent", 1, 12000.0, rebalances=1),
        _drain_run("kafka-python", 2, 9000.0),
        _drain_run("confluent", 2, 13500.0),
    ]
    keep = set(drivers)
    return drivers_report(
        list(drivers),
        rounds=2,
        live_rate=200.0,
        stack_runs=[r for r in stacks if r["driver"] in keep],
        drain_runs=[r for r in drains if r["driver"] in keep],
    )


def test_each_drivers_figures_pool_its_samples_and_take_the_median_of_its_rounds():
    figures = _report()["figures"]
    python, confluent = figures["kafka-python"], figures["confluent"]
    assert python["floor_ms"]["n"] == 4 and python["floor_ms"]["p50"] == 6.0
    assert (python["sync_create_ms"]["p50"], python["sync_create_ms"]["p99"]) == (14.0, 40.0)
    assert python["sync_create_statuses"] == {"200": 4}
    assert python["values"] == {
        "floor_p50_ms": 6.0,
        "sync_create_p50_ms": 14.0,
        "sync_create_p99_ms": 40.0,
        "worker_cpu_ms_per_event": 0.28,
        "worker_cpu_ms_per_event_librdkafka": None,  # none of its threads is librdkafka's
        "drain_events_per_s": 8500.0,
    }
    assert confluent["values"]["worker_cpu_ms_per_event_librdkafka"] == 0.05
    assert confluent["values"]["worker_cpu_ms_per_event"] == 0.2  # the round without one left out
    assert confluent["per_round"]["worker_cpu_ms_per_event"] == [0.2, None]
    assert confluent["per_round"]["drain_events_per_s"] == [12000.0, 13500.0]
    assert (confluent["rebalances_in_drains"], python["rebalances_in_drains"]) == (1, 0)


def test_the_ratios_are_each_other_driver_over_the_first():
    report = _report()
    assert report["reference"] == "kafka-python"
    assert report["ratios"] == {
        "confluent": {
            "floor_p50_ms": 0.417,  # 2.5 / 6
            "sync_create_p50_ms": 0.643,  # 9 / 14
            "sync_create_p99_ms": 0.75,  # 30 / 40
            "worker_cpu_ms_per_event": 0.714,  # 0.2 / 0.28
            "drain_events_per_s": 1.50,  # 12750 / 8500
        }
    }
    json.dumps(report)  # it goes into bench.json as it is


def test_one_driver_alone_has_figures_and_no_ratio():
    report = _report(drivers=("confluent",))
    assert list(report["figures"]) == ["confluent"]
    assert report["ratios"] == {}


def test_the_table_shows_both_drivers_figures_and_their_ratio():
    table = format_drivers_table(_report())
    assert "2 interleaved rounds (kafka-python, confluent), live load 200/s" in table
    assert "confluent / kafka-python" in table
    row = next(line for line in table.splitlines() if line.startswith("worker drain"))
    assert row.split()[-6:] == ["8500.0", "12750.0", "1.5", "(higher", "is", "better)"]
    row = next(line for line in table.splitlines() if line.startswith("synchronous create p99"))
    assert row.split()[-6:] == ["40.0", "30.0", "0.75", "(lower", "is", "better)"]
    assert "worker CPU ms/event: kafka-python 0.3, 0.26; confluent 0.2, -" in table
    assert "of it in librdkafka's threads: kafka-python -, -; confluent 0.05, -" in table
    assert "drain events/s: kafka-python 8000, 9000; confluent 12000, 13500" in table
    assert "rebalances in the drains: kafka-python 0, confluent 1" in table
    assert "live load sent/s (lateness p99 ms): kafka-python 198.5 (10.0), 197.5 (20.0)" in table


def test_the_plot_draws_one_bar_per_measure_at_its_ratio_with_both_values():
    bars = driver_bars(_report())
    assert [(bar.label, bar.ratio) for bar in bars] == [
        ("Kafka round-trip floor p50 (ms)", 0.417),
        ("synchronous create p50 (ms)", 0.643),
        ("synchronous create p99 (ms)", 0.75),
        ("worker CPU per event, live load (ms)", 0.714),
        ("worker drain (events/s)", 1.5),
    ]
    assert bars[-1].note == "8500.0 → 12750.0"
    assert driver_bars(_report(drivers=("confluent",))) == []


def test_the_png_gets_a_third_panel_for_the_drivers(tmp_path):
    api = {
        "creates_over_baseline": [{"concurrency": 1, "project_rps": 9.0, "baseline_rps": 10.0}],
        "reads_over_baseline": [{"concurrency": 1, "project_rps": 9.0, "baseline_rps": 10.0}],
        "samples_ms": {"sync_create": [1.0, 2.0], "baseline_create": [1.0], "floor": [0.5]},
        "sync_create_targets": {"sum_ms": None},
    }
    with_drivers = bench_plot({"api": api, "drivers": _report()}, tmp_path / "with.png")
    without = bench_plot({"api": api, "drivers": None}, tmp_path / "without.png")
    assert _png_width(with_drivers) > _png_width(without)


def _png_width(path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # the IHDR chunk's width
