"""The worker subscribes before it takes metadata (`clients.subscribe_once_known`), so a
new member does not rejoin its group at its first metadata update.

kafka-python 3.0.12's group coordinator keeps a snapshot of the subscribed topics'
partitions, rebuilt only when metadata comes; a leader assigns from it and rejoins when the
next metadata differs. Taken before the subscription, the snapshot was empty, and on Apache
Kafka every new worker rejoined ~0.15 s after its first assignment (the trigger of the
suite's flakes in test_loop_faults.py).
"""

from __future__ import annotations

import pytest
from django.conf import settings

from orderstream.kafka import ensure_topics, make_consumer
from orderstream.kafka.batch_loop import BatchLoop, LoopConfig
from testkit.helpers import eventually
from testkit.loops import Answers, CountedEvents
from testkit.rebalances import Rebalances, joined, names, subscribed
from testkit.running import running


@pytest.mark.broker
def test_a_member_subscribed_by_the_project_does_not_rejoin_at_its_first_metadata_update():
    """Unfixed, the client's metadata came before the subscription: the group coordinator's
    snapshot of the subscribed topics' partitions was empty when the member (the leader)
    assigned, and the first metadata update after the join made it rejoin (on Apache
    Kafka a rebalance ~0.15 s after every start). A long retry backoff holds back the
    update `subscribe` asks for, so the join always comes first."""
    topic = names("join")
    ensure_topics({topic: 2})
    rebalances = Rebalances()
    consumer = make_consumer(group_id=names("join-group"), retry_backoff_ms=2000)
    try:
        subscribed(consumer, topic, rebalances)
        joined(consumer, rebalances)
        consumer.topics()  # a metadata update (the one `subscribe` asked for, at the latest)
        consumer.poll(timeout_ms=100)  # a rejoin starts here (its revoke is called in poll)
        assert (rebalances.revoked, rebalances.assigned) == (0, 1)
    finally:
        consumer.close(autocommit=False)


class CountingLoop(BatchLoop):
    """The project's batch loop, counting its member's rebalance callbacks."""

    def __init__(self, topic: str, group: str):
        config = LoopConfig(
            events_topic=topic, group=group, poll_timeout_ms=100, metrics=CountedEvents()
        )
        super().__init__(config, Answers())
        self.rebalances = Rebalances()

    def on_partitions_revoked(self, revoked) -> None:
        self.rebalances.on_partitions_revoked(revoked)
        super().on_partitions_revoked(revoked)

    def on_partitions_assigned(self, assigned) -> None:
        self.rebalances.on_partitions_assigned(assigned)
        super().on_partitions_assigned(assigned)


# The assignments a member that gives up partitions sees in one rebalance: one (eager,
# kafka-python); two with cooperative-sticky (confluent): the first round takes back the
# partitions it gives up and assigns it nothing new, the second hands them to the newcomer.
ASSIGNMENTS_PER_REBALANCE = {"kafka-python": 1, "confluent": 2}


@pytest.mark.broker
def test_a_worker_starting_beside_a_running_one_makes_the_group_rebalance_once():
    """The running member's partitions are revoked once and assigned once when a second
    loop starts, and the group stays so (on Apache Kafka the new member used to rejoin
    once more after its first metadata update, or the leader threw a join answer away)."""
    topic, group = names("join"), names("join-group")
    ensure_topics({topic: 4})
    first, second = CountingLoop(topic, group), CountingLoop(topic, group)
    with running(first, ready=first.partitions, what="first loop"):
        eventually(lambda: first.partitions() == set(range(4)), message="first holds all")
        before = (first.rebalances.revoked, first.rebalances.assigned)
        with running(second, ready=second.partitions, what="second loop"):
            eventually(
                lambda: (
                    first.partitions() | second.partitions() == set(range(4))
                    and not first.partitions() & second.partitions()
                ),
                message="the two share the partitions",
            )
            # A second rebalance would come within about a metadata refresh (0.1 s on);
            # none may come in the next 3 s.
            again = eventually(
                lambda: first.rebalances.revoked > before[0] + 1 or second.rebalances.revoked,
                timeout=3,
                fail=False,
            )
            counts = (first.rebalances.revoked, first.rebalances.assigned)
        assert not again, "the group rebalanced more than once"
        assert counts == (
            before[0] + 1,
            before[1] + ASSIGNMENTS_PER_REBALANCE[settings.KAFKA_CLIENT],
        )
