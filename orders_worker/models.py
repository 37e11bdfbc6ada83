"""The worker's tables in the `worker` database: orders after the upsert rules, the
events already applied (so a redelivered event is answered exactly as the first time),
and the records the worker rejected (dead letters, kept for an operator to replay)."""

from django.db import models
from django.db.models import F
from django.db.models.fields.json import KT
from django.db.models.functions import MD5

from orderstream.statuses import AckStatus, ProcessedStatus


class ProcessedOrder(models.Model):
    """The worker's view of an order; `version` is the newest event version applied."""

    order_id = models.UUIDField(primary_key=True)
    user_id = models.UUIDField(db_index=True)
    amount = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    status = models.CharField(
        max_length=16, choices=ProcessedStatus.choices, default=ProcessedStatus.DONE
    )
    payload = models.JSONField(default=dict)
    # The payload as the event had it (JSON text): what the worker reads back. jsonb
    # (`payload`, for queries) prints numbers without an exponent: through it 1e300 would
    # come back as 301 digits. Null in rows written before migration 0005.
    payload_text = models.TextField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    bucket = models.PositiveSmallIntegerField()
    version = models.PositiveIntegerField()
    last_event_id = models.UUIDField(null=True, blank=True)
    # The ACK status of the newest event applied: created, updated or deleted.
    last_status = models.CharField(max_length=16, default=AckStatus.CREATED)
    processed_at = models.DateTimeField()

    class Meta:
        indexes = [
            # The md5 of payload.id, as in the API's index: any id fits a btree row.
            models.Index(
                MD5(KT("payload__id")), F("user_id"), name="processed_external_id_user_idx"
            ),
        ]

    def __str__(self) -> str:
        return str(self.order_id)


class ProcessedEvent(models.Model):
    """One event the worker has handled, keyed by event_id, with the ACK status it got."""

    event_id = models.UUIDField(primary_key=True)
    order_id = models.UUIDField()
    version = models.PositiveIntegerField()
    ack_status = models.CharField(max_length=16)
    processed_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.event_id} ({self.ack_status})"


class DeadLetterKind(models.TextChoices):
    """Why the worker rejected a record: a short word to filter dead letters by."""

    INVALID_MESSAGE = "invalid", "not a valid event"
    REFUSED_BY_RULES = "rules", "refused by the rules"
    REFUSED_BY_DATABASE = "database", "refused by the database"
    UNEXPECTED_ERROR = "unexpected", "unexpected error"


class DeadLetter(models.Model):
    """A record of the events topic the worker rejected, as it was on the topic.

    `key` and `value` are the original bytes (the value up to the dead-letter bound,
    `value_length` is its full size), so a replay publishes exactly what came in;
    `key_text` is the key decoded for search and display. Written by
    `dead_letters.dead_letters_record`; replayed by `dead_letters.dead_letters_replay`.
    """

    source_topic = models.CharField(max_length=255)
    source_partition = models.PositiveIntegerField()
    source_offset = models.BigIntegerField()
    key = models.BinaryField(null=True)
    key_text = models.TextField(blank=True, default="")
    value = models.BinaryField()
    value_length = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=DeadLetterKind.choices)
    error = models.TextField()
    failed_at = models.DateTimeField()
    replayed_at = models.DateTimeField(null=True, blank=True)
    replay_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # A record redelivered (a crash before the offset commit) is recorded once.
            models.UniqueConstraint(
                fields=["source_topic", "source_partition", "source_offset"],
                name="dead_letter_source_unique",
            ),
        ]

    @property
    def value_kept(self) -> bool:
        """Whether the whole original value is stored (so the record can be replayed)."""
        return len(self.value) == self.value_length

    def __str__(self) -> str:
        return f"{self.source_topic}[{self.source_partition}]@{self.source_offset}"
