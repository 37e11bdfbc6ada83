"""A fix of kafka-python 3.0.12's group join, applied when `orderstream.kafka` is imported.

`BaseCoordinator.join_group_async` starts a new JoinGroup whenever its cached join task
`is_done`: a JoinGroup + SyncGroup round trip that completed while the application was
outside `poll()` (between two polls, or after a short poll timed out) is thrown away and
the member joins again. The broker then waits for that member, the member may throw the
next answer away too, and meanwhile it sends no heartbeats: seen as partitions that stayed
unassigned for minutes on Tansu (which answers a follower's rejoin after a fixed 3 s) and
as a worker dropped from its group on Apache Kafka. The fix keeps a finished task: its
assignment (or its error) is taken at the next poll, as for a task still in flight. It is
the one-line change the method's own comment describes ("re-await the same Task").

The method's source is checked before it is changed: another kafka-python version stops
the import with a message, so the pin in requirements/base.txt and this fix move together.
"""

from __future__ import annotations

import inspect
import textwrap

import kafka
import kafka.coordinator.base as coordinator_base

FIXED_VERSION = "3.0.12"
DISCARDS_FINISHED = "if self._join_task is None or self._join_task.is_done:"
KEEPS_FINISHED = "if self._join_task is None:"


def keep_finished_joins() -> None:
    """Replace `BaseCoordinator.join_group_async` by the fixed method (once)."""
    method = coordinator_base.BaseCoordinator.join_group_async
    if getattr(method, "keeps_finished_joins", False):
        return
    if kafka.__version__ != FIXED_VERSION:
        raise RuntimeError(
            f"orderstream/kafka/join_fix.py fixes kafka-python {FIXED_VERSION}, found "
            f"{kafka.__version__}: check whether the new version still needs it"
        )
    source = textwrap.dedent(inspect.getsource(method))
    if source.count(DISCARDS_FINISHED) != 1:
        raise RuntimeError("kafka-python's join_group_async is not the one this fix knows")
    namespace: dict = {}
    code = compile(
        source.replace(DISCARDS_FINISHED, KEEPS_FINISHED), inspect.getfile(method), "exec"
    )
    exec(code, vars(coordinator_base), namespace)
    fixed = namespace["join_group_async"]
    fixed.keeps_finished_joins = True
    coordinator_base.BaseCoordinator.join_group_async = fixed
