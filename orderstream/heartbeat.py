"""Liveness heartbeat of a loop (worker, relay): a file whose modification time says the
loop still turns.

A process can be alive yet stuck (a call that never returns, a deadlock): its container
looks fine while nothing is consumed or published. So the loop touches a file on every
turn (`WORKER_HEARTBEAT_FILE`, `RELAY_HEARTBEAT_FILE`; at most once a second, so a busy
loop does not pay a system call per batch), and
`python -m orderstream.heartbeat --file F --max-age N` exits 1 once the file is older than
N seconds: the compose healthcheck of the worker and of the relay.

The heartbeat goes on while a loop backs off from an outage (PostgreSQL, Redis or the
broker unreachable): its retry waits beat too. Such a process is healthy: its loop is
alive, it resumes by itself when the service returns, and restarting its container would
not bring the database back (a worker would only drop the batch it holds and rejoin the
group). The heartbeat answers "is the loop turning", not "is it making progress": an
outage shows in the logs (`could not ... (attempt N ...)`), in the lag, the outbox age and
the healthchecks of the services themselves. (One exception, the worker's: a worker that
has held no partitions for too long stops beating, see orderstream/kafka/assignment.py.)

The check needs no Django settings and no database: it reads the file's mtime only, so it
is fast enough to run every few seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


class Heartbeat:
    """Touches `path` at most once per `min_interval` seconds; no path = disabled."""

    def __init__(
        self,
        path: str | os.PathLike | None,
        *,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = Path(path) if path else None
        self.min_interval = min_interval
        self._clock = clock
        self._last: float | None = None  # clock() of the last touch
        self._failing = False

    def touch(self) -> None:
        """Mark the loop as alive now (a no-op within `min_interval` of the last touch)."""
        if self.path is None:
            return
        now = self._clock()
        if self._last is not None and now - self._last < self.min_interval:
            return
        self._last = now
        try:
            self.path.touch()  # creates the file, or sets its time to now
        except OSError as exc:
            # Never stop the loop for it; the healthcheck will report the stale file.
            if not self._failing:
                logger.warning("cannot touch the heartbeat file %s: %s", self.path, exc)
            self._failing = True
            return
        self._failing = False


def heartbeat_age(path: str | os.PathLike) -> float | None:
    """Seconds since `path` was last touched; None when it does not exist."""
    try:
        return time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def check(path: str | os.PathLike, max_age_seconds: float) -> bool:
    """True when `path` exists and was touched within `max_age_seconds`.

    An mtime more than `max_age_seconds` in the future (the clock was set back while the
    loop stood still) counts as stale too; a turning loop corrects it within a second.
    """
    age = heartbeat_age(path)
    return age is not None and abs(age) <= max_age_seconds


def main(argv: list[str] | None = None) -> int:
    """The healthcheck: exit 0 when the heartbeat is fresh, 1 (and say why) otherwise."""
    parser = argparse.ArgumentParser(
        prog="python -m orderstream.heartbeat",
        description="Exit 0 when a loop's heartbeat file is fresh, 1 when stale or missing.",
    )
    parser.add_argument(
        "--file", required=True, help="WORKER_HEARTBEAT_FILE or RELAY_HEARTBEAT_FILE"
    )
    parser.add_argument(
        "--max-age", type=float, required=True, help="seconds after which the file is stale"
    )
    args = parser.parse_args(argv)
    if check(args.file, args.max_age):
        return 0
    age = heartbeat_age(args.file)
    if age is None:
        reason = "missing (the loop has not started, or its *_HEARTBEAT_FILE differs)"
    else:
        reason = f"stale: last touched {age:.0f}s ago (max {args.max_age:g}s)"
    print(f"heartbeat {args.file} is {reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
