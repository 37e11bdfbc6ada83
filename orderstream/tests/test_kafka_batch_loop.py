"""The batch loop's `produces` (LoopConfig): a loop whose handler never answers with
records (the ACK recorder) builds no producer, and one whose handler answers with records
after all fails loudly rather than dropping them. No broker: the loop's clients are fakes."""

from __future__ import annotations

import pytest

from orderstream.kafka.batch_loop import BatchLoop, BatchOutcome, LoopConfig, Outgoing
from testkit.loops import Answers, CountedEvents


class IdleConsumer:
    """A consumer that holds nothing and is closed once."""

    closed = False

    def assignment(self) -> set:
        return set()

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


class FakeClientsLoop(BatchLoop):
    """The loop with a fake consumer, counting the producers it builds."""

    producers_built = 0

    def _build_consumer(self):
        return IdleConsumer()

    def _build_producer(self):
        self.producers_built += 1
        return None


def loop_of(outcome: BatchOutcome, *, produces: bool, **config) -> FakeClientsLoop:
    config = LoopConfig(
        events_topic="events", group="g", metrics=CountedEvents(), produces=produces, **config
    )
    return FakeClientsLoop(config, Answers(outcome))


@pytest.mark.parametrize("produces, built", [(True, 1), (False, 0)])
def test_a_loop_builds_a_producer_only_when_it_produces(produces, built):
    loop = loop_of(BatchOutcome(), produces=produces, max_messages=0)
    assert loop.run() == 0
    assert loop.producers_built == built
    assert loop.member.consumer.closed


def test_a_loop_that_produces_nothing_counts_its_batches_without_a_producer():
    loop = loop_of(BatchOutcome(outcomes={"applied": 2}), produces=False)
    loop._process(["first", "second"])
    assert loop.metrics.events == [{"applied": 2}]


def test_a_loop_that_produces_nothing_refuses_a_handler_that_answers_with_records():
    ack = Outgoing(topic="acks", key=b"k", value=b"v")
    loop = loop_of(BatchOutcome(acks=[ack]), produces=False)
    with pytest.raises(RuntimeError, match="1 records, but the loop produces none"):
        loop._process(["first"])
