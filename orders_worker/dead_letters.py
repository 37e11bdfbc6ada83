"""Dead letters in the worker database: record the records the worker rejects, list them,
replay them, forget them.

Every record the worker rejects goes to the dead-letter topic (`handler.dead_letter`) and
is also kept here, as a `DeadLetter` row with its original key and bytes, so an operator
can see it (admin, `manage.py dead_letters list`) and, once the cause is fixed, publish it
again to the events topic (`dead_letters_replay`; admin action, `manage.py dead_letters
replay`). The worker dedupes by event_id, so a replayed event is applied at most once, and
a replay of an event already applied is answered as a duplicate. The worker forgets a
dead letter DEAD_LETTER_RETENTION_SECONDS after it failed (`dead_letters_purge`, in its
periodic housekeeping).

Recording is a step of its own, in its own statement, not part of the batch's transaction:
the record the database refused (the reason the loop isolates a record) rolled that
transaction back, so its row could not be kept there; a rejection must not undo the
valid events of its batch; and the insert is idempotent (unique on topic, partition,
offset: a redelivered record is recorded once), so the step can be retried alone, with the
loop's `retry`, while the database is down. It runs before the offsets are committed: a
crash in between redelivers the record, which then finds its row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, QuerySet

from orders_worker.models import DeadLetter, DeadLetterKind
from orders_worker.services import DATA_ERRORS, DB_ALIAS
from orderstream.kafka import KafkaError, make_producer
from orderstream.timestamps import utc_now

logger = logging.getLogger(__name__)

# The original value is kept up to this many bytes, as on the dead-letter topic
# (`handler.MAX_DEAD_LETTER_BYTES`): a larger one could not be published again anyway.
MAX_KEPT_VALUE_BYTES = 1_000_000
# How long a replay waits for the broker (connect, metadata, the acknowledgement of each
# record): the admin runs inside a web request.
REPLAY_TIMEOUT_MS = 5_000


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record the worker rejected (anything with topic, partition, offset, key and
    value), why (`error`) and the kind of reason."""

    record: object
    error: str
    kind: DeadLetterKind


class DeadLetterReplayFailed(Exception):
    """Nothing could be replayed: the broker could not be reached."""


@dataclass
class ReplayReport:
    """What a replay did, by dead-letter id."""

    topic: str
    replayed: list[int] = field(default_factory=list)
    not_kept: list[int] = field(default_factory=list)  # value too large, not stored whole
    failed: dict[int, str] = field(default_factory=dict)  # the broker refused these

    @property
    def complete(self) -> bool:
        """Whether every dead letter asked for was replayed."""
        return bool(self.replayed) and not (self.failed or self.not_kept)

    def summary(self) -> list[tuple[str, str]]:
        """What the replay did, as (level, sentence); level: success, warning or error."""
        said = []
        if self.replayed:
            ids = ", ".join(map(str, self.replayed))
            said.append(
                ("success", f"{len(self.replayed)} dead letter(s) replayed to {self.topic}: {ids}.")
            )
        if self.failed:
            failures = "; ".join(f"{pk}: {error}" for pk, error in self.failed.items())
            said.append(("error", f"{len(self.failed)} not taken by the broker: {failures}."))
        if self.not_kept:
            ids = ", ".join(map(str, self.not_kept))
            said.append(("warning", f"Not replayed, value too large to have been kept: {ids}."))
        if not said:
            said.append(("warning", "No dead letter selected: nothing replayed."))
        return said


def _storable(text: str) -> str:
    """`text` as PostgreSQL's text takes it: no NUL, no lone surrogate (escaped)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


def _row(rejection: Rejection, failed_at: datetime) -> DeadLetter:
    record = rejection.record
    value = record.value if record.value is not None else b""
    key = record.key
    return DeadLetter(
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        key=key,
        key_text=_storable(key.decode("utf-8", "backslashreplace")) if key else "",
        value=value[:MAX_KEPT_VALUE_BYTES],
        value_length=len(value),
        kind=rejection.kind,
        error=_storable(rejection.error),
        failed_at=failed_at,
    )


def dead_letters_record(*, rejections: list[Rejection], failed_at: datetime) -> None:
    """Keep one row per rejected record; a record recorded before (redelivered) is kept as
    it was (INSERT ... ON CONFLICT DO NOTHING).

    A database that is unavailable raises (the caller retries). One that refuses the rows
    for what they hold is logged as an error and the rows are not kept: the dead-letter
    topic still holds the records, and a worker that stopped on them would stall.
    """
    if not rejections:
        return
    rows = [_row(rejection, failed_at) for rejection in rejections]
    try:
        DeadLetter.objects.using(DB_ALIAS).bulk_create(rows, ignore_conflicts=True)
    except DATA_ERRORS as exc:
        logger.error(
            "dead letters %s not recorded in the database (the dead-letter topic has them): %s",
            ", ".join(str(row) for row in rows),
            exc,
        )


def dead_letters_purge(*, older_than: timedelta, now: datetime) -> int:
    """Forget the dead letters that failed more than `older_than` before `now`; return how
    many were deleted (the dead-letter topic keeps its records by its own retention)."""
    deleted, _ = DeadLetter.objects.using(DB_ALIAS).filter(failed_at__lt=now - older_than).delete()
    return deleted


def dead_letters_list(
    *,
    error_contains: str | None = None,
    kind: str | None = None,
    not_replayed: bool = False,
    limit: int | None = None,
) -> QuerySet[DeadLetter]:
    """Dead letters, newest first, narrowed by the filters given."""
    letters = DeadLetter.objects.using(DB_ALIAS).order_by("-id")
    if error_contains:
        letters = letters.filter(error__icontains=error_contains)
    if kind:
        letters = letters.filter(kind=kind)
    if not_replayed:
        letters = letters.filter(replayed_at__isnull=True)
    if limit is not None:
        letters = letters[:limit]
    return letters


def _publish(letters: list[DeadLetter], topic: str, report: ReplayReport) -> None:
    """Produce each letter's key and value to `topic`; fill `report` with the outcome."""
    try:
        producer = make_producer(
            client_id="orderstream-replay",
            bootstrap_timeout_ms=REPLAY_TIMEOUT_MS,
            max_block_ms=REPLAY_TIMEOUT_MS,
            request_timeout_ms=REPLAY_TIMEOUT_MS,
            delivery_timeout_ms=REPLAY_TIMEOUT_MS,
        )
    except KafkaError as exc:
        raise DeadLetterReplayFailed(f"the broker could not be reached: {exc}") from exc
    try:
        sent = []
        for letter in letters:
            headers = [("replay_of", str(letter).encode())]
            key = bytes(letter.key) if letter.key is not None else None
            try:
                future = producer.send(topic, value=bytes(letter.value), key=key, headers=headers)
            except KafkaError as exc:
                report.failed[letter.pk] = str(exc)
                continue
            sent.append((letter, future))
        try:
            producer.flush(timeout=2 * REPLAY_TIMEOUT_MS / 1000)
        except KafkaError as exc:
            logger.warning("replay: flush failed: %s", exc)
        for letter, future in sent:
            if future.succeeded():
                report.replayed.append(letter.pk)
            else:
                report.failed[letter.pk] = str(future.exception or "not acknowledged in time")
    finally:
        producer.close(timeout=REPLAY_TIMEOUT_MS / 1000)


def dead_letters_replay(*, ids: Iterable[int], topic: str | None = None) -> ReplayReport:
    """Publish the original key and bytes of the dead letters `ids` to the events topic
    (or `topic`) and count the replay on each one the broker acknowledged.

    Letters whose value was too large to be kept whole are not replayed (`not_kept`).
    Raises `DeadLetterReplayFailed` when the broker cannot be reached at all. A replay is
    at least once (the broker's acknowledgement lost on the way counts as a failure, yet the
    record may be there): harmless, as the worker applies each event_id once.
    """
    topic = topic or settings.ORDERS_EVENTS_TOPIC
    report = ReplayReport(topic=topic)
    letters = list(DeadLetter.objects.using(DB_ALIAS).filter(pk__in=list(ids)).order_by("pk"))
    replayable = []
    for letter in letters:
        if letter.value_kept:
            replayable.append(letter)
        else:
            report.not_kept.append(letter.pk)
    if replayable:
        _publish(replayable, topic, report)
    if report.replayed:
        DeadLetter.objects.using(DB_ALIAS).filter(pk__in=report.replayed).update(
            replayed_at=utc_now(), replay_count=F("replay_count") + 1
        )
        logger.info("replayed dead letters %s to %s", report.replayed, topic)
    return report
