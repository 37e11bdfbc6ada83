"""kafka-python 3.0.12's heartbeat thread sends a LeaveGroup when the application has not
polled for max_poll_interval_ms; Tansu 0.6.0 keeps a leader that leaves a rebalance under
way as the group's leader for good (no member is ever assigned a partition again, later
members neither). `PollTimeoutKeepingCoordinator` forgets the membership instead, and the
broker expires it after the session timeout (docs/decisions/kafka-python-join-fix.md).

Driven with plain consumers step by step, as test_kafka_join_fix.py."""

from __future__ import annotations

import kafka.consumer.group as consumer_group
import pytest

from orderstream.kafka.driver import PollTimeoutKeepingCoordinator
from testkit.drivers import kafka_python_only
from testkit.helpers import eventually
from testkit.rebalances import a_member_and_a_newcomer

pytestmark = kafka_python_only("its group coordinator's leave on a poll timeout")


def join_in_flight(consumer) -> bool:
    """The consumer has a member id and its JoinGroup is out (the broker holds it)."""
    task = consumer._coordinator._join_task  # the client's own task: read, never written
    return consumer.group_metadata().member_id != "" and task is not None


def test_every_consumer_the_project_builds_keeps_its_membership_on_a_poll_timeout():
    assert issubclass(consumer_group.ConsumerCoordinator, PollTimeoutKeepingCoordinator)


@pytest.mark.broker
def test_a_leader_that_stops_polling_during_a_rebalance_does_not_leave_the_group_leaderless():
    """The leader of a group of one stops polling just as a second member joins. Its poll
    timeout (max_poll_interval_ms) comes while the rebalance is under way. Unfixed, its
    heartbeat thread sent a LeaveGroup, and on Tansu every JoinGroup answer from then on
    named the departed member as leader: the new member was never assigned anything."""
    with a_member_and_a_newcomer("leave") as (topic, leader, _, joining, second):
        eventually(
            lambda: joining.poll(timeout_ms=200) is not None and join_in_flight(joining),
            timeout=10,
            message="the new member's JoinGroup went out",
        )
        # The leader polls no more from here.
        eventually(
            lambda: joining.poll(timeout_ms=200) is not None and second.assigned >= 1,
            timeout=45,
            message="the new member was assigned the partitions",
        )
        assert second.held == {(topic, 0), (topic, 1)}
        # Apache Kafka may assign the newcomer before the leader's own poll timeout comes.
        eventually(
            lambda: leader.group_metadata().generation_id == -1,
            timeout=30,
            message="the leader gave up its membership",
        )
