"""The API's gunicorn worker: a second quit signal during the first one's shutdown.

A stopped `make run` left a worker running with its master gone, holding the API's port:
py-spy showed its main thread in ThreadWorker.handle_quit -> ThreadPoolExecutor.shutdown,
entered twice. Python runs a signal's handler in the main thread, between two bytecodes
of whatever runs there: a second quit signal (the terminal's Ctrl-C to the process
group, and the master's SIGQUIT) arriving while the first handler's shutdown holds the
pool's lock runs a second shutdown that waits for that lock forever.
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

from orderstream.gunicorn_workers import QuitOnceThreadWorker

pytestmark = pytest.mark.unit


class SignalWhileHeld:
    """A lock that, once acquired, delivers a signal (calls `deliver` once) while held:
    a signal's handler runs in the thread it interrupted, here the one holding the lock."""

    def __init__(self, lock, deliver):
        self.lock = lock
        self.deliver = deliver

    def __enter__(self):
        self.lock.acquire()
        deliver, self.deliver = self.deliver, None
        if deliver is not None:
            deliver()
        return self

    def __exit__(self, *exc):
        self.lock.release()


def quit_twice(worker_class, timeout: float) -> tuple[bool, list]:
    """A worker's quit (SIGINT) with a second one (SIGQUIT) arriving inside its pool's
    shutdown: whether it ended within `timeout` seconds, and what ran: worker_int (the
    quit's hook), then the exit."""
    ran = []
    cfg = Config()
    cfg.set("threads", 2)
    cfg.set("worker_int", lambda worker: ran.append("worker_int"))
    worker = worker_class(1, os.getpid(), [], None, 30, cfg, logging.getLogger("test"))
    pool = worker.tpool = ThreadPoolExecutor(max_workers=2)
    second = lambda: worker.handle_quit(signal.SIGQUIT, None)  # noqa: E731
    pool._shutdown_lock = SignalWhileHeld(pool._shutdown_lock, second)

    def first():
        try:
            worker.handle_quit(signal.SIGINT, None)
        except SystemExit as exc:
            ran.append(f"exit {exc.code}")

    quitting = threading.Thread(target=first, daemon=True)
    quitting.start()
    quitting.join(timeout=timeout)
    return not quitting.is_alive(), ran


def test_a_second_quit_signal_during_the_first_is_a_no_op():
    ended, ran = quit_twice(QuitOnceThreadWorker, timeout=30)
    assert ended, "the worker's quit hung"
    assert ran == ["worker_int", "exit 0"]  # the first quit ran to its end, once


def test_gthreads_own_worker_hangs_on_it():
    """What the class above is for: gthread's worker, the same two signals, hung."""
    ended, _ = quit_twice(ThreadWorker, timeout=2)
    assert not ended  # for good: it waits for a lock its own thread holds


def test_gunicorn_conf_names_it():
    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    assert conf["worker_class"] == "orderstream.gunicorn_workers.QuitOnceThreadWorker"
