"""Child processes, written once for the local stack (its servers and `make run`'s
children), the benchmark and the tests: started in a session of their own and dying with
their owner, stopped with a signal then SIGKILL, and their children found. Waiting until
one answers is devstack/polling.py's `poll_until`.

The handlers inside the project's own processes (what they do on SIGTERM) are another
job: orderstream/stop_signals.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def stop_with_parent() -> None:
    """`preexec_fn` of a child's Popen: the kernel sends it SIGTERM when the process that
    started it dies (Linux), whether that one exits cleanly, is killed or crashes."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(
    command: list[str], *, own_session: bool = True, with_parent: bool = True, **popen
) -> subprocess.Popen:
    """`command` started by Popen with `popen` (cwd, env, stdout, ...).

    `own_session`: a terminal's Ctrl-C (SIGINT to its foreground process group) reaches
    the owner alone, which stops the child with one signal (the API server alone,
    whose workers get their quit from it, never a second one from the terminal).
    `with_parent`: the child gets SIGTERM when its owner dies (`stop_with_parent`), so a
    killed `make test` or `make bench` leaves nothing behind.
    """
    return subprocess.Popen(
        command,
        start_new_session=own_session,
        preexec_fn=stop_with_parent if with_parent else None,
        **popen,
    )


def stop(process: subprocess.Popen, timeout: float, **how) -> None:
    """`stop_all` of one process."""
    stop_all([process], timeout, **how)


def stop_all(
    processes: Iterable[subprocess.Popen],
    timeout: float,
    *,
    stop_signal: int = signal.SIGTERM,
    group: bool = False,
    kill_group: bool = False,
    kill_wait: float | None = None,
) -> None:
    """Send `stop_signal` to each process still running (to its process group with
    `group`), give them all `timeout` seconds from now to exit, then SIGKILL each one left
    and wait for it (`kill_wait` seconds at most; None: until it is gone).

    The SIGKILL goes to the process group with `group` or `kill_group`: what the process
    started goes too. A process started with `own_session` leads its group, and the group
    is still its own while the process is not reaped.
    """
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            _send(process, stop_signal, group)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            _send(process, signal.SIGKILL, group or kill_group)
            process.wait(timeout=kill_wait)


def _send(process: subprocess.Popen, signum: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)


def child_pids(pid: int) -> list[int]:
    """The live children of process `pid` (all its threads'), e.g. the API server's
    workers; none when `pid` is gone (Linux /proc)."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children.update(int(child) for child in (task / "children").read_text().split())
    return sorted(children)
