"""`make run` for real: `scripts/local_stack.py run` against the test's services.

The test's PostgreSQL, Redis and broker already answer, so the local stack uses them (its
"already answering" path), creates its two databases, migrates them, seeds the admin user,
creates the topics, starts the API server, the relay and the worker, serves a create end to end,
and stops every process it started on SIGTERM, or on Ctrl-C under load (STOPS times). With
the API's port taken it stops at once, saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devstack.ports import free_port, url_answers
from testkit import processes
from testkit.helpers import eventually
from testkit.processes import Launched, alive, child_pids, http_get, script_env, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.processes]


def post_order(base: str, user_id: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}/orders",
        data=json.dumps({"user_id": user_id, "payload": {"id": "run-1", "amount": 3}}).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_make_run_serves_a_create_end_to_end_and_stops_every_process(unique_topics, tmp_path):
    port = free_port()
    with processes.scratch_databases(prefix="orderstream_run") as scratch:
        env = run_env(scratch, unique_topics, tmp_path, port, LOCAL_ADMIN_USER="stack-admin")
        launched = Launched(
            [sys.executable, "scripts/local_stack.py", "run"], env, tmp_path / "run.log"
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: url_answers(f"{base}/health"), 90, "/health", launched)
            wait_until(lambda: "OrderStream is up" in launched.output(), 10, "the banner", launched)
            output = launched.output()
            assert "(already answering)" in output  # the test's own services were used
            assert "created the local admin user 'stack-admin'" in output
            children = child_pids(launched.process.pid)
            assert len(children) == 3, children  # the API server, the relay and the worker

            # The same request (one Idempotency-Key) until the worker's answer is in:
            # the relay published the event and the worker applied it.
            def acknowledged() -> dict | None:
                status, body = post_order(base, "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10", "run-1")
                return body if status == 200 else None

            answer = eventually(acknowledged, timeout=60, interval=0.5, message="a 200")
            assert answer["status"] == "created"
            # The relay's process records the worker's ACK too (its ACK recorder thread).
            order_url = f"{base}/orders/{answer['order_id']}"

            def processed() -> bool:
                status, _, body = http_get(order_url) or (0, None, b"")
                order = json.loads(body)["order"] if status == 200 else {}
                return (order.get("processing"), order.get("version")) == ("done", 1)

            eventually(processed, timeout=30, interval=0.5, message="processing done, version 1")

            # "done" above may come from the worker's Redis result alone; only the ACK
            # recorder writes `outcome` on the API's row.
            def recorded() -> bool:
                rows = processes.query(
                    scratch["default"],
                    "SELECT outcome FROM orders_api_order WHERE order_id = %s",
                    (answer["order_id"],),
                )
                return rows == [("done",)]

            eventually(recorded, timeout=30, interval=0.5, message="the ACK recorded")

            assert launched.stop(timeout=40) == 0, launched.output()
            assert not [pid for pid in children if os.path.exists(f"/proc/{pid}")]
            assert "ACK recorder stopped after 1 messages" in launched.output()
        finally:
            launched.cleanup()


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (the API server's workers are its children)."""
    found, todo = set(), [pid]
    while todo:
        children = child_pids(todo.pop())
        found.update(children)
        todo.extend(children)
    return found


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:`port` can be bound as the API server binds it (SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Load:
    """Threads that POST creates (each waiting for its ACK) until stopped."""

    def __init__(self, base: str, threads: int = 4):
        self.base = base
        self.answered = 0
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self, n: int) -> None:
        user = "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e1" + str(n)
        while not self.done.is_set():
            try:
                post_order(self.base, user, os.urandom(8).hex())
                self.answered += 1
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)  # the API is stopping or gone

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=60)


STOPS = 20


def run_env(scratch, topics, home: Path, port: int, **extra: str) -> dict[str, str]:
    """`make run`'s environment against the test's services, its API on `port`."""
    return script_env(
        scratch,
        topics,
        home,
        DJANGO_SETTINGS_MODULE="orderstream.settings.local",
        API_PORT=str(port),
        BROKER=os.environ.get("BROKER", "tansu"),
        **extra,
    )


def ctrl_c_under_load(env: dict[str, str], port: int, log_path: Path) -> None:
    """Start `make run`, load it with creates, Ctrl-C it; check nothing is left of it."""
    launched = Launched([sys.executable, "scripts/local_stack.py", "run"], env, log_path)
    seen: set[int] = set()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: url_answers(f"{base}/health"), 90, "/health", launched)
        # the API server and its 2 workers, the relay and the worker
        wait_until(lambda: len(descendants(launched.process.pid)) >= 5, 30, "the processes")
        seen = descendants(launched.process.pid)
        load = Load(base)
        try:
            eventually(lambda: load.answered >= 4, timeout=60, message="answers under load")
            seen |= descendants(launched.process.pid)
            os.killpg(launched.process.pid, signal.SIGINT)  # a terminal's Ctrl-C
            code = launched.process.wait(timeout=90)
        finally:
            load.stop()
        assert code == 0, launched.output()
        gone = eventually(lambda: not [p for p in seen if alive(p)], timeout=10, fail=False)
        assert gone, ([p for p in seen if alive(p)], launched.output())
        assert port_is_free(port), launched.output()
    finally:
        launched.cleanup()
        for pid in seen:  # what a failed round left must not disturb the next ones
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_ctrl_c_under_load_leaves_no_process_and_the_port_free(unique_topics, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) to `make run`
    serving creates, STOPS times: every process it started is gone, the API's port free.
    A API worker once outlived its master, holding the port (a second quit signal
    hung it)."""
    port = free_port()
    with processes.scratch_databases(prefix="orderstream_stops") as scratch:
        # Short ACK waits: a stopping API server lets its requests finish (they wait for ACKs
        # that no stopped worker sends) before it exits.
        env = run_env(
            scratch,
            unique_topics,
            tmp_path,
            port,
            API_WRITE_THREADS="4",
            ORDER_ACK_WAIT_TIMEOUT="3",
        )
        for stop in range(STOPS):
            ctrl_c_under_load(env, port, tmp_path / f"run-{stop}.log")


def test_a_stack_whose_api_cannot_bind_stops_with_one_line(unique_topics, tmp_path):
    """Its port taken (here by a listener of the test's), `make run` says so and exits
    non-zero, having started nothing: it used to run on without an API."""
    with (
        socket.socket() as taken,
        processes.scratch_databases(prefix="orderstream_bind") as scratch,
    ):
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = run_env(scratch, unique_topics, tmp_path, port)
        launched = Launched(
            [sys.executable, "scripts/local_stack.py", "run"], env, tmp_path / "run.log"
        )
        try:
            code = launched.process.wait(timeout=90)
            output = launched.output()
            assert code != 0, output
            assert f"Cannot start: the API's address 127.0.0.1:{port} is in use" in output
            assert "OrderStream is up" not in output
        finally:
            launched.cleanup()
