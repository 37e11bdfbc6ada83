"""`manage.py run_relay`: run the outbox relay until a signal."""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand

from orders_api.relay_loop import OutboxRelay
from orderstream.stop_signals import stop_on_signals


class Command(BaseCommand):
    help = (
        "Publish committed outbox rows to Kafka (woken by PostgreSQL notifications, and "
        "every OUTBOX_RELAY_INTERVAL seconds), and purge old rows. SIGTERM/Ctrl-C stop "
        "cleanly. Several relays may run at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--log-level",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="log level of the relay (default: LOG_LEVEL)",
        )

    def handle(self, *args, **options):
        if options["log_level"]:
            logging.getLogger().setLevel(options["log_level"])
        relay = OutboxRelay()
        stop_on_signals(relay.stop)
        relay.run()  # its last log line: "outbox relay stopped after N event(s)"
