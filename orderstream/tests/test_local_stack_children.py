"""The local stack's children (scripts/local_stack.py): the API's address is checked before
any starts; they are stopped with SIGTERM once each, then SIGKILL to the process group of
one still running (what it started goes too)."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

import pytest

from devstack.ports import free_port
from testkit.helpers import eventually, script_module
from testkit.processes import alive, child_pids

ROOT = Path(__file__).resolve().parents[2]

# A process that ignores SIGTERM and starts one more that does too.
STUBBORN = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "time.sleep(120)\n"
)


def test_a_child_still_running_after_the_timeout_is_killed_with_its_group(monkeypatch):
    local_stack = script_module(ROOT / "scripts/local_stack.py")
    monkeypatch.setattr(local_stack, "CHILD_STOP_TIMEOUT", 1.0)
    stubborn = local_stack.start_child([sys.executable, "-c", STUBBORN])
    polite = local_stack.start_child([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        grandchild = eventually(lambda: child_pids(stubborn.pid), timeout=30)[0]
        local_stack.stop_children([stubborn, polite])
        assert stubborn.returncode == -signal.SIGKILL
        assert polite.returncode == -signal.SIGTERM
        assert eventually(lambda: not alive(grandchild), timeout=10, fail=False)
    finally:
        for child in (stubborn, polite):
            if child.poll() is None:
                child.kill()
                child.wait()


def test_the_apis_address_is_checked_before_anything_starts(monkeypatch):
    local_stack = script_module(ROOT / "scripts/local_stack.py")
    monkeypatch.setenv("API_BIND_HOST", "127.0.0.1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("API_PORT", str(taken.getsockname()[1]))
        with pytest.raises(local_stack.StackError, match="is in use: another `make run`"):
            local_stack.api_address_free()
    monkeypatch.setenv("API_PORT", str(free_port()))
    local_stack.api_address_free()
    monkeypatch.setenv("API_BIND_HOST", "192.0.2.1")  # TEST-NET-1: no address of this host
    with pytest.raises(local_stack.StackError, match="cannot be bound"):
        local_stack.api_address_free()
