"""The worker's tables in the `worker` database: orders after the upsert rules, and the
events already applied (so a redelivered event is answered exactly as the first time)."""

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
