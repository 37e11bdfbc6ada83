"""Servers that die with their owner: a killed `make test` leaves no PostgreSQL behind."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def stop_with_parent() -> None:
    """`preexec_fn` of a server's Popen: the kernel sends it SIGTERM when the process that
    started it dies (Linux), whether that one exits cleanly, is killed or crashes."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
