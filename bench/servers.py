"""The processes a benchmark runs: the API's server, the relay, the worker, and the
bare-DRF baseline's server; started on 127.0.0.1, waited for, stopped.

Each dies with the benchmark (devstack/processes.py `start`), so a killed one leaves none
behind; each shares the benchmark's session, so a terminal's Ctrl-C reaches them too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack.polling import poll_until
from devstack.ports import url_answers
from devstack.processes import start, stop

ROOT = Path(__file__).resolve().parents[1]
BASELINE_SETTINGS = "bench.baseline_settings"


def api_command() -> list[str]:
    """The API's server as `make run` starts it (the baseline's too, with its settings)."""
    return [sys.executable, "-m", "orderstream.api_server"]


def manage_command(name: str) -> list[str]:
    return [sys.executable, "manage.py", name]


class Process:
    """One child process with its log file."""

    def __init__(self, name: str, command: list[str], *, log_dir: Path, env: dict | None = None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = start(
            command,
            own_session=False,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise SystemExit(
                f"{self.name} exited with {self.popen.returncode}; see {self.log_path}"
            )

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM; SIGKILL after `timeout` seconds."""
        stop(self.popen, timeout, kill_wait=5)
        self._log.close()


def start_stack(
    processes: list[Process],
    log_dir: Path,
    *,
    api_port: int,
    env: dict | None = None,
    tag: str = "",
) -> tuple[Process, Process]:
    """Start the API's server on 127.0.0.1:`api_port`, the relay and the worker, with
    `env` over this process's environment and logs `<name><tag>.log`; each is appended to
    `processes` as it starts, so the caller stops them (`stop_all`) even when a later one
    fails to start. Returns the API and the worker; waits for neither."""
    env = {**(env or {}), "API_PORT": str(api_port)}
    for name, command in (
        ("api", api_command()),
        ("relay", manage_command("run_relay")),
        ("worker", manage_command("run_worker")),
    ):
        processes.append(Process(f"{name}{tag}", command, log_dir=log_dir, env=env))
    return processes[-3], processes[-1]


def stop_all(processes: list[Process]) -> None:
    """Stop `processes`, the last started first."""
    for process in reversed(processes):
        process.stop()


def wait_healthy(url: str, process: Process, timeout: float = 60) -> None:
    """Wait until GET `url`/health answers 200, or fail naming the process's log."""

    def healthy() -> bool:
        process.check_alive()
        return url_answers(f"{url}/health")

    if not poll_until(healthy, timeout, interval=0.2):
        raise SystemExit(
            f"{process.name} not healthy at {url} after {timeout}s; see {process.log_path}"
        )


def start_baseline(port: int, log_dir: Path) -> Process:
    """The baseline on 127.0.0.1:`port`, healthy: the API's server, workers and threads
    (`make run`'s), serving the baseline's settings."""
    process = Process(
        "baseline",
        api_command(),
        log_dir=log_dir,
        env={"DJANGO_SETTINGS_MODULE": BASELINE_SETTINGS, "API_PORT": str(port)},
    )
    wait_healthy(f"http://127.0.0.1:{port}", process)
    return process
