"""The API's own metrics besides its HTTP requests (`orderstream/http_metrics.py`): how the
ACK wait of each write ended (`ack_wait_counted`).

Outcomes: `answered` (the worker's ACK came within the wait), `timed_out` (it did not:
202), `not_waited` (the client asked not to wait, or a replayed request whose answer was
already known), and three for a wait asked for but not done (202 at once, see
`ack_wait/gate.py`): `no_listener` (this process's ACK listener was not positioned: no
broker?), `busy` (ORDER_ACK_MAX_WAITERS waits under way), `pipeline_behind` (the outbox's
oldest row is too old, or ACKs stopped coming).
"""

from __future__ import annotations

from prometheus_client import Counter

ACK_WAIT_OUTCOMES = (
    "answered",
    "timed_out",
    "not_waited",
    "no_listener",
    "busy",
    "pipeline_behind",
)

ack_waits = Counter(
    "orderstream_ack_waits", "POST /orders writes by how their ACK wait ended", ["outcome"]
)
_by_outcome = {outcome: ack_waits.labels(outcome) for outcome in ACK_WAIT_OUTCOMES}


def ack_wait_counted(outcome: str) -> None:
    """One write's ACK wait ended with `outcome` (one of ACK_WAIT_OUTCOMES)."""
    _by_outcome[outcome].inc()
