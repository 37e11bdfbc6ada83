"""`python -m bench api|worker [OPTIONS]`: one part of the benchmark against the local
values (`make bench-api`, `make bench-worker` run them through scripts/local_stack.py).

- `api`: the API benchmark against a running stack (see bench/api.py); it starts and
  stops the bare-DRF baseline's server itself.
- `worker`: the worker's throughput against its ceiling (see bench/worker.py), on a
  broker of its own unless `--use-brokers`.
- `capacity`: the highest rate of non-waiting creates the running stack sustains, open
  loop, against the baseline's (see bench/capacity.py); it starts and stops the
  baseline's server itself.
- `scale-out`: the whole pipeline's sustained creates per worker count, with several API
  instances and relays it starts itself (see bench/scale_out.py); `make bench-scale-out`
  runs it on a stack of its own, as `make bench`.

`make bench` runs both on a stack of its own (bench/session.py). Django is set up after
the options are read, so `--help` needs no database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.capacity import add_capacity_options
from bench.targets import WORKER_ROUNDS


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parts = parser.add_subparsers(
        dest="part", required=True, metavar="{api,worker,capacity,scale-out}"
    )
    api = parts.add_parser(
        "api",
        help="the API against the bare-DRF baseline",
        description=(
            "Benchmark the running local stack against the bare-DRF baseline: Kafka "
            "round-trip floor, synchronous and baseline creates, wrk throughput of creates "
            "and reads at each concurrency; prints a table and writes JSON."
        ),
    )
    api.add_argument("--url", default="http://127.0.0.1:8080", help="API base URL")
    api.add_argument("--sync-requests", type=int, default=300)
    api.add_argument("--floor-samples", type=int, default=300)
    api.add_argument("--concurrency", default="1,4,16,32", help="comma-separated")
    api.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    api.add_argument("--rounds", type=int, default=2, help="baseline/project pairs")
    api.add_argument(
        "--worker-pid", type=int, default=None, help="the worker's pid: adds the live load"
    )
    api.add_argument(
        "--api-pid", type=int, default=None, help="the API server's main pid, for --profile"
    )
    api.add_argument("--profile", action="store_true", help="py-spy during a level")
    api.add_argument(
        "--out",
        default=str(Path(tempfile.gettempdir()) / "bench_api"),
        help="folder of the JSON, logs and profiles (default: the temp dir)",
    )
    worker = parts.add_parser(
        "worker",
        help="the worker against its ceiling",
        description=(
            "Load N events onto fresh topics and time the worker draining them, against the "
            "naive per-event design, a Kafka-only loop (K) and the raw PostgreSQL rate (P); "
            "print the ceiling 1/(1/K+1/P) and the ratios, and write JSON."
        ),
    )
    worker.add_argument("--events", type=int, default=20000, help="events for the batched run")
    worker.add_argument("--naive-events", type=int, default=3000, help="events for the naive run")
    worker.add_argument(
        "--batch-size", type=int, default=None, help="default: the setting WORKER_BATCH_SIZE"
    )
    worker.add_argument(
        "--rounds",
        type=int,
        default=WORKER_ROUNDS,
        help="interleaved rounds of the batched run, K and P",
    )
    worker.add_argument(
        "--database",
        default=None,
        help="bench database name (default: the worker database name + _bench)",
    )
    worker.add_argument("--json", default="bench_worker.json", help="where to write JSON")
    worker.add_argument(
        "--use-brokers",
        action="store_true",
        help="use KAFKA_BROKERS instead of starting the embedded broker BROKER names",
    )
    capacity = parts.add_parser(
        "capacity",
        help="sustained creates against the bare-DRF baseline's",
        description=(
            "Find the highest open-loop rate of non-waiting creates the running stack "
            "sustains (p99 and the outbox's oldest row within their limits, bench/capacity.py) "
            "and the baseline's; print both and the ratio, and write JSON."
        ),
    )
    capacity.add_argument("--url", default="http://127.0.0.1:8080", help="API base URL")
    add_capacity_options(capacity)
    capacity.add_argument(
        "--out",
        default=str(Path(tempfile.gettempdir()) / "bench_capacity"),
        help="folder of the JSON and the baseline's log (default: the temp dir)",
    )
    scale_out = parts.add_parser(
        "scale-out",
        help="the pipeline's sustained creates per worker count",
        description=(
            "Start API instances, relays and workers on free ports (workers added count by "
            "count), time each new worker's join under load, and find the highest open-loop "
            "rate of creates the whole pipeline sustains per count (bench/scale_out.py); "
            "print a table and write JSON."
        ),
    )
    scale_out.add_argument("--apis", type=int, default=2, help="API instances (servers)")
    scale_out.add_argument("--relays", type=int, default=2)
    scale_out.add_argument("--workers", default="1,3,6", help="worker counts, comma-separated")
    scale_out.add_argument(
        "--join-rate", type=float, default=50.0, help="creates/s while workers join (0: none)"
    )
    add_capacity_options(scale_out)
    scale_out.add_argument(
        "--out",
        default=str(Path(tempfile.gettempdir()) / "bench_scale_out"),
        help="folder of the JSON and the processes' logs (default: the temp dir)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def baseline_beside(options: argparse.Namespace):
    """`options.out` made, and the bare-DRF baseline on a free port while inside: yields
    the folder and the baseline's URL (run_api and run_capacity compare against it)."""
    from bench.servers import start_baseline
    from devstack.ports import free_port

    out_dir = Path(options.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    baseline = start_baseline(port, out_dir)
    try:
        yield out_dir, f"http://127.0.0.1:{port}"
    finally:
        baseline.stop()


def run_capacity(options: argparse.Namespace) -> None:
    from bench.capacity import CapacityConfig, format_capacity
    from bench.capacity import run_capacity as capacity_run

    with baseline_beside(options) as (out_dir, baseline_url):
        config = CapacityConfig.from_options(
            options, base_url=options.url, baseline_url=baseline_url
        )
        report = capacity_run(config, sys.stdout)
    json_path = out_dir / "bench_capacity.json"
    json_path.write_text(json.dumps(report, indent=2))
    sys.stdout.write(format_capacity(report))
    print(f"\nwritten to {json_path}")


def run_scale_out(options: argparse.Namespace) -> None:
    from django.conf import settings

    from bench.capacity import CapacityConfig
    from bench.scale_out import format_scale_out
    from bench.scale_out import run_scale_out as scale_out_run

    out_dir = Path(options.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = CapacityConfig.from_options(options, base_url="", baseline_url="")
    report = scale_out_run(
        config,
        log_dir=out_dir,
        apis=options.apis,
        relays=options.relays,
        worker_counts=[int(count) for count in options.workers.split(",")],
        join_rate=options.join_rate,
        partitions=settings.ORDERS_EVENTS_PARTITIONS,
        out=sys.stdout,
    )
    report["brokers"] = list(settings.KAFKA_BROKERS)
    json_path = out_dir / "bench_scale_out.json"
    json_path.write_text(json.dumps(report, indent=2))
    sys.stdout.write(format_scale_out(report))
    print(f"\nwritten to {json_path}")


def run_api(options: argparse.Namespace) -> None:
    from bench.api import BenchConfig, run_bench
    from bench.api_report import format_table

    with baseline_beside(options) as (out_dir, baseline_url):
        config = BenchConfig.from_options(
            options,
            base_url=options.url,
            baseline_url=baseline_url,
            out_dir=str(out_dir),
            api_pid=options.api_pid,
            worker_pid=options.worker_pid,
        )
        report = run_bench(config, out=sys.stdout)
    json_path = out_dir / "bench_api.json"
    json_path.write_text(json.dumps(report, indent=2))
    sys.stdout.write(format_table(report))
    print(f"\nwritten to {json_path}")


def run_worker(options: argparse.Namespace) -> None:
    from django.conf import settings
    from django.db import connections

    from bench.worker import bench_group_settings, bench_worker_run, format_worker_table
    from devstack.brokers import embedded_broker

    broker = scratch = None
    if not options.use_brokers:
        kind = os.environ.get("BROKER", "tansu")
        scratch = Path(tempfile.mkdtemp(prefix="orderstream-bench-"))
        broker = embedded_broker(
            kind, port=None, data_dir=scratch / kind, log_path=scratch / f"{kind}.log"
        ).start()
        print(f"broker: {kind} on {broker.bootstrap}", flush=True)
        settings.KAFKA_BROKERS = [broker.bootstrap]
        bench_group_settings()
    database = options.database or f"{connections['worker'].settings_dict['NAME']}_bench"
    try:
        report = bench_worker_run(
            events=options.events,
            naive_events=options.naive_events,
            batch_size=options.batch_size or settings.WORKER_BATCH_SIZE,
            database=database,
            json_path=options.json,
            rounds=options.rounds,
        )
    finally:
        if broker:
            broker.stop()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    sys.stdout.write(format_worker_table(report))
    if options.json:
        print(f"wrote {options.json}")
    print(json.dumps(report["ratios"]))


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderstream.settings.local")
    import django

    django.setup()
    sys.stdout.reconfigure(line_buffering=True)  # progress lines as they come
    parts = {
        "api": run_api,
        "worker": run_worker,
        "capacity": run_capacity,
        "scale-out": run_scale_out,
    }
    parts[options.part](options)
    return 0
