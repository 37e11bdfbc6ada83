"""How long the pipeline stood still in each window of a `Load` (ledger.py): the longest
stretch without a publish (the outbox rows' `published_at`: the broker confirmed them),
the longest without an ACK (the ACK topic's record timestamps: when the worker sent
them), and how the waiting POSTs were answered (200: their ACK came in time; 202: not)."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass

from testkit.ledger import Load
from testkit.processes import query
from testkit.topics import TopicReader

WAITING_MODES = ("wait", "wait=2")


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] without one of `times` (its edges included)."""
    inside = sorted(t for t in times if start <= t <= end)
    return max(b - a for a, b in itertools.pairwise([start, *inside, end]))


def publish_times(api_db: str) -> list[float]:
    """When each outbox row of the API database was published (epoch seconds)."""
    rows = query(
        api_db,
        "SELECT extract(epoch FROM published_at)::float FROM orders_api_outboxevent "
        "WHERE published_at IS NOT NULL",
    )
    return [row[0] for row in rows]


def ack_times(topic: str) -> list[float]:
    """When each record of the ACK topic was sent (its timestamp, epoch seconds)."""
    reader = TopicReader(topic)
    try:
        return [record.timestamp / 1000 for record in reader.read_to_end(timeout=60)]
    finally:
        reader.close()


@dataclass
class Stall:
    """One window: its length, the longest stretches without a publish and without an
    ACK (seconds), the waiting POSTs answered 200 and 202."""

    window: str
    seconds: float
    no_publish: float
    no_ack: float
    waited_200: int
    waited_202: int


def stalls(load: Load, publishes: list[float], acks: list[float]) -> list[Stall]:
    """A `Stall` per window of `load` (by the start of each request)."""
    to_epoch = time.time() - time.monotonic()  # the windows are monotonic times
    answers: dict[str, Counter] = {}
    for attempt in load.ledger.attempts:
        if attempt.wait_mode in WAITING_MODES:
            answers.setdefault(attempt.window, Counter())[attempt.status] += 1
    found = []
    for name, seconds in load.windows.durations(load.ended).items():
        start = load.windows.started[name] + to_epoch
        end = start + seconds
        answered = answers.get(name, Counter())
        found.append(
            Stall(
                name,
                seconds,
                longest_gap(publishes, start, end),
                longest_gap(acks, start, end),
                answered[200],
                answered[202],
            )
        )
    return found


def stall_table(found: list[Stall]) -> str:
    header = (
        f"{'fault window':<28}{'secs':>6}{'no publish s':>14}{'no ACK s':>10}"
        f"{'waited 200':>12}{'waited 202':>12}"
    )
    lines = [header, "-" * len(header)]
    for s in found:
        lines.append(
            f"{s.window:<28}{s.seconds:>6.0f}{s.no_publish:>14.1f}{s.no_ack:>10.1f}"
            f"{s.waited_200:>12}{s.waited_202:>12}"
        )
    return "\n".join(lines)
