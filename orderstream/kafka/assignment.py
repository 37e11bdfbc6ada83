"""How long the worker has held no partitions: a stalled group must not look healthy.

A worker whose group never hands it partitions (a rebalance that does not converge, a
broker that keeps the member out) polls happily and touches its heartbeat, while the
events of the partitions nobody holds pile up. This watch makes that loud: past
`warn_after` seconds without partitions the worker logs a WARNING at every stats interval,
and past `fail_after` seconds (0 = never) it stops beating, so its liveness check fails and
the process manager restarts it. A member of a group with more workers than partitions
holds none by design: set `fail_after` to 0 there.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class AssignmentWatch:
    """The worker's partitions, and since when it has held none."""

    def __init__(
        self,
        *,
        warn_after: float,
        fail_after: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.warn_after = warn_after
        self.fail_after = fail_after
        self._clock = clock
        self.partitions: frozenset[int] = frozenset()
        self._empty_since: float | None = clock()  # a new member holds nothing yet

    def update(self, partitions) -> None:
        """Record the partitions held from now on (after an assignment, revoke or loss)."""
        self.partitions = frozenset(partitions)
        if self.partitions:
            self._empty_since = None
        elif self._empty_since is None:
            self._empty_since = self._clock()

    def unassigned_for(self) -> float:
        """Seconds since the worker last held a partition (0 while it holds some)."""
        return 0.0 if self._empty_since is None else self._clock() - self._empty_since

    def stalled(self) -> bool:
        """True once the worker has held no partitions for longer than `warn_after`."""
        return self.unassigned_for() > self.warn_after

    def alive(self) -> bool:
        """False once it has held none for longer than `fail_after` (when that is set)."""
        return not self.fail_after or self.unassigned_for() <= self.fail_after
