"""What the local servers share: stopping their process, and use as a context manager."""

from __future__ import annotations

import signal
import subprocess


class ChildServer:
    """A server process its owner starts (`start()`, in the subclass) and stops.

    `stop()` sends STOP_SIGNAL, waits up to STOP_TIMEOUT seconds for a clean shutdown,
    then kills the process.
    """

    STOP_SIGNAL = signal.SIGTERM
    STOP_TIMEOUT = 15.0
    process: subprocess.Popen | None = None

    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(self.STOP_SIGNAL)
            try:
                self.process.wait(timeout=self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
