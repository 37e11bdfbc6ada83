"""`manage.py run_worker`: parse the options, build the worker, run it until a signal."""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand

from orders_worker.metrics import WorkerCollector
from orders_worker.worker import OrderWorker, WorkerConfig
from orderstream.metrics import metrics_server_start, metrics_server_stop
from orderstream.stop_signals import stop_on_signals


class Command(BaseCommand):
    help = (
        "Consume order events from ORDERS_EVENTS_TOPIC, apply them to the worker database, "
        "write results to Redis and ACKs to ORDERS_ACK_TOPIC. SIGTERM/Ctrl-C stop cleanly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--group", help="consumer group (default: WORKER_GROUP)")
        parser.add_argument(
            "--batch-size", type=int, help="events per poll (default: WORKER_BATCH_SIZE)"
        )
        parser.add_argument(
            "--max-messages", type=int, help="exit after handling this many messages"
        )
        parser.add_argument(
            "--log-level",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="log level of the worker (default: LOG_LEVEL)",
        )
        parser.add_argument(
            "--stats-interval", type=float, help="seconds between throughput log lines"
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            help="Prometheus metrics port, 0 = off (default: WORKER_METRICS_PORT); each "
            "worker on one machine needs its own",
        )

    def handle(self, *args, **options):
        if options["log_level"]:
            logging.getLogger().setLevel(options["log_level"])
        worker = OrderWorker(
            WorkerConfig.from_settings(
                group=options["group"],
                batch_size=options["batch_size"],
                max_messages=options["max_messages"],
                stats_interval=options["stats_interval"],
            )
        )

        metrics = metrics_server_start(
            setting="WORKER_METRICS_PORT",
            port=options["metrics_port"],
            collectors=[WorkerCollector(worker)],
        )
        stop_on_signals(worker.stop)
        try:
            worker.run()  # its last log line: "worker stopped after N messages"
        finally:
            metrics_server_stop(metrics)
