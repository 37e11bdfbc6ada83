"""`manage.py dead_letters list|replay`: what it prints, what it replays, when it fails."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from orders_worker.models import DeadLetter, DeadLetterKind
from orderstream.timestamps import utc_now
from testkit.factories import OrderEventFactory
from testkit.topics import TopicReader

from .support import recorded

pytestmark = pytest.mark.django_db(databases=["default", "worker"])


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("dead_letters", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def listed_ids(output: str) -> list[int]:
    return [int(line.split("\t")[0]) for line in output.splitlines()[1:]]


def three_letters() -> list[DeadLetter]:
    return recorded(
        (b"not json", "not valid JSON: Expecting value", DeadLetterKind.INVALID_MESSAGE),
        (OrderEventFactory().to_bytes(), "refused by the database: index row", "database"),
        (OrderEventFactory().to_bytes(), "amount: not a number", DeadLetterKind.REFUSED_BY_RULES),
    )


def test_list_prints_one_line_per_dead_letter_newest_first():
    invalid, refused, rules = three_letters()

    out, _ = run("list")

    header, *lines = out.splitlines()
    assert header.split("\t") == ["id", "failed_at", "source", "kind", "key", "replays", "error"]
    assert listed_ids(out) == [rules.pk, refused.pk, invalid.pk]
    fields = lines[-1].split("\t")
    assert fields[2:] == [
        "orders.events[0]@0",
        "invalid",
        "key-0",
        "0",
        "not valid JSON: Expecting value",
    ]


def test_list_filters_by_error_kind_replay_and_limit():
    invalid, refused, rules = three_letters()
    DeadLetter.objects.using("worker").filter(pk=refused.pk).update(
        replay_count=1, replayed_at=utc_now()
    )

    assert listed_ids(run("list", "--error-contains", "INDEX ROW")[0]) == [refused.pk]
    assert listed_ids(run("list", "--kind", "rules")[0]) == [rules.pk]
    assert listed_ids(run("list", "--not-replayed")[0]) == [rules.pk, invalid.pk]
    assert listed_ids(run("list", "--limit", "2")[0]) == [rules.pk, refused.pk]
    assert run("list", "--error-contains", "nothing like it")[0] == "No dead letters.\n"


def test_replay_needs_ids_or_a_filter_and_not_both():
    [letter] = recorded((b"{}", "x", DeadLetterKind.INVALID_MESSAGE))
    with pytest.raises(CommandError, match="ids, a filter, or --all"):
        run("replay")
    with pytest.raises(CommandError, match="not both"):
        run("replay", str(letter.pk), "--not-replayed")


def test_replay_without_a_broker_fails_with_a_clear_error_and_counts_nothing():
    [letter] = recorded((b"{}", "x", DeadLetterKind.INVALID_MESSAGE))

    with pytest.raises(CommandError, match="nothing was replayed: the broker could not be"):
        run("replay", str(letter.pk))

    letter.refresh_from_db()
    assert letter.replay_count == 0


@pytest.mark.broker
def test_replay_by_id_publishes_the_original_key_and_bytes_to_the_events_topic(unique_topics):
    invalid, refused, rules = three_letters()
    events = TopicReader(settings.ORDERS_EVENTS_TOPIC)
    try:
        out, err = run("replay", str(refused.pk))

        [record] = events.read_until(lambda records: records)
    finally:
        events.close()
    assert (record.key, record.value) == (b"key-1", bytes(refused.value))
    assert dict(record.headers)["replay_of"] == b"orders.events[0]@1"
    assert out == f"1 dead letter(s) replayed to {settings.ORDERS_EVENTS_TOPIC}: {refused.pk}.\n"
    assert err == ""
    counts = dict(DeadLetter.objects.using("worker").values_list("pk", "replay_count"))
    assert counts == {invalid.pk: 0, refused.pk: 1, rules.pk: 0}


@pytest.mark.broker
def test_replay_by_filter_replays_what_the_filter_selects(unique_topics):
    invalid, refused, rules = three_letters()
    events = TopicReader(settings.ORDERS_EVENTS_TOPIC)
    try:
        run("replay", "--kind", "database")
        run("replay", "--not-replayed", "--error-contains", "amount")
        out, _ = run("replay", "--not-replayed", "--error-contains", "amount")
        replayed = events.read_until(lambda records: len(records) >= 2)
        assert len(events.read_for(0.3)) == 2
    finally:
        events.close()
    # two keys, so maybe two partitions: no order between them (on a cluster, two leaders)
    assert sorted(record.key for record in replayed) == [b"key-1", b"key-2"]
    assert out == "No dead letter matches: nothing replayed.\n"
    counts = dict(DeadLetter.objects.using("worker").values_list("pk", "replay_count"))
    assert counts == {invalid.pk: 0, refused.pk: 1, rules.pk: 1}


@pytest.mark.broker
def test_replay_of_an_unknown_id_says_so_and_fails_after_replaying_the_others(unique_topics):
    [letter] = recorded((b"{}", "x", DeadLetterKind.INVALID_MESSAGE))
    err = io.StringIO()
    with pytest.raises(CommandError, match="not every selected dead letter was replayed"):
        call_command("dead_letters", "replay", str(letter.pk), "999999", stderr=err)
    assert err.getvalue() == "No such dead letter: 999999.\n"
    letter.refresh_from_db()
    assert letter.replay_count == 1
