"""`manage.py bench_worker`: the worker's throughput against its ceiling (see
orders_worker/bench.py); `make bench` runs the same measures in its whole-stack run."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections

from devstack.brokers import embedded_broker
from orders_worker.bench import bench_group_settings, bench_worker_run, format_worker_table
from orderstream.bench.targets import WORKER_ROUNDS


class Command(BaseCommand):
    help = (
        "Load N events onto fresh topics and time the worker draining them, against the "
        "naive per-event design, a Kafka-only loop (K) and the raw PostgreSQL rate (P); "
        "print the ceiling 1/(1/K+1/P) and the ratios, and write JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=20000, help="events for the batched run")
        parser.add_argument(
            "--naive-events", type=int, default=3000, help="events for the naive run"
        )
        parser.add_argument("--batch-size", type=int, default=settings.WORKER_BATCH_SIZE)
        parser.add_argument(
            "--rounds",
            type=int,
            default=WORKER_ROUNDS,
            help="interleaved rounds of the batched run, K and P",
        )
        parser.add_argument(
            "--database",
            default=None,
            help="bench database name (default: the worker database name + _bench)",
        )
        parser.add_argument("--json", default="bench_worker.json", help="where to write JSON")
        parser.add_argument(
            "--use-brokers",
            action="store_true",
            help="use KAFKA_BROKERS instead of starting the embedded broker BROKER names",
        )

    def handle(self, *args, **options):
        broker = scratch = None
        if not options["use_brokers"]:
            kind = os.environ.get("BROKER", "tansu")
            scratch = Path(tempfile.mkdtemp(prefix="orderstream-bench-"))
            broker = embedded_broker(
                kind, port=None, data_dir=scratch / kind, log_path=scratch / f"{kind}.log"
            ).start()
            self.stdout.write(f"broker: {kind} on {broker.bootstrap}")
            settings.KAFKA_BROKERS = [broker.bootstrap]
            bench_group_settings()
        database = options["database"] or f"{connections['worker'].settings_dict['NAME']}_bench"
        try:
            report = bench_worker_run(
                events=options["events"],
                naive_events=options["naive_events"],
                batch_size=options["batch_size"],
                database=database,
                json_path=options["json"],
                rounds=options["rounds"],
            )
        finally:
            if broker:
                broker.stop()
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        self.stdout.write(format_worker_table(report))
        if options["json"]:
            self.stdout.write(f"wrote {options['json']}")
        self.stdout.write(json.dumps(report["ratios"]))
