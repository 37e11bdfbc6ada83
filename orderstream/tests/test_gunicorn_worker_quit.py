"""The API's gunicorn worker: quit signals that land where gthread's worker hung.

A stopped `make run` left a worker running with its master gone, holding the API's port:
py-spy showed its main thread in ThreadWorker.handle_quit -> ThreadPoolExecutor.shutdown,
twice, above ThreadPoolExecutor.submit. Python runs a signal's handler in the thread and
at the place it interrupted; here both places hold the pool's (not reentrant) lock, which
gthread's quit takes again. Each test makes a quit signal land there.
"""

from __future__ import annotations

import logging
import os
import runpy
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import ThreadWorker

from orderstream.gunicorn_worker import ApiThreadWorker

pytestmark = pytest.mark.unit


def make_worker(worker_class, ran: list[str]):
    """A worker as its master makes it, with its thread pool; worker_int (the quit's hook)
    is recorded in `ran`."""
    cfg = Config()
    cfg.set("threads", 2)
    cfg.set("worker_int", lambda worker: ran.append("worker_int"))
    worker = worker_class(1, os.getpid(), [], None, 30, cfg, logging.getLogger("test"))
    worker.tpool = ThreadPoolExecutor(max_workers=2)
    return worker


def run_main(main, ran: list[str], timeout: float) -> bool:
    """`main` (the worker's main thread, a quit landing in it) in a thread: whether it
    ended within `timeout` seconds; its exit is recorded in `ran`."""

    def target():
        try:
            main()
        except SystemExit as exc:
            ran.append(f"exit {exc.code}")

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=timeout)
    return not thread.is_alive()


def quit_during_submit(worker_class, timeout: float) -> tuple[bool, list[str]]:
    """SIGINT landing while the main thread submits a request: submit holds the pool's
    lock while it starts a thread (where the signal landed in the py-spy dump)."""
    ran: list[str] = []
    worker = make_worker(worker_class, ran)

    def main():
        with worker.tpool._shutdown_lock:  # as ThreadPoolExecutor.submit holds it
            worker.handle_quit(signal.SIGINT, None)

    return run_main(main, ran, timeout), ran


def test_a_quit_signal_during_a_submit_exits_the_worker():
    ended, ran = quit_during_submit(ApiThreadWorker, timeout=30)
    assert ended, "the worker's quit hung"
    assert ran == ["worker_int", "exit 0"]


def test_gthreads_own_worker_hangs_there():
    """What the class is for: gthread's worker, the same signal, hung for good (it waits
    for a lock its own thread holds)."""
    ended, _ = quit_during_submit(ThreadWorker, timeout=2)
    assert not ended


def test_a_second_quit_signal_during_the_first_is_ignored():
    """The group's SIGINT, then the master's SIGQUIT landing inside the first quit."""
    ran: list[str] = []
    worker = make_worker(ApiThreadWorker, ran)
    worker.cfg.set("worker_int", lambda w: (ran.append("worker_int"), second()))
    second = lambda: worker.handle_quit(signal.SIGQUIT, None)  # noqa: E731
    ended = run_main(lambda: worker.handle_quit(signal.SIGINT, None), ran, timeout=30)
    assert ended, "the worker's quit hung"
    assert ran == ["worker_int", "exit 0"]  # the first quit ran to its end, the second not


def test_gunicorn_conf_names_it():
    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    assert conf["worker_class"] == "orderstream.gunicorn_worker.ApiThreadWorker"
