"""SIGTERM and Ctrl-C for the long-running commands (orderstream/stop_signals.py)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from orderstream.stop_signals import stop_on_signals
from testkit.helpers import eventually


@pytest.fixture
def saved_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_stop_runs_off_the_interrupted_thread(saved_handlers, signum):
    """The stop sets a threading.Event; set inside the handler it could wait for ever on
    the Event's lock, held by the main thread the signal interrupted (in `Event.wait`)."""
    stopped_on = []
    stop_on_signals(lambda: stopped_on.append(threading.current_thread()))
    os.kill(os.getpid(), signum)
    eventually(lambda: stopped_on, timeout=5, message="the stop to run")
    assert stopped_on[0] is not threading.main_thread()


def test_a_second_ctrl_c_interrupts_at_once(saved_handlers):
    stop_on_signals(lambda: None)
    os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        eventually(lambda: False, timeout=5, message="the interrupt")
