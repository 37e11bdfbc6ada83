"""`make bench`: the whole benchmark on a stack of its own, then everything stopped.

`scripts/local_stack.py bench` prepares PostgreSQL and Redis (the ones that answer, else
embedded on free ports), the broker BROKER names (always a throwaway one on a free port),
the bench databases (`*_bench`), topics and migrations; then `bench_session` starts the
API's server, the relay, the worker and the bare-DRF baseline's server on free
127.0.0.1 ports, runs the API benchmark (bench/api.py) with the live-load
measurement, stops them, runs the worker benchmark (bench/worker.py) on the same
broker, and writes `bench.json`, `bench.png` and the processes' logs to the output folder.
Those phases run with the driver KAFKA_CLIENT names. Then the Kafka drivers of `--drivers`
are compared (bench/drivers.py): the stack started again per driver and round for the
synchronous create and the live load (after the API phase), and the worker's drain per
driver and round (after the worker phase, in its database).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.driver_rounds import driver_names, interleaved
from bench.servers import start_baseline, start_stack, stop_all, wait_healthy
from bench.targets import WORKER_ROUNDS
from devstack.ports import free_port


def parse_args(argv: list[str]) -> argparse.Namespace:
    broker = os.environ.get("BROKER", "tansu")
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--out", default=f"bench-results/{broker}", help="output folder")
    parser.add_argument("--concurrency", default="1,4,16,32", help="wrk levels, comma-separated")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/project pairs a level")
    parser.add_argument("--sync-requests", type=int, default=300)
    parser.add_argument("--floor-samples", type=int, default=300)
    parser.add_argument("--live-rate", type=float, default=200.0, help="creates/s offered")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument(
        "--events", type=int, default=20000, help="worker bench: batched run; each driver's drain"
    )
    parser.add_argument("--naive-events", type=int, default=3000, help="worker bench: naive run")
    parser.add_argument(
        "--worker-rounds",
        type=int,
        default=WORKER_ROUNDS,
        help="worker bench: interleaved W, K, P rounds",
    )
    parser.add_argument("--skip-worker-bench", action="store_true")
    parser.add_argument(
        "--drivers",
        default="kafka-python,confluent",
        help="Kafka drivers compared, interleaved, the first the ratios' reference "
        "(comma-separated; '' for none)",
    )
    parser.add_argument(
        "--driver-rounds",
        type=int,
        default=WORKER_ROUNDS,
        help="rounds of the drivers' comparison; a round shares --sync-requests and "
        "--floor-samples out, and runs --live-seconds and --events in full",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy speedscope files beside the JSON (and of each driver's worker)",
    )
    args = parser.parse_args(argv)
    from django.conf import settings

    try:
        args.drivers = driver_names(args.drivers, settings.KAFKA_CLIENTS)
    except ValueError as exc:
        parser.error(f"--drivers: {exc}")
    return args


def api_phase(args: argparse.Namespace, out_dir: Path) -> dict:
    """Start the stack's processes and the baseline, run the API bench, stop them."""
    from bench.api import BenchConfig, run_bench
    from bench.api_report import format_table

    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    api_port, baseline_port = free_port(), free_port()
    processes: list = []
    try:
        api, worker = start_stack(processes, log_dir, api_port=api_port)
        processes.append(start_baseline(baseline_port, log_dir))
        wait_healthy(f"http://127.0.0.1:{api_port}", api)
        for process in processes:  # one that exited at start would stall every phase
            process.check_alive()
        config = BenchConfig.from_options(
            args,
            base_url=f"http://127.0.0.1:{api_port}",
            baseline_url=f"http://127.0.0.1:{baseline_port}",
            live_rate=args.live_rate,
            live_seconds=args.live_seconds,
            out_dir=str(out_dir),
            api_pid=api.pid,
            worker_pid=worker.pid,
        )
        report = run_bench(config, out=sys.stdout)
        for process in processes:
            process.check_alive()
    finally:
        stop_all(processes)
    sys.stdout.write(format_table(report))
    return report


def drain_database() -> str:
    """The drains' database: the worker database's name + `_drain`, asked before a phase
    points the `worker` alias at it."""
    from django.db import connections

    return f"{connections['worker'].settings_dict['NAME']}_drain"


def worker_phase(args: argparse.Namespace, database: str) -> dict:
    from django.conf import settings

    from bench.worker import bench_group_settings, bench_worker_run, format_worker_table

    bench_group_settings()
    report = bench_worker_run(
        events=args.events,
        naive_events=args.naive_events,
        batch_size=settings.WORKER_BATCH_SIZE,
        database=database,
        json_path=None,
        rounds=args.worker_rounds,
    )
    sys.stdout.write("\n" + format_worker_table(report))
    return report


def drivers_stack_phase(args: argparse.Namespace, out_dir: Path) -> list[dict]:
    """The drivers' stacks, round by round (bench/drivers.py `stack_rounds`)."""
    from bench import drivers

    if not args.drivers:
        return []
    rounds = args.driver_rounds
    shares = drivers.StackShares(
        floor_samples=max(1, args.floor_samples // rounds),
        sync_requests=max(1, args.sync_requests // rounds),
        live_rate=args.live_rate,
        live_seconds=args.live_seconds,
        profile_dir=out_dir if args.profile else None,
    )
    order = interleaved(args.drivers, rounds)
    return drivers.stack_rounds(order, shares, log_dir=out_dir / "logs", out=sys.stdout)


def drivers_drain_phase(
    args: argparse.Namespace, stack_runs: list[dict], database: str
) -> dict | None:
    """The drivers' drains, round by round, then the comparison's report and table."""
    from django.conf import settings

    from bench import drivers
    from bench.drivers_report import drivers_report, format_drivers_table
    from bench.worker import bench_group_settings

    if not args.drivers:
        return None
    bench_group_settings()
    drain_runs = drivers.drain_rounds(
        interleaved(args.drivers, args.driver_rounds),
        events=args.events,
        batch_size=settings.WORKER_BATCH_SIZE,
        database=database,
        out=sys.stdout,
    )
    report = drivers_report(
        args.drivers,
        rounds=args.driver_rounds,
        live_rate=args.live_rate,
        stack_runs=stack_runs,
        drain_runs=drain_runs,
    )
    sys.stdout.write(format_drivers_table(report))
    return report


def bench_session(argv: list[str]) -> int:
    from django.conf import settings

    from bench import plot

    args = parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "broker": os.environ.get("BROKER", "tansu"),
        "cpu_count": os.cpu_count(),
        "kafka_client": settings.KAFKA_CLIENT,  # of the API and worker phases
    }
    database = drain_database()
    report["api"] = api_phase(args, out_dir)
    stack_runs = drivers_stack_phase(args, out_dir)
    report["worker"] = None if args.skip_worker_bench else worker_phase(args, database)
    report["drivers"] = drivers_drain_phase(args, stack_runs, database)
    json_path = out_dir / "bench.json"
    json_path.write_text(json.dumps(report, indent=2))
    png_path = plot.bench_plot(report, out_dir / "bench.png")
    print(f"\nwritten: {json_path}, {png_path}, logs in {out_dir / 'logs'}")
    return 0
