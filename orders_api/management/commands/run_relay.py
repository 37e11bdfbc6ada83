"""`manage.py run_relay`: run the outbox relay, and beside it the ACK recorder, until a
signal."""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand

from orders_api.ack_recorder.recorder import ack_recorder_beside
from orders_api.outbox_metrics import OutboxCollector
from orders_api.relay.loop import OutboxRelay
from orders_api.relay.sessions import relay_sessions_limited
from orderstream.metrics import metrics_server_start, metrics_server_stop
from orderstream.stop_signals import stop_on_signals


class Command(BaseCommand):
    help = (
        "Publish committed outbox rows to Kafka (woken by PostgreSQL notifications, and "
        "every OUTBOX_RELAY_INTERVAL seconds), and purge old rows; in a second thread, "
        "record the worker's ACKs on the orders (ACK_RECORDER_GROUP). SIGTERM/Ctrl-C stop "
        "both cleanly. Several relays may run at once (on one machine: each its "
        "--metrics-port)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--log-level",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="log level of the relay (default: LOG_LEVEL)",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            help="Prometheus metrics port, 0 = off (default: RELAY_METRICS_PORT)",
        )

    def handle(self, *args, **options):
        if options["log_level"]:
            logging.getLogger().setLevel(options["log_level"])
        # Before any connection: the locks of a relay lost mid-pass time out.
        with relay_sessions_limited():
            self._run(options)

    def _run(self, options) -> None:
        metrics = metrics_server_start(
            setting="RELAY_METRICS_PORT",
            port=options["metrics_port"],
            collectors=[OutboxCollector()],
        )
        relay = OutboxRelay()
        try:
            with ack_recorder_beside(relay.stop) as recorder:
                stop_on_signals(lambda: (relay.stop(), recorder.stop()))
                # Their last log lines: "outbox relay stopped after N event(s)", "ACK
                # recorder stopped after N messages".
                relay.run()
        finally:
            metrics_server_stop(metrics)
