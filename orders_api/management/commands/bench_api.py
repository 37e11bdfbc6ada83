"""`manage.py bench_api`: the API benchmark against a running stack (see orders_api/bench.py);
it starts and stops the bare-DRF baseline's gunicorn itself. `make bench` runs it on a
stack of its own, with the worker's measures."""

import json
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand

from devstack.ports import free_port
from orders_api.bench import BenchConfig, run_bench
from orders_api.bench_report import format_table
from orderstream.bench.servers import start_baseline


class Command(BaseCommand):
    help = (
        "Benchmark the running local stack against the bare-DRF baseline: Kafka round-trip "
        "floor, synchronous and baseline creates, wrk throughput of creates and reads at each "
        "concurrency; prints a table and writes JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8080", help="API base URL")
        parser.add_argument("--sync-requests", type=int, default=300)
        parser.add_argument("--floor-samples", type=int, default=300)
        parser.add_argument("--concurrency", default="1,4,16,32", help="comma-separated")
        parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
        parser.add_argument("--rounds", type=int, default=2, help="baseline/project pairs")
        parser.add_argument(
            "--worker-pid", type=int, default=None, help="the worker's pid: adds the live load"
        )
        parser.add_argument(
            "--api-pid", type=int, default=None, help="gunicorn master's pid, for --profile"
        )
        parser.add_argument("--profile", action="store_true", help="py-spy during a level")
        parser.add_argument(
            "--out",
            default=str(Path(tempfile.gettempdir()) / "bench_api"),
            help="folder of the JSON, logs and profiles (default: the temp dir)",
        )

    def handle(self, *args, **options):
        out_dir = Path(options["out"])
        out_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        baseline = start_baseline(port, out_dir)
        try:
            config = BenchConfig(
                base_url=options["url"],
                baseline_url=f"http://127.0.0.1:{port}",
                sync_requests=options["sync_requests"],
                floor_samples=options["floor_samples"],
                concurrency=[int(c) for c in options["concurrency"].split(",") if c.strip()],
                duration=options["duration"],
                rounds=options["rounds"],
                out_dir=str(out_dir),
                profile=options["profile"],
                api_pid=options["api_pid"],
                worker_pid=options["worker_pid"],
            )
            report = run_bench(config, out=self.stdout)
        finally:
            baseline.stop()
        json_path = out_dir / "bench_api.json"
        json_path.write_text(json.dumps(report, indent=2))
        self.stdout.write(format_table(report))
        self.stdout.write(f"\nwritten to {json_path}\n")
