"""SIGTERM and Ctrl-C for the long-running commands (`run_worker`, `run_relay`)."""

from __future__ import annotations

import signal
from collections.abc import Callable


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and the first Ctrl-C call `stop` (the loop ends cleanly); a second Ctrl-C
    interrupts at once."""

    def request_stop(signum, frame):
        stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
