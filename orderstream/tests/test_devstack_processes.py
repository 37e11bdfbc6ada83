"""The one module of child processes (devstack/processes.py), used by the local stack, its
servers, the benchmark and the tests: a session of its own, SIGTERM then SIGKILL (to the
process or its group), its children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.processes import child_pids, start, stop, stop_all
from testkit.helpers import eventually
from testkit.processes import alive

SLEEP = ["sleep", "120"]
# Says so once it dies of SIGINT whatever the test run inherited, then waits: a shell's
# background job (`make test &` without job control) starts with SIGINT ignored, and so
# would a `sleep`.
DIES_OF_SIGINT = [
    sys.executable,
    "-c",
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n",
]
# Ignores SIGTERM and starts one more process (a `sleep`), then waits.
STUBBORN_PARENT = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "subprocess.Popen(['sleep', '120'])\n"
    "time.sleep(120)\n"
)
# Starts one more process (a `sleep`) and waits; SIGTERM ends it alone.
PARENT = "import subprocess, time\nsubprocess.Popen(['sleep', '120'])\ntime.sleep(120)\n"


@pytest.fixture
def started():
    """Processes a test starts; SIGKILLed with their groups afterwards if still there."""
    processes = []
    yield processes
    for process in processes:
        if process.poll() is None:
            leads_group = os.getpgid(process.pid) == process.pid
            stop(process, 0, group=leads_group, kill_wait=10)


def test_a_child_is_started_in_a_session_of_its_own_unless_told(started):
    own = start(SLEEP)
    shared = start(SLEEP, own_session=False, with_parent=False)
    started += [own, shared]
    assert os.getsid(own.pid) == own.pid
    assert os.getsid(shared.pid) == os.getsid(0)


def test_stop_sends_the_signal_asked_for_and_waits(started):
    process = start(DIES_OF_SIGINT, stdout=subprocess.PIPE, text=True)
    started.append(process)
    assert process.stdout.readline() == "ready\n"
    stop(process, 10, stop_signal=signal.SIGINT)
    assert process.returncode == -signal.SIGINT
    stop(process, 10)  # stopped already: nothing to do
    assert process.returncode == -signal.SIGINT


def test_a_process_ignoring_the_signal_is_killed_after_the_timeout(started):
    process = start([sys.executable, "-c", STUBBORN_PARENT])
    started.append(process)
    grandchild = eventually(lambda: child_pids(process.pid), timeout=30)[0]
    stop(process, 0.5, kill_wait=10)
    assert process.returncode == -signal.SIGKILL
    assert alive(grandchild)  # the SIGKILL went to the process alone
    os.kill(grandchild, signal.SIGKILL)


def test_a_group_stop_reaches_what_the_process_started(started):
    process = start([sys.executable, "-c", PARENT])
    started.append(process)
    grandchild = eventually(lambda: child_pids(process.pid), timeout=30)[0]
    stop(process, 10, group=True)
    assert process.returncode == -signal.SIGTERM
    assert eventually(lambda: not alive(grandchild), timeout=10, fail=False)


def test_kill_group_kills_the_group_of_a_process_still_running_after_the_timeout(started):
    stubborn = start([sys.executable, "-c", STUBBORN_PARENT])
    polite = start(SLEEP)
    started += [stubborn, polite]
    grandchild = eventually(lambda: child_pids(stubborn.pid), timeout=30)[0]
    stop_all([stubborn, polite], 1.0, kill_group=True)
    assert (stubborn.returncode, polite.returncode) == (-signal.SIGKILL, -signal.SIGTERM)
    assert eventually(lambda: not alive(grandchild), timeout=10, fail=False)


def test_child_pids_are_a_process_children_and_none_once_it_is_gone(started):
    process = start([sys.executable, "-c", PARENT])
    started.append(process)
    children = eventually(lambda: child_pids(process.pid), timeout=30)
    assert len(children) == 1
    command = Path(f"/proc/{children[0]}/cmdline")
    assert eventually(lambda: command.read_bytes().startswith(b"sleep"), timeout=10)  # exec'd
    stop(process, 10, group=True)
    assert child_pids(process.pid) == []
