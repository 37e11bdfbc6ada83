"""Stand-ins for the batch loop's handler and counters (`orderstream.kafka.batch_loop`), for
tests that watch the loop itself rather than what it handles."""

from __future__ import annotations

from orderstream.kafka.batch_loop import BatchOutcome


class CountedEvents:
    """The loop's counters (`LoopMetrics`), keeping the records counted by outcome."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def events_counted(self, outcomes) -> None:
        self.events.append(dict(outcomes))

    def batch_counted(self, size: int) -> None:
        pass

    def retry_counted(self, step: str, error: BaseException) -> None:
        pass


class Answers:
    """A handler that answers every batch, and every rejected record, with `outcome`."""

    def __init__(self, outcome: BatchOutcome | None = None):
        self.outcome = outcome or BatchOutcome()

    def handle(self, records: list, retry) -> BatchOutcome:
        return self.outcome

    def reject(self, record, error: Exception, retry) -> BatchOutcome:
        return self.outcome

    def periodic(self) -> None:
        pass
