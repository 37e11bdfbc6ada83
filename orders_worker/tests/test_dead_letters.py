"""Dead letters kept in the worker database: recorded by the handler (once per record, the
original bytes), listed with filters, and not replayed when the broker cannot be reached.
Plain records and the test database; no broker (replays through the broker are in
test_dead_letter_replay.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError

from orders_worker import handler
from orders_worker.dead_letters import (
    DeadLetterReplayFailed,
    Rejection,
    dead_letters_list,
    dead_letters_record,
    dead_letters_replay,
)
from orders_worker.handler import MAX_ERROR_CHARS, order_event_reject, order_events_handle
from orders_worker.models import DeadLetter, DeadLetterKind
from orders_worker.services import EventDataRefused
from orders_worker.worker import OrderWorker, WorkerConfig
from orderstream.timestamps import utc_now
from testkit.factories import OrderEventFactory
from testkit.helpers import Record

from .support import CONFIG, records_of

pytestmark = pytest.mark.django_db(databases=["default", "worker"])


def letters() -> list[DeadLetter]:
    return list(DeadLetter.objects.using("worker").order_by("source_offset"))


def test_each_rejected_record_is_kept_with_its_original_bytes_and_why():
    """Not JSON and an amount the rules refuse: one row each, the key and value as they
    were on the topic, the error the dead-letter topic got, and the kind of reason."""
    bad_amount = OrderEventFactory(payload={"amount": "ten"})
    good = OrderEventFactory()
    records = records_of(b"\xff{not json", bad_amount, good)

    outcome = order_events_handle(records=records, config=CONFIG)

    kept = letters()
    assert [(row.source_topic, row.source_partition, row.source_offset) for row in kept] == [
        ("events", 0, 0),
        ("events", 0, 1),
    ]
    assert [bytes(row.value) for row in kept] == [records[0].value, records[1].value]
    assert [bytes(row.key) for row in kept] == [b"raw", bad_amount.key]
    assert [row.key_text for row in kept] == ["raw", bad_amount.order_id]
    assert [row.kind for row in kept] == [
        DeadLetterKind.INVALID_MESSAGE,
        DeadLetterKind.REFUSED_BY_RULES,
    ]
    sent = [dict(d.headers)["error"].decode() for d in outcome.dead_letters]
    assert [row.error for row in kept] == sent
    assert all(row.value_kept and row.replay_count == 0 for row in kept)
    assert all(row.replayed_at is None for row in kept)


def test_a_redelivered_record_is_recorded_once():
    """The same batch handled again (a crash before the offset commit): no second row,
    and the first row is kept as it was."""
    records = records_of(b"not json", OrderEventFactory())
    order_events_handle(records=records, config=CONFIG)
    [first] = letters()

    order_events_handle(records=records, config=CONFIG)
    order_event_reject(record=records[0], error=RuntimeError("again"), config=CONFIG)

    [again] = letters()
    assert (again.pk, again.error, again.failed_at) == (first.pk, first.error, first.failed_at)


def test_records_that_failed_alone_are_kept_with_the_kind_of_their_error():
    refused, unexpected = records_of(OrderEventFactory(), OrderEventFactory())

    order_event_reject(
        record=refused, error=EventDataRefused("refused by the database: too big"), config=CONFIG
    )
    order_event_reject(record=unexpected, error=RuntimeError("boom"), config=CONFIG)

    assert [(row.kind, row.error) for row in letters()] == [
        (DeadLetterKind.REFUSED_BY_DATABASE, "refused by the database: too big"),
        (DeadLetterKind.UNEXPECTED_ERROR, "could not be processed: RuntimeError: boom"),
    ]


def test_recording_is_a_step_of_the_loops_retry_of_its_own():
    steps = []

    def retry(what, step):
        steps.append(what)
        return step()

    not_json, event = records_of(b"not json", OrderEventFactory())
    order_events_handle(records=[not_json], config=CONFIG, retry=retry)
    order_event_reject(record=event, error=RuntimeError("boom"), config=CONFIG, retry=retry)

    assert steps == [
        "apply the batch to PostgreSQL",
        "record dead letters in PostgreSQL",
        "write results to Redis",
        "record dead letters in PostgreSQL",
    ]
    assert len(letters()) == 2


def test_what_postgresql_text_cannot_hold_is_escaped_not_refused():
    """A NUL or a lone surrogate in the error, a key that is not UTF-8: the row is kept
    (a refused insert would leave the record unrecorded), the key bytes unchanged."""
    record = Record("events", 3, 7, b"\x00\xffkey", b"{}")
    error = "status: got 'a\x00b\ud800'" + "x" * (2 * MAX_ERROR_CHARS)

    dead_letters_record(
        rejections=[Rejection(record, error, DeadLetterKind.INVALID_MESSAGE)], failed_at=utc_now()
    )

    [row] = letters()
    assert bytes(row.key) == b"\x00\xffkey"
    assert row.key_text == "\\x00\\xffkey"
    assert row.error.startswith("status: got 'a\\x00b\\ud800'")
    assert "\x00" not in row.error


def test_a_value_too_large_keeps_its_start_and_length_and_is_not_replayed(monkeypatch):
    from orders_worker import dead_letters

    monkeypatch.setattr(dead_letters, "MAX_KEPT_VALUE_BYTES", 10)
    record = Record("events", 0, 1, b"k", b"0123456789abcdef")
    dead_letters_record(
        rejections=[Rejection(record, "too big", DeadLetterKind.UNEXPECTED_ERROR)],
        failed_at=utc_now(),
    )
    [row] = letters()
    assert (bytes(row.value), row.value_length, row.value_kept) == (b"0123456789", 16, False)

    report = dead_letters_replay(ids=[row.pk])  # no broker is asked for nothing to send

    assert (report.replayed, report.not_kept, report.complete) == ([], [row.pk], False)
    row.refresh_from_db()
    assert (row.replay_count, row.replayed_at) == (0, None)


def test_the_list_is_newest_first_and_narrowed_by_each_filter():
    records = records_of(b"not json", b"[]", OrderEventFactory(payload={"amount": "ten"}))
    order_events_handle(records=records, config=CONFIG)
    oldest, middle, newest = letters()
    DeadLetter.objects.using("worker").filter(pk=middle.pk).update(
        replayed_at=utc_now(), replay_count=1
    )

    def ids(**filters):
        return [row.pk for row in dead_letters_list(**filters)]

    assert ids() == [newest.pk, middle.pk, oldest.pk]
    assert ids(error_contains="NOT VALID JSON") == [oldest.pk]
    assert ids(kind="rules") == [newest.pk]
    assert ids(not_replayed=True) == [newest.pk, oldest.pk]
    assert ids(limit=1) == [newest.pk]


def test_a_replay_with_no_broker_fails_as_a_whole_and_counts_nothing():
    """No broker answers (tests without the `broker` marker see none): the replay raises
    a clear error within the replay timeout, and no dead letter counts as replayed."""
    order_events_handle(records=records_of(b"not json"), config=CONFIG)
    [row] = letters()

    with pytest.raises(DeadLetterReplayFailed, match="broker could not be reached"):
        dead_letters_replay(ids=[row.pk])

    row.refresh_from_db()
    assert (row.replay_count, row.replayed_at) == (0, None)


def test_the_worker_forgets_dead_letters_after_their_retention(settings):
    """At its periodic housekeeping the worker deletes dead letters that failed more than
    DEAD_LETTER_RETENTION_SECONDS ago; 0 keeps them for good."""
    now = utc_now()
    old, recent = records_of(b"old", b"recent")
    dead_letters_record(
        rejections=[Rejection(old, "bad", DeadLetterKind.INVALID_MESSAGE)],
        failed_at=now - timedelta(days=2),
    )
    dead_letters_record(
        rejections=[Rejection(recent, "bad", DeadLetterKind.INVALID_MESSAGE)], failed_at=now
    )
    settings.DEAD_LETTER_RETENTION_SECONDS = 0
    OrderWorker(WorkerConfig.from_settings()).handler.periodic()
    assert len(letters()) == 2
    settings.DEAD_LETTER_RETENTION_SECONDS = 24 * 3600
    OrderWorker(WorkerConfig.from_settings()).handler.periodic()
    assert [bytes(row.value) for row in letters()] == [b"recent"]


def test_a_database_error_only_postpones_the_purge_of_dead_letters(monkeypatch, caplog):
    def refused(**kwargs):
        raise DatabaseError("the database is away")

    monkeypatch.setattr(handler, "dead_letters_purge", refused)
    OrderWorker(WorkerConfig.from_settings()).handler.periodic()
    assert "could not purge old dead letters (will retry later)" in caplog.text
