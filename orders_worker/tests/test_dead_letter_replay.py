"""Dead letters against the real broker and a running worker: a rejected event is kept,
replayed after the cause is fixed, applied once however often it is replayed; and a
database outage while a dead letter is recorded is retried, never skipped."""

from __future__ import annotations

import secrets

import pytest
from django.db import connections

from orders_worker.dead_letters import dead_letters_replay
from orders_worker.models import DeadLetter, DeadLetterKind, ProcessedEvent, ProcessedOrder
from testkit.factories import OrderEventFactory
from testkit.helpers import eventually
from testkit.results import stored_result
from testkit.topics import committed_offsets

from .support import worker_errors

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True, databases=["default", "worker"]),
]

# An index on the payload's text: PostgreSQL refuses a row whose text is beyond the size
# of an index row (SQLSTATE 54, "index row size ... exceeds maximum"), as a missing fix
# would; dropping it is the fix.
PAYLOAD_TEXT_INDEX = "test_dead_letter_payload_text"


def payload_text_index(action: str) -> None:
    table = ProcessedOrder._meta.db_table
    sql = {
        "create": f"CREATE INDEX {PAYLOAD_TEXT_INDEX} ON {table} ((payload::text))",
        "drop": f"DROP INDEX IF EXISTS {PAYLOAD_TEXT_INDEX}",
    }[action]
    with connections["worker"].cursor() as cursor:
        cursor.execute(sql)


@pytest.fixture
def payload_text_refused():
    """Rows whose payload text is larger than an index row are refused until `fix()`."""
    payload_text_index("create")
    yield lambda: payload_text_index("drop")
    payload_text_index("drop")


def letters_of(event) -> list[DeadLetter]:
    return list(DeadLetter.objects.using("worker").filter(key_text=event.order_id))


def test_an_event_refused_until_a_fix_is_applied_once_when_replayed_after_it(
    unique_topics, payload_text_refused, running_worker, send_events, ack_reader, dlq_reader
):
    """Refused by the database: a dead letter on the topic and in the worker database, an
    ACK `rejected`. Once fixed, a replay applies it (ACK `created`, the order and its
    Redis result written); a second replay is answered as a duplicate and changes
    nothing."""
    event = OrderEventFactory(payload={"note": secrets.token_hex(2000)})
    statuses = ack_reader.statuses_by_event
    send_events(event)
    ack_reader.read_until(lambda records: event.event_id in statuses())
    assert statuses() == {event.event_id: ["rejected"]}
    [letter] = eventually(lambda: letters_of(event), message="the dead letter is recorded")
    assert letter.kind == DeadLetterKind.REFUSED_BY_DATABASE
    assert "index row" in letter.error
    assert (bytes(letter.key), bytes(letter.value)) == (event.key, event.to_bytes())
    [on_topic] = dlq_reader.read_until(lambda records: records)
    assert on_topic.value == event.to_bytes()
    assert not ProcessedOrder.objects.using("worker").filter(order_id=event.order_id).exists()

    payload_text_refused()  # the fix
    report = dead_letters_replay(ids=[letter.pk])

    assert (report.replayed, report.failed, report.complete) == ([letter.pk], {}, True)
    ack_reader.read_until(lambda records: len(statuses()[event.event_id]) == 2)
    assert statuses() == {event.event_id: ["rejected", "created"]}
    order = ProcessedOrder.objects.using("worker").get(order_id=event.order_id)
    assert (order.version, order.payload) == (1, event.payload)
    assert stored_result(order_id=event.order_id).version == 1

    dead_letters_replay(ids=[letter.pk])

    ack_reader.read_until(lambda records: len(statuses()[event.event_id]) == 3)
    assert statuses() == {event.event_id: ["rejected", "created", "created"]}
    again = ProcessedOrder.objects.using("worker").get(order_id=event.order_id)
    assert again.processed_at == order.processed_at, "the second replay changed the order"
    assert ProcessedEvent.objects.using("worker").filter(event_id=event.event_id).count() == 1
    letter.refresh_from_db()
    assert letter.replay_count == 2 and letter.replayed_at is not None
    assert len(letters_of(event)) == 1
    assert len(dlq_reader.read_for(0.5)) == 1, "a replay was dead-lettered again"


def test_a_database_outage_while_recording_a_dead_letter_is_retried_not_skipped(
    unique_topics, worker_db_outage, running_worker, send_events, ack_reader, dlq_reader, caplog
):
    """A batch of one record that is not JSON touches the database only to record it: with
    PostgreSQL away the step is retried (no dead letter produced, no offset committed, the
    record not skipped); when it returns the record is recorded once, dead-lettered once
    and committed."""
    group, topic = unique_topics.WORKER_GROUP, unique_topics.ORDERS_EVENTS_TOPIC
    warm_up = OrderEventFactory()
    send_events(warm_up)
    ack_reader.read_until(lambda records: records)
    eventually(lambda: committed_offsets(group, topic) == 1, timeout=10)
    assert worker_db_outage.accepted >= 1, "the worker thread did not connect via the proxy"

    worker_db_outage.pause()
    retries = running_worker.stats.retries
    send_events(b"{not json", key=b"poison-key")
    eventually(
        lambda: running_worker.stats.retries >= retries + 3,
        timeout=30,
        message="the worker retries recording the dead letter",
    )
    assert "could not record dead letters in PostgreSQL" in caplog.text
    assert dlq_reader.read_for(0.3) == [], "dead-lettered before it was recorded"
    assert committed_offsets(group, topic) == 1
    assert not DeadLetter.objects.using("worker").exists()

    worker_db_outage.resume()

    [on_topic] = dlq_reader.read_until(lambda records: records)
    assert (on_topic.key, on_topic.value) == (b"poison-key", b"{not json")
    [row] = DeadLetter.objects.using("worker").all()
    assert (bytes(row.value), row.key_text, row.kind) == (b"{not json", "poison-key", "invalid")
    eventually(lambda: committed_offsets(group, topic) == 2, timeout=10)
    assert running_worker.stats.rejected == 1
    assert not worker_errors(caplog)
    assert len(dlq_reader.read_for(0.3)) == 1
