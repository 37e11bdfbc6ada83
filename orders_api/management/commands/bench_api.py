"""`manage.py bench_api`: measure the running API (see orders_api/bench.py)."""

import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand

from orders_api.bench import BenchConfig, run_bench


class Command(BaseCommand):
    help = (
        "Benchmark the running local stack: Kafka round-trip floor, synchronous POST latency, "
        "non-waiting POST and GET throughput. Prints a table and writes JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8080", help="API base URL")
        parser.add_argument("--sync-requests", type=int, default=300)
        parser.add_argument("--floor-samples", type=int, default=300)
        parser.add_argument("--concurrency", default="1,4,16,32", help="comma-separated")
        parser.add_argument("--duration", type=float, default=5.0, help="seconds per level")
        parser.add_argument(
            "--json",
            default=str(Path(tempfile.gettempdir()) / "bench_api.json"),
            help="where to write the results (default: the temp dir)",
        )

    def handle(self, *args, **options):
        config = BenchConfig(
            base_url=options["url"],
            sync_requests=options["sync_requests"],
            floor_samples=options["floor_samples"],
            concurrency=[int(c) for c in options["concurrency"].split(",") if c.strip()],
            duration=options["duration"],
            json_path=options["json"],
        )
        run_bench(config, out=self.stdout)
