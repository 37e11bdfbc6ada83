"""`make bench`: the whole benchmark on a stack of its own, then everything stopped.

`scripts/local_stack.py bench` prepares PostgreSQL and Redis (the ones that answer, else
embedded on free ports), the broker BROKER names (always a throwaway one on a free port),
the bench databases (`*_bench`), topics and migrations; then `bench_session` starts the
API's gunicorn, the relay, the worker and the bare-DRF baseline's gunicorn on free
127.0.0.1 ports, runs the API benchmark (bench/api.py) with the live-load
measurement, stops them, runs the worker benchmark (bench/worker.py) on the same
broker, and writes `bench.json`, `bench.png` and the processes' logs to the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.servers import Process, api_command, manage_command, start_baseline, wait_healthy
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
    parser.add_argument("--events", type=int, default=20000, help="worker bench: batched run")
    parser.add_argument("--naive-events", type=int, default=3000, help="worker bench: naive run")
    parser.add_argument(
        "--worker-rounds",
        type=int,
        default=WORKER_ROUNDS,
        help="worker bench: interleaved W, K, P rounds",
    )
    parser.add_argument("--skip-worker-bench", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy speedscope files beside the JSON"
    )
    return parser.parse_args(argv)


def api_phase(args: argparse.Namespace, out_dir: Path) -> dict:
    """Start the stack's processes and the baseline, run the API bench, stop them."""
    from bench.api import BenchConfig, run_bench
    from bench.api_report import format_table

    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    api_port, baseline_port = free_port(), free_port()
    os.environ["API_PORT"] = str(api_port)
    processes = []
    try:
        api = Process("api", api_command(), log_dir=log_dir)
        processes.append(api)
        processes.append(Process("relay", manage_command("run_relay"), log_dir=log_dir))
        worker = Process("worker", manage_command("run_worker"), log_dir=log_dir)
        processes.append(worker)
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
        for process in reversed(processes):
            process.stop()
    sys.stdout.write(format_table(report))
    return report


def worker_phase(args: argparse.Namespace) -> dict:
    from django.db import connections

    from bench.worker import bench_group_settings, bench_worker_run, format_worker_table

    bench_group_settings()
    report = bench_worker_run(
        events=args.events,
        naive_events=args.naive_events,
        batch_size=int(os.environ.get("WORKER_BATCH_SIZE", "500")),
        database=f"{connections['worker'].settings_dict['NAME']}_drain",
        json_path=None,
        rounds=args.worker_rounds,
    )
    sys.stdout.write("\n" + format_worker_table(report))
    return report


def bench_session(argv: list[str]) -> int:
    from bench.plot import bench_plot

    args = parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"broker": os.environ.get("BROKER", "tansu"), "cpu_count": os.cpu_count()}
    report["api"] = api_phase(args, out_dir)
    report["worker"] = None if args.skip_worker_bench else worker_phase(args)
    json_path = out_dir / "bench.json"
    json_path.write_text(json.dumps(report, indent=2))
    png_path = bench_plot(report, out_dir / "bench.png")
    print(f"\nwritten: {json_path}, {png_path}, logs in {out_dir / 'logs'}")
    return 0
