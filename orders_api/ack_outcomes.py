"""What the pipeline did with an order: the outcome an ACK reports, which of two outcomes
wins, and the `processing` state OrderView derives from the recorded one.

Pure rules, no database or Kafka: the ACK recorder (`ack_recorder/recorder.py`) merges outcomes
with them (and states the same order in its SQL), the selectors derive the view.

The recorded state of an order is a join of everything its ACKs said: the outcome with
the highest (version, rank, reason), and the highest version applied (an ACK other than
`rejected`). Taking maxima makes the result the same whatever order the ACKs arrive in,
and however often one comes: an older ACK never moves an order backwards, and a
rejection of version N followed by an applied N+1 ends `done` at N+1.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderstream.statuses import AckStatus, Processing

# The outcome each ACK status stands for.
OUTCOME_OF_ACK = {
    AckStatus.CREATED: Processing.DONE,
    AckStatus.UPDATED: Processing.DONE,
    AckStatus.DELETED: Processing.DELETED,
    AckStatus.REJECTED: Processing.REJECTED,
}
# Of two outcomes for the same version, the higher rank wins: an event the worker applied
# beats a rejection of it, and a deleted order stays deleted (the worker's rule).
OUTCOME_RANK = {Processing.REJECTED: 0, Processing.DONE: 1, Processing.DELETED: 2}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the worker said of one version of an order (`reason`: "" unless rejected)."""

    version: int
    outcome: str  # Processing.DONE, DELETED or REJECTED
    reason: str = ""

    @property
    def order_key(self) -> tuple[int, int, str]:
        """What outcomes are ordered by (the reason only breaks ties, deterministically)."""
        return (self.version, OUTCOME_RANK[self.outcome], self.reason)

    @property
    def applied(self) -> bool:
        return self.outcome != Processing.REJECTED


@dataclass(frozen=True, slots=True)
class Recorded:
    """What is recorded for one order: the winning outcome, and the newest version the
    worker applied (None while none)."""

    outcome: Outcome | None = None
    applied_version: int | None = None


def outcome_of_ack(*, status: str, version: int, error: str | None) -> Outcome:
    """The outcome an ACK of `status` for `version` reports."""
    outcome = OUTCOME_OF_ACK[status]
    return Outcome(version, outcome, (error or "") if outcome == Processing.REJECTED else "")


def recorded_merge(*, recorded: Recorded, outcome: Outcome) -> Recorded:
    """`recorded` after one more ACK's `outcome` (commutative, idempotent: see the module)."""
    best = recorded.outcome
    if best is None or outcome.order_key > best.order_key:
        best = outcome
    applied = recorded.applied_version
    if outcome.applied and (applied is None or outcome.version > applied):
        applied = outcome.version
    return Recorded(best, applied)


def order_processing(*, version: int, recorded: Recorded) -> tuple[str, str | None]:
    """OrderView's `processing` and `reason` for an API row at `version`: the recorded
    outcome once it answers that version (or a newer one), else `pending`."""
    outcome = recorded.outcome
    if outcome is None or outcome.version < version:
        return Processing.PENDING, None
    if outcome.outcome == Processing.REJECTED:
        return Processing.REJECTED, outcome.reason
    return outcome.outcome, None
