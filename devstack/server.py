"""What the local servers share: stopping their process, and use as a context manager."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from .polling import poll_until
from .ports import free_port
from .processes import stop


class ChildServer:
    """A server process its owner starts (`start()`, in the subclass) and stops.

    `stop()` sends STOP_SIGNAL, waits up to STOP_TIMEOUT seconds for a clean shutdown,
    then kills the process.
    """

    STOP_SIGNAL = signal.SIGTERM
    STOP_TIMEOUT = 15.0
    process: subprocess.Popen | None = None
    log_path = None  # a server that logs to a file names it

    def start(self):
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Whether the server's process was started and not stopped since."""
        return self.process is not None

    def wait_answering(self, answers, timeout: float, what: str, *, interval: float = 0.05):
        """Wait until `answers()` is true: a RuntimeError as soon as the process exits, or
        (the server stopped) after `timeout` seconds."""
        log = f"; see {self.log_path}" if self.log_path else ""

        def answered() -> bool:
            if answers():
                return True
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise RuntimeError(f"{what} exited with code {code}{log}")
            return False

        if not poll_until(answered, timeout, interval=interval):
            self.stop()
            raise RuntimeError(f"{what} did not answer in {timeout}s{log}")

    def stop(self) -> None:
        if self.process:
            stop(self.process, self.STOP_TIMEOUT, stop_signal=self.STOP_SIGNAL)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, no shutdown: a crash (the fault tests); `start()` brings it back."""
        if self.process:
            stop(self.process, 0, stop_signal=signal.SIGKILL)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class DataDirServer(ChildServer):
    """A server on 127.0.0.1:`port` (a free one when None) keeping its data in `data_dir`
    and its log beside it (`<data_dir>.log`); a `throwaway` one keeps nothing afterwards.

    `durable` (by default: not throwaway) keeps the server's own durability settings, those
    of `make run`; off, it trades them for speed (the test suite). The benchmark throws its
    data away but keeps them: it measures the stack `make run` runs.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        throwaway: bool = False,
        durable: bool | None = None,
    ):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.throwaway = throwaway
        self.durable = (not throwaway) if durable is None else durable
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.process: subprocess.Popen | None = None
