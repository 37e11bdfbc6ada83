"""Which waiting write an ACK without an event id answers (the Go original worker's ACKs).

The original's ACK says only `order_id`, `status` and `processed_at`. It answers the oldest
write of that order still waiting whose event could have been processed by then: one that
began before `processed_at` (a write's event is published after the write began, so a
write that began later cannot be the one acknowledged). Both times are clocks of two
machines: keep them in sync (NTP), as the original itself needs for its timestamps.

Pure: the listener (`listener.py`) keeps the waiters and the unclaimed ACKs and asks these
functions which one goes with which.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Waiting:
    """A write waiting for its ACK: its event id, when it began, and its arrival rank."""

    event_id: str
    began_at: datetime
    rank: int


def waiter_for_ack(*, processed_at: datetime | None, waiting: Iterable[Waiting]) -> str | None:
    """The event id of the oldest write in `waiting` (all of one order) that began before
    `processed_at`; None when there is none, or no time to compare with."""
    if processed_at is None:
        return None
    eligible = [w for w in waiting if w.began_at < processed_at]
    if not eligible:
        return None
    return min(eligible, key=lambda w: (w.began_at, w.rank)).event_id


def ack_for_waiter(*, began_at: datetime, processed: list[datetime | None]) -> int | None:
    """Of the unclaimed ACKs of one order, oldest first (`processed`: their processed_at),
    the index of the first processed after a write that began at `began_at`; None when none
    was."""
    for index, processed_at in enumerate(processed):
        if processed_at is not None and began_at < processed_at:
            return index
    return None
