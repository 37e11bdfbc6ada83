"""What the kernel says of a process's CPU time (Linux /proc)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu_seconds(stat_line: str, ticks: int = CLOCK_TICKS) -> float:
    """utime + stime of a /proc/<pid>/stat line, in seconds. The command name (field 2)
    is in parentheses and may hold spaces, so fields are counted after its last ')'."""
    fields = stat_line[stat_line.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of the line
    return (utime + stime) / ticks


def process_cpu_seconds(pid: int) -> float:
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def thread_group(name: str) -> str:
    """`librdkafka` for the threads librdkafka starts (it names them `rdk:main`,
    `rdk:broker-N` ...), `python` for every other (the interpreter's, kafka-python's)."""
    return "librdkafka" if name.startswith("rdk:") else "python"


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """utime + stime of the live threads of `pid`, summed by `thread_group` of their names
    (a thread that ended is no longer counted: measure while the process runs)."""
    groups: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            line = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        group = thread_group(line[line.index("(") + 1 : line.rindex(")")])
        groups[group] = groups.get(group, 0.0) + stat_cpu_seconds(line)
    return groups
