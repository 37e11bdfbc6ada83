"""SIGTERM and Ctrl-C for the long-running commands (`run_worker`, `run_relay`)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and the first Ctrl-C call `stop` (the loop ends cleanly); a second Ctrl-C
    interrupts at once."""

    def request_stop(signum, frame):
        # `stop` sets a threading.Event. Set here, on the thread the signal interrupted, it
        # would wait for ever on the Event's lock if that thread held it (inside
        # `Event.wait`): a thread of its own takes the lock once it is free.
        threading.Thread(target=stop, name="stop-request", daemon=True).start()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
